"""Typed render facts in, C2PA manifest definition out: one pure function.

Why a pure function: what an output's manifest says about it (that a trained model changed a
face, which source shot it came from, which language it was dubbed into, which signed consent
decision allowed it) is the studio's public claim. Keeping it apart from signing and I/O makes
that claim easy to read, to review and to unit-test without certificates or media.

What the definition holds (see ``/work/shared/docs/PROVENANCE.md``):

- ``c2pa.actions`` (stored by the SDK as ``c2pa.actions.v2``): ``c2pa.opened`` for the source
  shot, ``c2pa.translated`` with BCP-47 ``sourceLanguage``/``targetLanguage`` for a dub,
  ``c2pa.edited`` with ``digitalSourceType`` compositeWithTrainedAlgorithmicMedia, the
  software agent and the changed ``regions`` (frame span ∧ time span ∧ pixel rectangle), and
  ``c2pa.watermarked.bound`` when a watermark was embedded. Actions point at ingredients by
  ``label`` through ``parameters.ingredientIds``; the SDK turns those into hashed links.
- Ingredients: the source shot (``parentOf``) and the other inputs (performer reference,
  dub audio, script, driving video or motion file), each added from its file so that the SDK
  validates and carries any manifest an input has (``activeManifest`` and ``claimSignature``
  hashed links plus its ``validationResults``), each with its SHA-256 in its ``metadata``. An
  input with no manifest of its own is, truthfully, of unknown provenance to a reader
  (``ingredient.unknownProvenance``). The translated script travels inside the manifest as the
  ingredient's ``data`` (a ``c2pa.embedded-data`` assertion behind a hashed link); nothing
  personal does (a motion file holds a driver's identity embeddings, so it never travels).
- ``org.consent-dubbing-studio.consent``: ids and hashes only (grants, one entry per grant;
  decision, ledger leaf, checkpoint, registry key). Never a name, a face or a template: a
  manifest travels with the file and cannot be recalled.
- ``cawg.training-mining``: every use ``notAllowed`` unless the grant says otherwise.
- ``org.consent-dubbing-studio.qc`` (a lip-sync render with QC on): the QC figures per edited
  track, the thresholds and ``needs_review`` (docs/lipsync_qc.md); figures only, no file names.
- ``c2pa.soft-binding``: the 32-bit watermark payload over the whole timespan, so that a copy
  whose metadata was stripped can be traced back through the manifest store.

Everything above is the studio's own statement, so it is listed among the claim's
``created_assertions`` (C2PA 2.x); ``gathered_assertions`` is for what a claim generator
passes on from elsewhere, and here holds only the ingredient assertions the SDK writes.

Errors: every way provenance can fail has one precise exception type here (the lowest module
of the package, imported by all the others), each with a stable ``code`` and a message that
says what to do.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from studio.errors import StudioError

# --------------------------------------------------------------------------------------
# Errors


class ProvenanceError(StudioError):
    """Base class: anything the provenance layer refuses or cannot do."""

    code = "provenance.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ManifestInputError(ProvenanceError):
    """The facts handed to the manifest builder are incomplete or malformed."""

    code = "provenance.bad_input"


class CertificateError(ProvenanceError):
    """A signing certificate, chain or key is missing, broken or breaks the C2PA rules."""

    code = "provenance.certificate"


class SigningError(ProvenanceError):
    """The SDK refused to sign (or the signed result would not validate)."""

    code = "provenance.signing"


class UnsupportedFormatError(ProvenanceError):
    """A file whose type cannot be recognised or cannot carry a manifest at all."""

    code = "provenance.unsupported_format"


class NoManifestError(ProvenanceError):
    """A file carries no C2PA manifest and has no sidecar next to it."""

    code = "provenance.no_manifest"


class ManifestReadError(ProvenanceError):
    """A manifest is present but cannot be parsed (corrupt file or manifest store)."""

    code = "provenance.unreadable"


class StoreError(ProvenanceError):
    """The manifest store is inconsistent or cannot be written."""

    code = "provenance.store"


class NoMatchError(StoreError):
    """No stored manifest for a watermark payload is close enough to the frames given."""

    code = "provenance.store.no_match"


class AmbiguousMatchError(StoreError):
    """Several stored manifests fit a payload about equally well: refusing to pick one."""

    code = "provenance.store.ambiguous"


# --------------------------------------------------------------------------------------
# Vocabulary

STUDIO_NAMESPACE = "org.consent-dubbing-studio"
CONSENT_LABEL = f"{STUDIO_NAMESPACE}.consent"
#: The (face track, frame range) segments the decision authorised and those the render edited.
SEGMENTS_LABEL = f"{STUDIO_NAMESPACE}.segments"
#: The lip-sync QC of the output, per edited track (``pipelines.qc``; docs/lipsync_qc.md).
QC_LABEL = f"{STUDIO_NAMESPACE}.qc"
INGREDIENT_SHA256_KEY = f"{STUDIO_NAMESPACE}.sha256"
AGENT_BACKEND_KEY = f"{STUDIO_NAMESPACE}.backend"
AGENT_MODEL_KEY = f"{STUDIO_NAMESPACE}.model"
AGENT_LICENCE_KEY = f"{STUDIO_NAMESPACE}.licence"

#: The RivaGAN 32-bit invisible watermark (``invisible-watermark``), as this studio applies it.
#: Not on the C2PA soft-binding algorithm list, hence an entity-specific (reverse-DNS) name.
DEFAULT_WATERMARK_ALG = f"{STUDIO_NAMESPACE}.rivagan-32"

COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
)

TRAINING_MINING_ENTRIES = (
    "cawg.ai_generative_training",
    "cawg.ai_inference",
    "cawg.ai_training",
    "cawg.data_mining",
)

Operation = Literal["lipsync", "reenact"]
Relationship = Literal["parentOf", "componentOf", "inputTo"]
TrainingUse = Literal["allowed", "notAllowed", "constrained"]

_OPERATION_DESCRIPTIONS: dict[str, str] = {
    "lipsync": "Mouth region re-synthesised by a trained model to match the dubbed speech",
    "reenact": "Facial performance re-enacted by a trained model from a driving video",
}
_RELATIONSHIPS = ("parentOf", "componentOf", "inputTo")
_TRAINING_USES = ("allowed", "notAllowed", "constrained")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MIME_RE = re.compile(r"^[a-z]+/[A-Za-z0-9.+-]+$")
# BCP-47 shape: language (2-3 letters, or 4-8 registered), then subtags of 1-8 alphanumerics.
_BCP47_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_MAX_PAYLOAD = 0xFFFF_FFFF
#: Largest input carried inside a manifest (a script is a few KiB; a manifest rides in every copy).
MAX_EMBEDDED_INGREDIENT = 256 * 1024


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ManifestInputError(message)


def _check_sha256(value: str, what: str) -> None:
    _require(isinstance(value, str) and bool(_SHA256_RE.match(value)),
             f"{what}: expected a SHA-256 as 64 lowercase hex characters, got {value!r}")


# --------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class SoftwareAgent:
    """What made the change: the studio plus the neural backend, its model and licence."""

    name: str
    version: str
    backend: str
    model: str
    licence: str

    def __post_init__(self) -> None:
        for attr in ("name", "version", "backend", "model", "licence"):
            _require(bool(getattr(self, attr).strip()), f"software agent: {attr} is empty")

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            AGENT_BACKEND_KEY: self.backend,
            AGENT_MODEL_KEY: self.model,
            AGENT_LICENCE_KEY: self.licence,
        }


@dataclass(frozen=True)
class IngredientInput:
    """One input of the render: its instance ``label`` is how actions point at it.

    ``path`` is where ``sign_file`` streams the bytes from (so the SDK can validate and carry
    an ingredient's own manifest and check ``sha256``); without it only the hash is recorded.
    ``embed``: carry the bytes themselves in the manifest as the ingredient's hashed ``data``
    (needs ``path``; at most :data:`MAX_EMBEDDED_INGREDIENT` bytes). Only for inputs that may
    travel with every copy of the output forever (the translated script), never for anything
    personal (a performer reference, a motion file).
    ``title`` is what viewers see: give a neutral one ("performer reference"), never a
    person's name or a file name that contains one.
    """

    label: str
    title: str
    relationship: Relationship
    mime: str
    sha256: str
    path: str | None = None
    embed: bool = False

    def __post_init__(self) -> None:
        _require(not self.embed or self.path is not None,
                 f"ingredient {self.label}: embedding its bytes needs its path")
        _require(bool(_LABEL_RE.match(self.label)),
                 f"ingredient label {self.label!r}: use 1-64 letters, digits, '.', '_' or '-'")
        _require(bool(self.title.strip()), f"ingredient {self.label}: title is empty")
        _require(self.relationship in _RELATIONSHIPS,
                 f"ingredient {self.label}: relationship {self.relationship!r} is not one of "
                 f"{', '.join(_RELATIONSHIPS)}")
        _require(bool(_MIME_RE.match(self.mime)),
                 f"ingredient {self.label}: {self.mime!r} is not a MIME type")
        _check_sha256(self.sha256, f"ingredient {self.label}")

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "format": self.mime,
            "relationship": self.relationship,
            "label": self.label,
            "metadata": {INGREDIENT_SHA256_KEY: self.sha256},
        }


@dataclass(frozen=True)
class LanguagePair:
    """A dub: the shot's spoken language and the language it was dubbed into (BCP-47)."""

    source: str
    target: str

    def __post_init__(self) -> None:
        for tag in (self.source, self.target):
            _require(bool(_BCP47_RE.match(tag)), f"{tag!r} is not a BCP-47 language tag "
                     "(for example 'en', 'en-GB', 'fr-CA', 'zh-Hans-CN')")
        _require(self.source.lower() != self.target.lower(),
                 f"source and target language are both {self.source!r}: that is not a dub")


@dataclass(frozen=True)
class Rect:
    """A pixel rectangle in the output frame (origin top left)."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        _require(self.x >= 0 and self.y >= 0, f"rectangle origin ({self.x}, {self.y}) < 0")
        _require(self.width > 0 and self.height > 0,
                 f"rectangle size {self.width}x{self.height} is empty")


@dataclass(frozen=True)
class ChangedRegion:
    """Where the model changed pixels: a rectangle during a frame span and/or time span.

    ``frames`` are inclusive output frame indices (first frame 0); ``seconds`` are start and
    end in seconds from the start of the output. At least one span is required. The ranges
    of one region are intersected by a reader: the rectangle, during that span.
    """

    rect: Rect
    frames: tuple[int, int] | None = None
    seconds: tuple[float, float] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        _require(self.frames is not None or self.seconds is not None,
                 "a changed region needs a frame span or a time span")
        if self.frames is not None:
            start, end = self.frames
            _require(0 <= start <= end, f"frame span {self.frames} is not 0 <= start <= end")
        if self.seconds is not None:
            t0, t1 = self.seconds
            _require(0 <= t0 <= t1, f"time span {self.seconds} is not 0 <= start <= end")

    def to_json(self) -> dict[str, Any]:
        region: list[dict[str, Any]] = []
        if self.frames is not None:
            region.append({"type": "frame",
                           "frame": {"start": self.frames[0], "end": self.frames[1]}})
        if self.seconds is not None:
            region.append({"type": "temporal", "time": {
                "type": "npt", "start": _npt(self.seconds[0]), "end": _npt(self.seconds[1])}})
        r = self.rect
        region.append({"type": "spatial", "shape": {
            "type": "rectangle", "unit": "pixel", "origin": {"x": r.x, "y": r.y},
            "width": r.width, "height": r.height}})
        out: dict[str, Any] = {"region": region}
        if self.description:
            out["description"] = self.description
        return out


def _npt(seconds: float) -> str:
    """Normal Play Time (RFC 2326) in seconds, to the millisecond."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") or "0"


