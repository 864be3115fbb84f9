"""The signed documents of the registry: typed payloads and one signed envelope.

A document on disk or on the wire is ``{"signed": <payload>, "signatures": [{"keyid", "sig"}]}``
(the python-tuf layout). Signatures are Ed25519 over the RFC 8785 canonical bytes of
``signed``. A payload names its ``type`` and ``schema_version``; unknown fields, unknown
versions and wrong types are refused.

Who signs what:

* ``consent_grant`` and a performer's ``consent_revocation``: a key registered to the
  performer (self, guardian, estate or union designee).
* ``output_approval`` (a performer's approval or rejection of one output): a key registered
  to the performer, like a grant.
* ``performer``, ``performer_key`` and a consent officer's ``consent_revocation``: the
  registry's own key. That makes the binding "this key belongs to this performer" as
  tamper-evident as the grant itself: editing a database row cannot forge it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from consent.canonical import canonical_bytes, parse_json
from consent.errors import DocumentError, SignatureError, UnsupportedSchemaError
from consent.fields import (
    AfterDeathPolicy,
    Alteration,
    AlwaysTrue,
    ApprovalDecision,
    ApprovalRequirement,
    Channel,
    Day,
    HumanName,
    Identifier,
    LanguageTag,
    LongText,
    Sha256Hex,
    SignatoryRole,
    Technique,
    Territory,
    Timestamp,
)
from consent.keys import PrivateKey, PublicKey, short_id

SCHEMA_VERSION = 1
MAX_SIGNATURES = 4


class Model(BaseModel):
    """Strict base: unknown fields are errors and models are immutable once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, defer_build=True)

    #: The schema versions a document of this type may carry (read and verified as received).
    schema_versions: ClassVar[tuple[int, ...]] = (SCHEMA_VERSION,)

    @classmethod
    def draft_version(cls, draft: dict[str, Any]) -> int:
        """The version a new document is signed at: the oldest one that holds every field of
        the draft, so documents without a newer field keep their former bytes exactly."""
        return SCHEMA_VERSION


# --------------------------------------------------------------------------- grant parts


class PerformerIdentity(Model):
    performer_id: Identifier
    legal_name: HumanName
    professional_name: HumanName | None = None


class Signatory(Model):
    role: SignatoryRole
    name: HumanName
    authority_evidence: LongText | None = None

    @model_validator(mode="after")
    def _authority(self) -> Self:
        if self.role is not SignatoryRole.SELF and self.authority_evidence is None:
            raise ValueError(f"a {self.role.value} signatory needs authority_evidence")
        return self


class ProjectScope(Model):
    project_id: Identifier
    title: HumanName
    episodes: tuple[Identifier, ...] = ()
    scenes: tuple[Identifier, ...] = ()


class Grantee(Model):
    company: HumanName
    projects: tuple[ProjectScope, ...] = Field(min_length=1, max_length=100)


class Representation(Model):
    kind: Literal["counsel", "union_agreement", "none"]
    reference: HumanName | None = None

    @model_validator(mode="after")
    def _reference(self) -> Self:
        if self.kind != "none" and self.reference is None:
            raise ValueError(f"representation by {self.kind} needs a reference")
        return self


class Scope(Model):
    techniques: tuple[Technique, ...] = Field(min_length=1)
    purpose: LongText
    description_of_use: LongText | None = None
    languages: tuple[LanguageTag, ...] = Field(min_length=1, max_length=200)
    territories: tuple[Territory, ...] = Field(min_length=1, max_length=300)
    channels: tuple[Channel, ...] = Field(min_length=1)
    source_media: Literal["any"] | tuple[Sha256Hex, ...] = "any"
    script_hash: Sha256Hex | None = None
    max_alteration: Alteration
    ai_training: StrictBool = False

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for name in ("techniques", "languages", "territories", "channels"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice")
        if isinstance(self.source_media, tuple) and not self.source_media:
            raise ValueError("source_media is 'any' or a non-empty list of SHA-256 hashes")
        return self


class AfterDeath(Model):
    policy: AfterDeathPolicy
    until: Day | None = None

    @model_validator(mode="after")
    def _until(self) -> Self:
        if (self.policy is AfterDeathPolicy.UNTIL_DATE) != (self.until is not None):
            raise ValueError("after_death.until is required exactly when policy is until_date")
        return self


class Evidence(Model):
    consent_recording_sha256: Sha256Hex
    identity_template_sha256: tuple[Sha256Hex, ...] = Field(min_length=1, max_length=64)
    text_shown_sha256: Sha256Hex


class Disclosure(Model):
    credit_text: HumanName
    machine_readable_marking: AlwaysTrue


# --------------------------------------------------------------------------- payloads


class Grant(Model):
    """A performer's consent to specific uses of their likeness (CONSENT.md)."""

    document_type: ClassVar[str] = "consent_grant"
    #: Version 2 adds ``approval``; a version 1 grant is ``approval: not_required``.
    schema_versions: ClassVar[tuple[int, ...]] = (1, 2)

    type: Literal["consent_grant"]
    schema_version: StrictInt
    grant_id: Identifier
    performer: PerformerIdentity
    signatory: Signatory
    grantee: Grantee
    representation: Representation
    scope: Scope
    valid_from: Timestamp
    valid_until: Timestamp
    signed_at: Timestamp
    compensation_reference: HumanName
    after_death: AfterDeath
    revocable: AlwaysTrue = Field(
        description="Always revocable; a revocation takes effect on the next decision."
    )
    evidence: Evidence
    disclosure: Disclosure
    #: Schema 2 only, and stated there: must each output wait for the performer's approval?
    approval: ApprovalRequirement | None = None

    @classmethod
    def draft_version(cls, draft: dict[str, Any]) -> int:
        return 2 if draft.get("approval") is not None else 1

    @property
    def approval_required(self) -> bool:
        return self.approval is ApprovalRequirement.REQUIRED

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.schema_version >= 2) != (self.approval is not None):
            raise ValueError("approval (required | not_required) is stated in a schema_version "
                             "2 grant, and only there (version 1 grants are not_required)")
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        if self.representation.kind == "none" and self.scope.description_of_use is None:
            raise ValueError(
                "without counsel or a union agreement, scope.description_of_use is mandatory"
            )
        return self


class ApprovalSigner(Model):
    """Who signed an approval: the holder of the performer's key (self, guardian, estate or
    union designee), as the key's registry binding names the role."""

    role: SignatoryRole
    name: HumanName


class OutputApproval(Model):
    """A performer's approval or rejection of one output (the exact file, by SHA-256) made
    under one of their grants that requires approval (``studio consent approve``)."""

    document_type: ClassVar[str] = "output_approval"

    type: Literal["output_approval"]
    schema_version: StrictInt
    approval_id: Identifier
    performer_id: Identifier
    grant_id: Identifier
    output_sha256: Sha256Hex
    decision: ApprovalDecision
    note: LongText | None = None
    signed_by: ApprovalSigner
    signed_at: Timestamp


class RevocationTarget(Model):
    kind: Literal["grant", "key"]
    id: Identifier


class Issuer(Model):
    role: Literal["performer", "consent_officer"]
    name: HumanName


class Revocation(Model):
    """Withdraws a grant, or a compromised key (and so everything signed with it)."""

    document_type: ClassVar[str] = "consent_revocation"

    type: Literal["consent_revocation"]
    schema_version: StrictInt
    revocation_id: Identifier
    performer_id: Identifier
    target: RevocationTarget
    revoked_at: Timestamp
    reason: LongText
    issued_by: Issuer
    performer_request_reference: HumanName | None = None

    @model_validator(mode="after")
    def _officer(self) -> Self:
        if self.issued_by.role == "consent_officer" and self.performer_request_reference is None:
            raise ValueError(
                "a consent officer revokes only on the performer's request: "
                "performer_request_reference is required"
            )
        return self


class KeyHolder(Model):
    role: SignatoryRole
    name: HumanName
    authority_evidence: LongText | None = None


class KeyBinding(Model):
    """A registry attestation binding a public key to someone: the fields every binding has."""

    key_id: Sha256Hex
    public_key: str = Field(min_length=44, max_length=44)
    registered_at: Timestamp
    registered_by: HumanName

    @model_validator(mode="after")
    def _key_id(self) -> Self:
        if PublicKey.from_base64(self.public_key).key_id != self.key_id:
            raise ValueError("key_id is not the SHA-256 of public_key")
        return self

    @property
    def key(self) -> PublicKey:
        return PublicKey.from_base64(self.public_key)


class PerformerKey(KeyBinding):
    """The registry's attestation that a public key speaks for a performer."""

    document_type: ClassVar[str] = "performer_key"

    type: Literal["performer_key"]
    schema_version: StrictInt
    performer_id: Identifier
    holder: KeyHolder
    supersedes: Sha256Hex | None = None