@dataclass(frozen=True)
class ConsentReference:
    """Which signed consent allowed this output: ids and hashes, no personal data.

    ``ledger_checkpoint`` is the C2SP signed-note text of the ledger checkpoint that
    includes the decision leaf (origin, size, root, signature); ``registry_key_id`` the
    fingerprint of the key that signs checkpoints and decisions.
    """

    grant_ids: tuple[str, ...]
    grant_sha256s: tuple[str, ...]
    decision_id: str
    decision_leaf_index: int
    ledger_checkpoint: str
    ledger_checkpoint_sha256: str
    registry_key_id: str
    #: Grants (among ``grant_ids``) whose performer must approve this output before it is
    #: delivered: the file is published *held*. The approval itself comes later, so the
    #: registry's ledger records it, not this manifest (docs/provenance.md).
    approval_required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(len(self.grant_ids) > 0, "consent reference: no grant ids")
        _require(set(self.approval_required) <= set(self.grant_ids),
                 "consent reference: approval required by a grant it does not list")
        _require(len(self.grant_ids) == len(self.grant_sha256s),
                 "consent reference: one SHA-256 per grant id is required")
        _require(len(set(self.grant_ids)) == len(self.grant_ids),
                 f"consent reference: grant ids repeat ({', '.join(self.grant_ids)}); list "
                 "each grant once")
        for gid, digest in zip(self.grant_ids, self.grant_sha256s, strict=True):
            _require(bool(gid.strip()), "consent reference: empty grant id")
            _check_sha256(digest, f"grant {gid}")
        _require(bool(self.decision_id.strip()), "consent reference: empty decision id")
        _require(self.decision_leaf_index >= 0, "consent reference: leaf index < 0")
        _require(bool(self.ledger_checkpoint.strip()), "consent reference: empty checkpoint")
        _check_sha256(self.ledger_checkpoint_sha256, "ledger checkpoint")
        _require(bool(self.registry_key_id.strip()), "consent reference: empty registry key id")

    def to_json(self) -> dict[str, Any]:
        return {
            "grants": [{"id": g, "sha256": h}
                       for g, h in zip(self.grant_ids, self.grant_sha256s, strict=True)],
            "decision": {"id": self.decision_id, "ledger_leaf_index": self.decision_leaf_index},
            "ledger_checkpoint": {"note": self.ledger_checkpoint,
                                  "sha256": self.ledger_checkpoint_sha256},
            "registry_key_id": self.registry_key_id,
        } | ({} if not self.approval_required else {"approval": {
            "required_by_grants": list(self.approval_required),
            "status_at_signing": "awaiting",
            "recorded_in": "registry ledger (approval_recorded / approval_rejected)"}})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsentReference:
        """Parse the assertion back; raises :class:`ManifestReadError` when malformed."""
        try:
            # Outputs signed before grants were listed once may repeat an identical entry.
            grants = dict.fromkeys((str(g["id"]), str(g["sha256"])) for g in data["grants"])
            return cls(
                grant_ids=tuple(g for g, _ in grants),
                grant_sha256s=tuple(h for _, h in grants),
                decision_id=str(data["decision"]["id"]),
                decision_leaf_index=int(data["decision"]["ledger_leaf_index"]),
                ledger_checkpoint=str(data["ledger_checkpoint"]["note"]),
                ledger_checkpoint_sha256=str(data["ledger_checkpoint"]["sha256"]),
                registry_key_id=str(data["registry_key_id"]),
                approval_required=tuple(str(g) for g in
                                        data.get("approval", {}).get("required_by_grants", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ManifestInputError) as exc:
            raise ManifestReadError(f"the {CONSENT_LABEL} assertion is malformed: {exc}") from None


Span = tuple[str, int, int]
"""(face track, first frame, last frame), inclusive."""


@dataclass(frozen=True)
class FaceSegments:
    """What the allow decision authorised (with the grant of each segment) and what the render
    edited, per face track; a verifier checks edited ⊆ authorised."""

    authorised: tuple[tuple[str, int, int, str], ...]
    """(track, first frame, last frame, grant id)."""
    edited: tuple[Span, ...]

    def outside(self) -> list[Span]:
        """Edited spans not covered by the authorised segments of the same track (adjacent
        segments, split where the track was cut, cover the frames they join)."""
        out = []
        for track, first, last in self.edited:
            frame = first
            for _, a, b, _ in sorted(s for s in self.authorised if s[0] == track):
                if a <= frame <= b:
                    frame = b + 1
            if frame <= last:
                out.append((track, first, last))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"authorised": [{"track_id": t, "first_frame": a, "last_frame": b,
                                "grant_id": g} for t, a, b, g in self.authorised],
                "edited": [{"track_id": t, "first_frame": a, "last_frame": b}
                           for t, a, b in self.edited]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaceSegments:
        try:
            return cls(tuple((str(s["track_id"]), int(s["first_frame"]), int(s["last_frame"]),
                              str(s["grant_id"])) for s in data["authorised"]),
                       tuple((str(s["track_id"]), int(s["first_frame"]), int(s["last_frame"]))
                             for s in data["edited"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestReadError(f"the {SEGMENTS_LABEL} assertion is malformed: {exc}"
                                    ) from None

    @classmethod
    def from_store(cls, store: Mapping[str, Any]) -> FaceSegments | None:
        """The active manifest's segments assertion in a manifest store's JSON, if any."""
        manifests = store.get("manifests") or {}
        active = manifests.get(store.get("active_manifest", "")) or {}
        for assertion in active.get("assertions", []):
            if assertion.get("label") == SEGMENTS_LABEL:
                return cls.from_json(assertion.get("data") or {})
        return None


@dataclass(frozen=True)
class WatermarkBinding:
    """The invisible watermark embedded in the frames: its algorithm and 32-bit payload."""

    payload: int
    duration_ms: int
    alg: str = DEFAULT_WATERMARK_ALG

    def __post_init__(self) -> None:
        _require(0 <= self.payload <= _MAX_PAYLOAD,
                 f"watermark payload {self.payload} is not a 32-bit unsigned integer")
        _require(self.duration_ms > 0, "watermark: duration must be > 0 ms")
        _require(bool(self.alg.strip()), "watermark: algorithm name is empty")

    @property
    def value(self) -> str:
        return encode_payload(self.payload)


def encode_payload(payload: int) -> str:
    """The soft-binding ``value`` for a 32-bit payload: base64 of its 4 big-endian bytes."""
    return base64.b64encode(payload.to_bytes(4, "big")).decode("ascii")


def decode_payload(value: str) -> int:
    """Inverse of :func:`encode_payload`; raises :class:`ManifestReadError`."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raise ManifestReadError(f"soft-binding value {value!r} is not base64") from None
    if len(raw) != 4:
        raise ManifestReadError(f"soft-binding value holds {len(raw)} bytes, expected 4")
    return int.from_bytes(raw, "big")


@dataclass(frozen=True)
class ManifestInputs:
    """Everything the manifest of one dubbing output states."""

    title: str
    mime: str
    operation: Operation
    agent: SoftwareAgent
    source: IngredientInput
    consent: ConsentReference
    others: tuple[IngredientInput, ...] = ()
    languages: LanguagePair | None = None
    regions: tuple[ChangedRegion, ...] = ()
    watermark: WatermarkBinding | None = None
    training_mining: Mapping[str, TrainingUse] = field(
        default_factory=lambda: dict.fromkeys(TRAINING_MINING_ENTRIES, "notAllowed"))
    claim_generator: str = "consent-dubbing-studio"
    claim_generator_version: str = "0.1.0"
    thumbnail: bool = False
    segments: FaceSegments | None = None
    #: The render's QC figures (``studio.render.qc_step``): thresholds and per-track figures
    #: only, no file names (a name can identify a person, and a manifest cannot be recalled).
    qc: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _require(bool(self.title.strip()), "manifest title is empty")
        _require(bool(_MIME_RE.match(self.mime)), f"{self.mime!r} is not a MIME type")
        _require(self.operation in _OPERATION_DESCRIPTIONS,
                 f"operation {self.operation!r}: choose 'lipsync' or 'reenact'")
        _require(self.source.relationship == "parentOf",
                 f"the source shot must be 'parentOf', not {self.source.relationship!r}")
        for other in self.others:
            _require(other.relationship != "parentOf",
                     f"ingredient {other.label}: only the source shot is 'parentOf'")
        labels = [self.source.label, *(o.label for o in self.others)]
        _require(len(set(labels)) == len(labels), f"ingredient labels repeat: {labels}")
        for key, use in self.training_mining.items():
            _require(use in _TRAINING_USES,
                     f"training-mining {key}: {use!r} is not one of {', '.join(_TRAINING_USES)}")

    @property
    def ingredients(self) -> tuple[IngredientInput, ...]:
        return (self.source, *self.others)


# --------------------------------------------------------------------------------------
# The definition


def build_manifest_definition(inputs: ManifestInputs) -> dict[str, Any]:
    """The C2PA manifest definition (``Builder`` JSON) for one output. Pure; no I/O."""
    actions: list[dict[str, Any]] = [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [inputs.source.label]}},
    ]
    others = [o.label for o in inputs.others]
    if inputs.languages is not None:
        translated: dict[str, Any] = {
            "action": "c2pa.translated",
            "parameters": {"sourceLanguage": inputs.languages.source,
                           "targetLanguage": inputs.languages.target},
        }
        audio = [o.label for o in inputs.others if o.mime.startswith("audio/")]
        if audio:
            translated["parameters"]["ingredientIds"] = audio
        actions.append(translated)
    edited: dict[str, Any] = {
        "action": "c2pa.edited",
        "digitalSourceType": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": inputs.agent.to_json(),
        "description": _OPERATION_DESCRIPTIONS[inputs.operation],
    }
    if others:
        edited["parameters"] = {"ingredientIds": others}
    if inputs.regions:
        edited["changes"] = [r.to_json() for r in inputs.regions]
    actions.append(edited)

    # ``created``: each of these is the studio's own statement (C2PA 2.x created assertions).
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions", "created": True, "data": {"actions": actions}},
        {"label": CONSENT_LABEL, "created": True, "data": inputs.consent.to_json()},
        {"label": "cawg.training-mining", "created": True, "data": {"entries": {
            key: {"use": use} for key, use in sorted(inputs.training_mining.items())}}},
    ]
    if inputs.segments is not None:
        assertions.append({"label": SEGMENTS_LABEL, "created": True,
                           "data": inputs.segments.to_json()})
    if inputs.qc is not None:
        assertions.append({"label": QC_LABEL, "created": True, "data": dict(inputs.qc)})
    if inputs.watermark is not None:
        wm = inputs.watermark
        actions.append({"action": "c2pa.watermarked.bound", "parameters": {"alg": wm.alg}})
        assertions.append({"label": "c2pa.soft-binding", "created": True, "data": {
            "alg": wm.alg,
            "pad": [0],
            "blocks": [{"scope": {"timespan": {"start": 0, "end": wm.duration_ms}},
                        "value": wm.value}],
        }})

    return {
        "claim_generator_info": [{"name": inputs.claim_generator,
                                  "version": inputs.claim_generator_version}],
        "title": inputs.title,
        "format": inputs.mime,
        "ingredients": [i.to_json() for i in inputs.ingredients],
        "assertions": assertions,
    }