class PerformerRecord(Model):
    """The registry's record of a performer and the status the gate needs (minor, deceased)."""

    document_type: ClassVar[str] = "performer"

    type: Literal["performer"]
    schema_version: StrictInt
    performer_id: Identifier
    revision: StrictInt = Field(ge=1)
    legal_name: HumanName
    professional_name: HumanName | None = None
    minor_until: Day | None = None
    deceased_on: Day | None = None
    recorded_at: Timestamp
    recorded_by: HumanName


class ProductionKey(KeyBinding):
    """The registry's attestation that a key speaks for a production company, which may
    countersign the grants made to it."""

    document_type: ClassVar[str] = "production_key"

    type: Literal["production_key"]
    schema_version: StrictInt
    company: HumanName


class SealedGrant(Model):
    grant_id: Identifier
    sha256: Sha256Hex


class MotionSeal(Model):
    """The registry's seal on a motion file (``studio motion extract``): which performer's
    performance it holds, for which project, under which grant and ledgered decision, and
    the SHA-256 of every byte of the file but the seal (motion, header and the identity
    embeddings that the consent check of a later render matches)."""

    document_type: ClassVar[str] = "motion_seal"

    type: Literal["motion_seal"]
    schema_version: StrictInt
    format_version: StrictInt = Field(ge=2)
    project_id: Identifier
    driver_performer_id: Identifier
    grants: tuple[SealedGrant, ...] = Field(min_length=1, max_length=8)
    decision_id: Identifier
    decision_ledger_index: StrictInt = Field(ge=0)
    decision_sha256: Sha256Hex
    video_sha256: Sha256Hex
    embedder: str = Field(min_length=1, max_length=200)
    created_at: Timestamp
    payload_sha256: Sha256Hex


class TokenInput(Model):
    name: Identifier
    sha256: Sha256Hex


class TokenSegment(Model):
    """An authorised (track, frame range) as the decision lists it, with its grant."""

    track_id: Identifier
    first_frame: StrictInt = Field(ge=0)
    last_frame: StrictInt = Field(ge=0)
    performer_id: Identifier
    grant_id: Identifier


class TokenTrace(Model):
    """One face track's verified frame runs (the identity trace the edit guard also needs)."""

    track_id: Identifier
    runs: tuple[tuple[StrictInt, StrictInt], ...] = Field(max_length=100_000)


class RenderDecisionToken(Model):
    """The registry's word to a render worker (``consent.decision_token``): this job's chunk
    may edit exactly these segments of exactly these inputs, under this ledgered decision,
    until ``expires_at``. A worker holds no database; this is all it may act on."""

    document_type: ClassVar[str] = "render_decision"

    type: Literal["render_decision"]
    schema_version: StrictInt
    job_id: Identifier
    chunk_id: Identifier
    operation: Identifier
    decision_id: Identifier
    decision_ledger_index: StrictInt = Field(ge=0)
    decision_sha256: Sha256Hex
    inputs: tuple[TokenInput, ...] = Field(min_length=1, max_length=16)
    segments: tuple[TokenSegment, ...] = Field(min_length=1, max_length=10_000)
    traces: tuple[TokenTrace, ...] = Field(max_length=64)
    watermark_payload: StrictInt = Field(ge=0, lt=2**32)
    issued_at: Timestamp
    expires_at: Timestamp
    #: The chunk's frames (first, last, inclusive) when the task renders part of a shot;
    #: absent: the whole shot (tokens without it keep their bytes: None is not signed).
    frames: tuple[StrictInt, StrictInt] | None = None
    #: The digest of each analysed video's face meshes as the head tracked them (``source``,
    #: ``driver``): the worker renders only meshes that give it. Absent: none bound (tokens
    #: without it keep their bytes).
    meshes: tuple[TokenInput, ...] | None = Field(default=None, max_length=4)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.expires_at <= self.issued_at:
            raise ValueError("a decision token expires after it is issued")
        if self.frames is not None and not 0 <= self.frames[0] <= self.frames[1]:
            raise ValueError("a chunk's frames run from a first to a later last frame")
        for seg in self.segments:
            if seg.last_frame < seg.first_frame:
                raise ValueError("a segment's last frame comes before its first")
        return self


Payload = (Grant | Revocation | PerformerKey | PerformerRecord | ProductionKey | MotionSeal
           | RenderDecisionToken | OutputApproval)
P = TypeVar("P", Grant, Revocation, PerformerKey, PerformerRecord, ProductionKey, MotionSeal,
            RenderDecisionToken, OutputApproval)


# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes

    def to_json(self) -> dict[str, str]:
        return {"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode("ascii")}


def format_validation_error(kind: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "string_type":  # strict text fields (consent.fields._text)
            message = f"expected a string, got {type(err.get('input')).__name__}"
        problems.append(f"{where}: {message}")
    more = "" if exc.error_count() <= 8 else f" (and {exc.error_count() - 8} more)"
    return f"invalid {kind}: " + "; ".join(problems) + more


@dataclass(frozen=True)
class SignedDocument(Generic[P]):
    """A payload with its signatures, and the canonical bytes those signatures cover."""

    payload: P
    body: dict[str, Any] = field(repr=False)  # the payload exactly as received (parsed JSON)
    signatures: tuple[Signature, ...]
    raw: bytes = field(repr=False)

    @cached_property
    def signed_bytes(self) -> bytes:
        """RFC 8785 bytes of the received payload: what the signatures cover.

        Computed on first use: ranking candidate grants needs only the parsed payload."""
        return canonical_bytes(self.body)

    @cached_property
    def sha256(self) -> str:
        """Document hash: SHA-256 of the canonical payload (independent of file formatting)."""
        return hashlib.sha256(self.signed_bytes).hexdigest()

    @classmethod
    def sign(cls, payload: P, keys: list[PrivateKey]) -> SignedDocument[P]:
        body = payload.model_dump(mode="json", exclude_none=True)
        signed_bytes = canonical_bytes(body)
        sigs = tuple(Signature(k.key_id, k.sign(signed_bytes)) for k in keys)
        envelope = {"signed": body, "signatures": [s.to_json() for s in sigs]}
        return cls(payload, body, sigs, canonical_bytes(envelope))

    @classmethod
    def from_bytes(cls, raw: bytes, payload_type: type[P], *,
                   memo: bool = True) -> SignedDocument[P]:
        """Parse a received envelope; the signatures are *not* checked here (see verify).

        Parsing is a pure function of the bytes, so results are memoised by content: the
        gate re-reads the same stored documents at every decision. The signature check is
        memoised separately, by the signed bytes' hash (see :meth:`verify`). ``memo=False``
        parses without the memo, for callers that keep their own compact result (the
        gate's grant views): a grant's ~40 parsed objects held in the memo only to be
        evicted ~25 decisions later were what the collector's young-generation passes
        walked (13 000 objects a pass instead of 4 000; decision p99 7.2 -> 4.1 ms).
        """
        if not memo:
            return cls._parse(bytes(raw), payload_type)
        return _parse_cached(bytes(raw), payload_type)

    @classmethod
    def _parse(cls, raw: bytes, payload_type: type[P]) -> SignedDocument[P]:
        data = parse_json(raw)
        if not isinstance(data, dict) or set(data) != {"signed", "signatures"}:
            raise DocumentError(
                "a signed document is an object with exactly 'signed' and 'signatures'"
            )
        body, sig_list = data["signed"], data["signatures"]
        if not isinstance(body, dict):
            raise DocumentError("'signed' must be an object")
        kind = body.get("type")
        if kind != payload_type.document_type:
            raise DocumentError(
                f"expected a {payload_type.document_type} document, got type {kind!r}"
            )
        version = body.get("schema_version")
        if version not in payload_type.schema_versions or isinstance(version, bool):
            raise UnsupportedSchemaError(
                f"unsupported schema_version {version!r} for {kind}; supported: "
                f"{_versions(payload_type)}"
            )
        try:
            payload = payload_type.model_validate(body)
        except ValidationError as exc:
            raise DocumentError(format_validation_error(payload_type.document_type, exc)) from None
        return cls(payload, body, _parse_signatures(sig_list), raw)

    def to_bytes(self) -> bytes:
        envelope = {"signed": self.body,
                    "signatures": [s.to_json() for s in self.signatures]}
        return canonical_bytes(envelope)

    def with_signature(self, key: PrivateKey) -> SignedDocument[P]:
        """The same document with one more signature (a countersignature) over the same bytes."""
        if self.signature_by(key.key_id) is not None:
            raise DocumentError(f"key {short_id(key.key_id)} has already signed this document")
        if len(self.signatures) >= MAX_SIGNATURES:
            raise DocumentError(f"a document carries at most {MAX_SIGNATURES} signatures")
        sigs = (*self.signatures, Signature(key.key_id, key.sign(self.signed_bytes)))
        envelope = {"signed": self.body, "signatures": [s.to_json() for s in sigs]}
        return SignedDocument(self.payload, self.body, sigs, canonical_bytes(envelope))

    def signature_by(self, key_id: str) -> Signature | None:
        return next((s for s in self.signatures if s.keyid == key_id), None)

    def verify(self, key: PublicKey) -> None:
        """Raise :class:`SignatureError` unless ``key`` signed these canonical bytes.

        A successful check is remembered (see :data:`_VERIFIED`): Ed25519 verification is a
        pure function of (message, signature, public key), so the same triple verifies the
        same way again. Failures are never remembered.
        """
        sig = self.signature_by(key.key_id)
        if sig is None:
            raise SignatureError(
                f"{self.payload.document_type} carries no signature by key {short_id(key.key_id)}"
            )
        token = (self.sha256, sig.sig, key.raw)  # sha256: of signed_bytes, computed once
        with _VERIFIED_LOCK:
            if token in _VERIFIED:
                _VERIFIED.move_to_end(token)
                return
        key.verify(sig.sig, self.signed_bytes)
        with _VERIFIED_LOCK:
            _VERIFIED[token] = None
            if len(_VERIFIED) > VERIFIED_CACHE_SIZE:
                _VERIFIED.popitem(last=False)


#: Signature checks that succeeded, keyed by exactly what the check depends on: the SHA-256
#: of the signed (canonical) bytes, the signature and the public key's bytes. Never by a
#: document or database id: a stored row whose bytes were changed hashes differently and is
#: checked afresh, and a key that did not sign the bytes is never found. Entries are tuples
#: of strings and bytes (~350 bytes each, not tracked by the garbage collector), so a large bound is
#: cheap; least recently used entries leave first.
VERIFIED_CACHE_SIZE = 65_536
_VERIFIED: OrderedDict[tuple[str, bytes, bytes], None] = OrderedDict()
_VERIFIED_LOCK = threading.Lock()


def clear_verified_cache() -> None:
    """Forget every remembered signature check and parsed grant view (benchmarks start
    cold; tests)."""
    from consent import grant_view  # it builds on this module

    with _VERIFIED_LOCK:
        _VERIFIED.clear()
    grant_view.clear()


# Small on purpose: a big cache of parsed models holds ~100 k GC-tracked objects, and the
# collector's passes over them cost more (70-130 ms pauses) than re-parsing saves. It still
# serves the common case of one render checking the same performer twice.
@lru_cache(maxsize=256)
def _parse_cached(raw: bytes, payload_type: type[Payload]) -> SignedDocument[Any]:
    # Errors are not cached (lru_cache does not store exceptions): a bad document is
    # re-parsed, and refused again, every time.
    return SignedDocument._parse(raw, payload_type)


def _parse_signatures(value: Any) -> tuple[Signature, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SIGNATURES:
        raise DocumentError(f"'signatures' must be a list of 1 to {MAX_SIGNATURES} signatures")
    out: list[Signature] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
            raise DocumentError(f"signature {i} must be an object with exactly 'keyid' and 'sig'")
        keyid, sig = item["keyid"], item["sig"]
        if not isinstance(keyid, str) or len(keyid) != 64:
            raise DocumentError(f"signature {i}: keyid must be a 64-character key fingerprint")
        if not isinstance(sig, str):
            raise DocumentError(f"signature {i}: sig must be a base64 string")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError(f"signature {i}: sig is not valid base64") from None
        if len(raw) != 64:
            raise DocumentError(f"signature {i}: an Ed25519 signature is 64 bytes, got {len(raw)}")
        if any(s.keyid == keyid for s in out):
            raise DocumentError(f"signature {i}: key {short_id(keyid)} signs twice")
        out.append(Signature(keyid, raw))
    return tuple(out)


def _versions(model: type[Payload]) -> str:
    return ", ".join(str(v) for v in model.schema_versions)


def sign_draft(model: type[P], draft: dict[str, Any], keys: list[PrivateKey]) -> SignedDocument[P]:
    """Validate a draft (from YAML or JSON) exactly as an import would, then sign it."""
    body = {"type": model.document_type, "schema_version": model.draft_version(draft), **draft}
    if body["type"] != model.document_type:
        raise DocumentError(f"draft has type {body['type']!r}, expected {model.document_type}")
    version = body["schema_version"]
    if version not in model.schema_versions or isinstance(version, bool):
        raise UnsupportedSchemaError(
            f"unsupported schema_version {body['schema_version']!r}; supported: "
            f"{_versions(model)}"
        )
    try:
        payload = model.model_validate(body)
    except ValidationError as exc:
        raise DocumentError(format_validation_error(model.document_type, exc)) from None
    return SignedDocument.sign(payload, keys)
