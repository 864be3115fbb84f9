"""Sign an output with its C2PA manifest, and read back what a file's manifest says.

Why it is shaped like this:

- **Sign after the final encode.** Any later transcode breaks the hard binding (the hash of
  the media bytes); only the watermark survives that. ``sign_file`` therefore takes the
  finished file and either embeds the manifest (MP4, MOV and the other containers the SDK
  can write) or, for a container it cannot (Matroska, MXF) or on request, writes a sidecar
  ``<name>.c2pa`` next to it and leaves the media byte-for-byte untouched.
- **A sidecar must still be bound to its file.** For a format the SDK cannot parse, it
  signs a manifest with *no* hard binding at all, which would then validate against any
  file. We add a ``c2pa.hash.data`` assertion over the whole file ourselves; the SDK checks
  it when reading (``assertion.dataHash.mismatch`` on one changed byte).
- **Verification never touches the network** (``remote_manifest_fetch`` and OCSP off), and
  it says plainly whether the signer is trusted here and whether it is on a public trust
  list: a studio's own CA is not, so public validators show its manifests as untrusted.
- **Outputs appear atomically**: the signed file is written to a temporary name beside the
  destination and moved into place, so a failure never leaves something that looks signed.
- **One exception hierarchy** (:class:`~studio.provenance.manifest.ProvenanceError`); the
  SDK's ``C2paError`` never leaks out.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import c2pa  # type: ignore[import-untyped]
from cryptography import x509

from pipelines.hashing import sha256_file as sha256_file

from .certificates import SigningIdentity, organisation_of
from .manifest import (
    CONSENT_LABEL,
    INGREDIENT_SHA256_KEY,
    MAX_EMBEDDED_INGREDIENT,
    AmbiguousMatchError,
    CertificateError,
    ConsentReference,
    IngredientInput,
    ManifestInputError,
    ManifestInputs,
    ManifestReadError,
    NoManifestError,
    NoMatchError,
    ProvenanceError,
    SigningError,
    StoreError,
    UnsupportedFormatError,
    build_manifest_definition,
    decode_payload,
)

__all__ = [
    "AmbiguousMatchError",
    "CertificateError",
    "ManifestReadError",
    "ManifestReport",
    "NoManifestError",
    "NoMatchError",
    "ProvenanceError",
    "SignedOutput",
    "SigningError",
    "StoreError",
    "UnsupportedFormatError",
    "detect_mime",
    "read_manifest",
    "sha256_file",
    "sidecar_path_for",
    "sign_file",
]

ValidationState = Literal["Invalid", "Valid", "Trusted"]

#: Containers the SDK embeds a manifest into (checked on c2pa-python 0.38).
EMBEDDABLE = frozenset({
    "video/mp4", "video/quicktime", "audio/mp4", "audio/wav", "video/x-msvideo",
    "image/png", "image/jpeg", "image/webp", "image/tiff", "audio/mpeg", "audio/flac",
})
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_HARD_BINDING_RE = re.compile(r"c2pa\.hash\.(data|bmff|boxes|collection)")
_CHUNK = 1 << 20


def _settings(*, thumbnail: bool = False, user_anchors: bytes | None = None,
              public_anchors: bytes | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "builder": {"thumbnail": {"enabled": thumbnail}},
    }
    trust: dict[str, str] = {}
    if user_anchors:
        trust["user_anchors"] = user_anchors.decode("ascii")
    if public_anchors:
        trust["trust_anchors"] = public_anchors.decode("ascii")
    if trust:
        settings["trust"] = trust
    return settings


# --------------------------------------------------------------------------------------
# Files


def sidecar_path_for(path: Path) -> Path:
    """Where a file's sidecar manifest lives: same name, ``.c2pa`` extension."""
    return Path(path).with_suffix(".c2pa")


def detect_mime(path: Path) -> str:
    """The MIME type from the file's first bytes, else from its extension."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise UnsupportedFormatError(f"cannot read {path}: {exc.strerror}") from None
    sniffed = _sniff(head)
    if sniffed:
        return sniffed
    guessed = mimetypes.guess_type(str(path))[0]
    if guessed:
        return guessed
    raise UnsupportedFormatError(f"{Path(path).name}: not a media type this studio knows "
                                 "(neither its first bytes nor its extension say what it is)")


def _sniff(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x06\x0e\x2b\x34"):
        return "application/mxf"
    return None


@contextlib.contextmanager
def _temp_beside(dest: Path) -> Iterator[Path]:
    """A temporary path in ``dest``'s folder (so ``os.replace`` is atomic); removed on error."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    with _temp_beside(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# Signing


@dataclass(frozen=True)
class SignedOutput:
    """A signed output: where it is, its hash, and where its manifest went."""

    path: Path
    mime: str
    sha256: str
    size: int
    embedded: bool
    sidecar_path: Path | None
    manifest_bytes: bytes
    manifest_label: str = ""


class _HashingWriter(io.RawIOBase):
    """The SDK's destination stream, hashing bytes as they are written.

    c2pa-rs writes an embedded MP4 front to back; while it does, the SHA-256 the ledger needs
    comes for free instead of costing another read of the whole file. Any seek back and
    rewrite is noticed (``sequential`` turns False) and the caller hashes the file instead.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self.digest = hashlib.sha256()
        self.sequential = True
        self._pos = 0
        self._end = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._pos != self._end:
            self.sequential = False
        view = memoryview(data).cast("B")
        written = self.raw.write(view) or 0
        if self.sequential:
            self.digest.update(view[:written])
        self._pos += written
        self._end = max(self._end, self._pos)
        return written

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = self.raw.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self.raw.flush()


def manifest_label_of(manifest_bytes: bytes) -> str:
    """The active manifest's label, read from the manifest store bytes alone (no asset)."""
    try:
        reader = c2pa.Reader("application/c2pa", io.BytesIO(manifest_bytes))
        try:
            return str(json.loads(reader.json()).get("active_manifest") or "")
        finally:
            reader.close()
    except c2pa.C2paError as exc:
        raise ManifestReadError(f"the signed manifest cannot be read back: {exc}") from None


def sign_file(source_path: Path, dest_path: Path, inputs: ManifestInputs,
              identity: SigningIdentity, *, sidecar: bool = False,
              verify_after_sign: bool = True) -> SignedOutput:
    """Sign ``source_path`` (the final encode) into ``dest_path``.

    The manifest is embedded when the container allows it and ``sidecar`` is false;
    otherwise ``dest_path`` gets the untouched media and ``dest_path.with_suffix('.c2pa')``
    the manifest. ``dest_path`` may equal ``source_path`` (signed in place, atomically).
    ``verify_after_sign``: the SDK validates the signed file before returning (one more read
    of it; on by default: a manifest that would not validate is never published).
    """
    source, dest = Path(source_path), Path(dest_path)
    if not source.is_file():
        raise SigningError(f"cannot sign {source}: no such file")
    if not dest.parent.is_dir():
        raise SigningError(f"cannot write {dest}: folder {dest.parent} does not exist")
    mime = detect_mime(source)
    if mime != inputs.mime:
        raise ManifestInputError(f"{source.name} is {mime} by its content, but the manifest "
                                 f"inputs say {inputs.mime}; fix the inputs")
    embed = not sidecar and mime in EMBEDDABLE
    definition = build_manifest_definition(inputs)
    if mime not in EMBEDDABLE:
        # The SDK cannot hash this container: bind the sidecar to every byte of the file.
        digest = bytes.fromhex(sha256_file(source))
        definition["assertions"].append({"label": "c2pa.hash.data", "data": {
            "alg": "sha256", "hash": list(digest), "name": "whole file", "pad": []}})
    streamed = [i for i in inputs.ingredients if i.path is not None]
    definition["ingredients"] = [i.to_json() for i in inputs.ingredients if i.path is None]
    for ingredient in streamed:
        actual = sha256_file(Path(str(ingredient.path)))
        if actual != ingredient.sha256:
            raise ManifestInputError(
                f"ingredient {ingredient.label}: {ingredient.path} has SHA-256 {actual[:16]}…, "
                f"the inputs say {ingredient.sha256[:16]}…; the file changed after the render")
        if ingredient.embed and Path(str(ingredient.path)).stat().st_size > \
                MAX_EMBEDDED_INGREDIENT:
            raise ManifestInputError(
                f"ingredient {ingredient.label}: {ingredient.path} is larger than "
                f"{MAX_EMBEDDED_INGREDIENT // 1024} KiB, too large to carry in the manifest")

    out_sha: str | None = None
    with _temp_beside(dest) as tmp:
        try:
            manifest_bytes, out_sha = _sign(definition, inputs, identity, streamed, mime,
                                           source, tmp, embed=embed,
                                           verify_after_sign=verify_after_sign)
        except c2pa.C2paError as exc:
            raise SigningError(_explain_sdk_error(exc)) from None
        if embed:
            os.replace(tmp, dest)
            sidecar_out: Path | None = None
        else:
            if dest.resolve() != source.resolve():
                shutil.copyfile(source, tmp)
                os.replace(tmp, dest)
            sidecar_out = sidecar_path_for(dest)
            write_atomic(sidecar_out, manifest_bytes)
            out_sha = None  # the media was copied, not written by the SDK
    return SignedOutput(path=dest, mime=mime, sha256=out_sha or sha256_file(dest),
                        size=dest.stat().st_size, embedded=embed, sidecar_path=sidecar_out,
                        manifest_bytes=manifest_bytes,
                        manifest_label=manifest_label_of(manifest_bytes))


def _sign(definition: dict[str, Any], inputs: ManifestInputs, identity: SigningIdentity,
          streamed: list[IngredientInput], mime: str, source: Path, out_path: Path, *,
          embed: bool, verify_after_sign: bool = True) -> tuple[bytes, str | None]:
    """Sign into ``out_path``; returns the manifest bytes and, when the SDK wrote the file
    front to back, its SHA-256."""
    # The studio's own anchors: an input signed by this studio (a second pass over an output)
    # is recorded in its ingredient's validationResults as trusted, not as an unknown signer.
    settings = _settings(thumbnail=inputs.thumbnail, user_anchors=identity.trust_anchors_pem)
    settings["verify"]["verify_after_sign"] = verify_after_sign
    context = c2pa.Context.from_dict(settings)
    # A CAWG identity assertion (when the identity has a credential) vouches for what the
    # studio did and under which consent: the actions and the consent assertion.
    # (The SDK writes the definition's ``c2pa.actions`` as ``c2pa.actions.v2``.)
    labels = {str(a.get("label")) for a in definition.get("assertions", [])}
    referenced = (("c2pa.actions.v2",) if any(x.startswith("c2pa.actions") for x in labels)
                  else ()) + ((CONSENT_LABEL,) if CONSENT_LABEL in labels else ())
    signer = identity.make_signer(referenced=referenced)
    try:
        with c2pa.Builder(definition, context) as builder:
            if not embed:
                builder.set_no_embed()
            for ingredient in streamed:
                _add_ingredient(builder, ingredient)
            with open(source, "rb") as src, open(out_path, "w+b") as out:
                writer = _HashingWriter(out)
                manifest: bytes = builder.sign(signer, mime, src, writer)
                out.flush()
                os.fsync(out.fileno())
        return manifest, writer.digest.hexdigest() if writer.sequential else None
    finally:
        signer.close()
        context.close()


def _add_ingredient(builder: Any, ingredient: IngredientInput) -> None:
    """Add one input from its file: the SDK reads any manifest it carries, validates it and
    links it by hash (``activeManifest``, ``claimSignature``); an embedded input's bytes
    become a ``c2pa.embedded-data`` assertion the ingredient's ``data`` links to by hash."""
    path = Path(str(ingredient.path))
    definition = ingredient.to_json()
    if ingredient.embed:
        resource = f"{ingredient.label}.data"
        builder.add_resource(resource, io.BytesIO(path.read_bytes()))
        definition["data"] = {"format": ingredient.mime, "identifier": resource}
    with open(path, "rb") as fh:
        builder.add_ingredient(definition, ingredient.mime, fh)


def _explain_sdk_error(exc: Exception) -> str:
    text = str(exc)
    hint = ""
    lowered = text.lower()
    if "certificate" in lowered or "cert" in lowered or "signature" in lowered:
        hint = (" Check the signing certificate: X.509 v3 end-entity with AKI, KeyUsage "
                "digitalSignature, an EKU with emailProtection, an Organization in the "
                "subject, and a key that matches it (a signing callback must return raw r‖s).")
    elif "ingredient" in lowered:
        hint = " Check the ingredient files and their MIME types."
    return f"the C2PA SDK refused to sign: {text}.{hint}"


# --------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ValidationIssue:
    code: str
    explanation: str
    url: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    common_name: str | None
    issuer: str | None
    organisation: str | None
    algorithm: str | None
    serial_number: str | None


@dataclass(frozen=True)
class ActionSummary:
    action: str
    description: str | None
    digital_source_type: str | None
    software_agent: Mapping[str, Any] | None
    source_language: str | None
    target_language: str | None
    ingredients: tuple[str, ...]
    changes: tuple[Mapping[str, Any], ...]
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class IngredientSummary:
    label: str
    title: str
    mime: str | None
    relationship: str | None
    sha256: str | None
    has_manifest: bool


@dataclass(frozen=True)
class SoftBindingInfo:
    alg: str
    payload: int
    start_ms: int | None
    end_ms: int | None

    @property
    def payload_hex(self) -> str:
        return f"{self.payload:08x}"


@dataclass(frozen=True)
class NamedActor:
    """A CAWG identity assertion: whom the manifest names as having acted, in which roles,
    and what this verifier made of its credential."""

    label: str
    common_name: str | None
    organisation: str | None
    roles: tuple[str, ...]
    referenced: tuple[str, ...]
    #: ``trusted`` (the credential chains to a CAWG anchor this verifier holds),
    #: ``untrusted`` (well-formed and validly signed, by a credential on no such list),
    #: ``invalid`` (the assertion or its signature failed, or the reader did not say it
    #: validated the signature).
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "common_name": self.common_name,
                "organisation": self.organisation, "roles": list(self.roles),
                "referenced": list(self.referenced), "status": self.status}


@dataclass(frozen=True)
class ManifestReport:
    """What a file's manifest says, and whether it can be believed."""

    path: Path
    mime: str
    embedded: bool
    sidecar_path: Path | None
    state: ValidationState
    failures: tuple[ValidationIssue, ...]
    informational: tuple[ValidationIssue, ...]
    signer: SignerInfo
    trusted_via: str | None
    on_public_trust_list: bool | None
    trust_note: str
    title: str | None
    manifest_label: str
    actions: tuple[ActionSummary, ...]
    ingredients: tuple[IngredientSummary, ...]
    consent: ConsentReference | None
    training_mining: Mapping[str, str]
    soft_binding: SoftBindingInfo | None
    raw: Mapping[str, Any]
    named_actors: tuple[NamedActor, ...] = ()

    @property
    def failure_codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.failures)

    def action(self, name: str) -> ActionSummary | None:
        return next((a for a in self.actions if a.action == name), None)

    def describe(self) -> str:
        """A few lines for a person."""
        where = "embedded" if self.embedded else f"sidecar {self.sidecar_path}"
        lines = [
            f"{self.path.name}: {self.state} ({where})",
            f"signed by {self.signer.common_name} (O={self.signer.organisation}), issued by "
            f"{self.signer.issuer}",
            self.trust_note,
        ]
        lines += [f"  failure {f.code}: {f.explanation}" for f in self.failures]
        lines += [f"  action {a.action}" + (f": {a.description}" if a.description else "")
                  for a in self.actions]
        lines += [f"  ingredient {i.title} ({i.relationship})" for i in self.ingredients]
        if self.soft_binding is not None:
            lines.append(f"  watermark payload {self.soft_binding.payload_hex} "
                         f"({self.soft_binding.alg})")
        lines += [f"  named actor {a.common_name} (O={a.organisation}) as "
                  f"{', '.join(a.roles)} over {', '.join(a.referenced) or 'nothing'}: "
                  f"credential {a.status}" for a in self.named_actors]
        return "\n".join(lines)


def read_manifest(path: Path, *, trust_anchors_pem: bytes | None = None,
                  sidecar: Path | None = None,
                  public_trust_list_pem: bytes | None = None) -> ManifestReport:
    """Validate and summarise the manifest of ``path`` (embedded, or its sidecar).

    ``trust_anchors_pem``: roots this verifier trusts (the studio root). ``sidecar``: read
    the manifest from this file instead of the media; when not given and the media has no
    embedded manifest, ``<name>.c2pa`` beside it is used if present.
    ``public_trust_list_pem``: the C2PA trust list, if the operator keeps a copy (offline).
    """
    media = Path(path)
    if not media.is_file():
        raise NoManifestError(f"{media}: no such file")
    mime = detect_mime(media)
    settings = _settings(user_anchors=trust_anchors_pem, public_anchors=public_trust_list_pem)
    manifest_data: bytes | None = None
    sidecar_used: Path | None = None
    if sidecar is not None:
        sidecar_used = Path(sidecar)
        manifest_data = _read_sidecar(sidecar_used)
    try:
        store, detailed = _read(media, mime, settings, manifest_data)
    except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported) as exc:
        default_sidecar = sidecar_path_for(media)
        if sidecar is not None or not default_sidecar.is_file():
            raise NoManifestError(_no_manifest_message(media, mime, exc)) from None
        sidecar_used, manifest_data = default_sidecar, _read_sidecar(default_sidecar)
        try:
            store, detailed = _read(media, mime, settings, manifest_data)
        except c2pa.C2paError as exc2:
            raise ManifestReadError(f"{default_sidecar}: unreadable manifest: {exc2}") from None
    except c2pa.C2paError as exc:
        raise ManifestReadError(f"{media.name}: the manifest cannot be read: {exc}") from None
    if manifest_data is None:
        manifest_data = _embedded_manifest_bytes(media, mime)
    return _report(media, mime, store, detailed, sidecar_used, manifest_data,
                   public_list=public_trust_list_pem is not None,
                   anchors=trust_anchors_pem is not None)


def _read_sidecar(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NoManifestError(f"cannot read sidecar manifest {path}: {exc.strerror}") from None


def _read(media: Path, mime: str, settings: dict[str, Any],
          manifest_data: bytes | None) -> tuple[dict[str, Any], dict[str, Any]]:
    context = c2pa.Context.from_dict(settings)
    try:
        with open(media, "rb") as fh, c2pa.Reader(mime, fh, manifest_data,
                                                  context=context) as reader:
            return json.loads(reader.json()), json.loads(reader.detailed_json())
    finally:
        context.close()


def _no_manifest_message(media: Path, mime: str, exc: Exception) -> str:
    if isinstance(exc, c2pa.C2paError.NotSupported) or mime not in EMBEDDABLE:
        return (f"{media.name} ({mime}) cannot carry an embedded manifest and there is no "
                f"sidecar {sidecar_path_for(media).name} beside it. If it was stripped or "
                "re-encoded, look it up by its watermark payload in the manifest store.")
    return (f"{media.name} carries no C2PA manifest (and no sidecar "
            f"{sidecar_path_for(media).name}). If it was re-encoded or its metadata "
            "stripped, decode its watermark and look the payload up in the manifest store.")


def _report(media: Path, mime: str, store: dict[str, Any], detailed: dict[str, Any],
            sidecar: Path | None, manifest_data: bytes | None, *, public_list: bool,
            anchors: bool) -> ManifestReport:
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    if not label or label not in manifests:
        raise ManifestReadError(f"{media.name}: the manifest store has no active manifest")
    active = manifests[label]
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [_issue(x) for x in results.get("failure", [])]
    informational = tuple(_issue(x) for x in results.get("informational", []))
    success = [_issue(x) for x in results.get("success", [])]
    if not results and store.get("validation_status"):
        failures = [_issue(x) for x in store["validation_status"]]
    state: ValidationState = store.get("validation_state") or ("Invalid" if failures
                                                                else "Valid")
    if not _has_hard_binding(detailed, label):
        failures.append(ValidationIssue(
            "claim.hardBindings.missing",
            "the manifest is bound to no file content (no hash assertion): it proves nothing "
            "about this file"))
        state = "Invalid"

    info = active.get("signature_info") or {}
    signer = SignerInfo(
        common_name=info.get("common_name"), issuer=info.get("issuer"),
        organisation=_signer_organisation(manifest_data, info),
        algorithm=info.get("alg"), serial_number=info.get("cert_serial_number"))
    trusted_via = next((_anchor_source(s.explanation) for s in success
                        if s.code == "signingCredential.trusted"), None)
    on_list, note = _trust_note(state, trusted_via, public_list=public_list, anchors=anchors)

    ingredients = tuple(_ingredient(i) for i in active.get("ingredients", []))
    titles = {i.label: i.title for i in ingredients}
    assertions = {a.get("label", ""): a.get("data") for a in active.get("assertions", [])}
    actions_data = next((d for k, d in assertions.items() if k.startswith("c2pa.actions")), None)
    actions = tuple(_action(a, titles) for a in (actions_data or {}).get("actions", []))
    consent_data = assertions.get(CONSENT_LABEL)
    training = assertions.get("cawg.training-mining") or {}
    return ManifestReport(
        path=media, mime=mime, embedded=sidecar is None, sidecar_path=sidecar, state=state,
        failures=tuple(failures), informational=informational, signer=signer,
        trusted_via=trusted_via, on_public_trust_list=on_list, trust_note=note,
        title=active.get("title"), manifest_label=label, actions=actions,
        ingredients=ingredients,
        consent=ConsentReference.from_json(consent_data) if consent_data else None,
        training_mining={k: str(v.get("use")) for k, v in
                         (training.get("entries") or {}).items()},
        soft_binding=_soft_binding(assertions.get("c2pa.soft-binding")),
        raw=store,
        named_actors=tuple(_named_actor(a, results) for a in active.get("assertions", [])
                           if str(a.get("label", "")).startswith("cawg.identity")),
    )


def _named_actor(assertion: Mapping[str, Any], results: Mapping[str, Any]) -> NamedActor:
    label = str(assertion.get("label"))
    data = assertion.get("data") or {}
    payload = data.get("signer_payload") or {}
    info = data.get("signature_info") or {}
    codes = {(kind, item.get("code")) for kind in ("success", "failure")
             for item in results.get(kind, [])
             if str(item.get("url", "")).endswith(f"/c2pa.assertions/{label}")}
    # ``untrusted`` says "validly signed": only with the reader's word that the signature
    # was checked (a well-formed assertion of a kind it does not verify is not vouched for).
    if any(kind == "failure" and code != "cawg.x509.credential.untrusted"
           for kind, code in codes) or not {("success", "cawg.identity.well-formed"),
                                            ("success", "cawg.x509.signature.validated")
                                            } <= codes:
        status = "invalid"
    elif ("success", "cawg.x509.credential.trusted") in codes:
        status = "trusted"
    else:
        status = "untrusted"
    return NamedActor(
        label=label, common_name=info.get("common_name"), organisation=info.get("issuer"),
        roles=tuple(str(r) for r in payload.get("role") or ()),
        referenced=tuple(str(r.get("url", "")).rpartition("/")[2]
                         for r in payload.get("referenced_assertions") or ()),
        status=status)


def _issue(item: Mapping[str, Any]) -> ValidationIssue:
    return ValidationIssue(str(item.get("code", "")), str(item.get("explanation", "")),
                           item.get("url"))


def _has_hard_binding(detailed: Mapping[str, Any], label: str) -> bool:
    manifest = (detailed.get("manifests") or {}).get(label) or {}
    claim = manifest.get("claim") or {}
    refs = [*claim.get("created_assertions", []), *claim.get("gathered_assertions", []),
            *claim.get("assertions", [])]
    return any(_HARD_BINDING_RE.search(str(r.get("url", ""))) for r in refs)


def _anchor_source(explanation: str) -> str:
    match = re.search(r"\[([a-z_]+)\]", explanation)
    return match.group(1) if match else "configured anchors"


def _trust_note(state: str, via: str | None, *, public_list: bool,
                anchors: bool) -> tuple[bool | None, str]:
    if via == "trust_anchors" and public_list:
        return True, "The signer chains to the C2PA public trust list configured here."
    if via is not None:
        return False, ("Trusted by this verifier's own anchor (a studio CA), which is NOT on "
                       "the C2PA public trust list: public validators will show this "
                       "manifest as valid but from an unrecognised signer.")
    if state == "Invalid":
        return None, "The manifest is Invalid: do not rely on anything it says."
    checked = ("nor to the C2PA public trust list configured here" if public_list else
               "and no public trust list was configured (verification runs offline)")
    if public_list:
        return False, f"NOT trusted: the signer chains to no anchor configured here, {checked}."
    where = "no anchor configured here" if anchors else "no anchor (none were configured)"
    return None, (f"NOT trusted: the signer chains to {where} {checked}; whether it is on "
                  "the C2PA public trust list was not checked.")


def _ingredient(item: Mapping[str, Any]) -> IngredientSummary:
    metadata = item.get("metadata") or {}
    return IngredientSummary(
        label=str(item.get("label", "")), title=str(item.get("title", "")),
        mime=item.get("format"), relationship=item.get("relationship"),
        sha256=metadata.get(INGREDIENT_SHA256_KEY),
        has_manifest=bool(item.get("active_manifest")))


def _action(item: Mapping[str, Any], titles: Mapping[str, str]) -> ActionSummary:
    params = item.get("parameters") or {}
    linked = []
    for ref in params.get("ingredients") or []:
        url = str(ref.get("url", ""))
        linked.append(titles.get(url.rsplit("/", 1)[-1], url))
    agent = item.get("softwareAgent")
    if isinstance(agent, str):
        agent = {"name": agent}
    return ActionSummary(
        action=str(item.get("action", "")), description=item.get("description"),
        digital_source_type=item.get("digitalSourceType"), software_agent=agent,
        source_language=params.get("sourceLanguage"),
        target_language=params.get("targetLanguage"), ingredients=tuple(linked),
        changes=tuple(item.get("changes") or ()), parameters=params)


def _soft_binding(data: Mapping[str, Any] | None) -> SoftBindingInfo | None:
    if not data:
        return None
    blocks = data.get("blocks") or []
    if not blocks:
        raise ManifestReadError("the c2pa.soft-binding assertion has no blocks")
    block = blocks[0]
    span = (block.get("scope") or {}).get("timespan") or {}
    return SoftBindingInfo(alg=str(data.get("alg", "")),
                           payload=decode_payload(str(block.get("value", ""))),
                           start_ms=span.get("start"), end_ms=span.get("end"))


# The SDK reports the signer's common name and its issuer, not the signer's own organisation:
# that comes from the certificate inside the manifest's COSE signature (x5chain).

def _signer_organisation(manifest_data: bytes | None, info: Mapping[str, Any]) -> str | None:
    if not manifest_data:
        return None
    serial = info.get("cert_serial_number")
    for cert in _certificates_in(manifest_data):
        if serial is not None and str(cert.serial_number) == str(serial):
            return organisation_of(cert.subject)
    return None


def _certificates_in(data: bytes) -> Iterator[x509.Certificate]:
    start = 0
    while (i := data.find(b"\x30\x82", start)) >= 0:
        start = i + 1
        length = int.from_bytes(data[i + 2:i + 4], "big")
        try:
            yield x509.load_der_x509_certificate(data[i:i + 4 + length])
        except ValueError:
            continue


def _embedded_manifest_bytes(media: Path, mime: str) -> bytes | None:
    """The C2PA ``uuid`` box of an MP4/MOV (top level, read without loading the media)."""
    if mime not in ("video/mp4", "video/quicktime", "audio/mp4"):
        return None
    size = media.stat().st_size
    with open(media, "rb") as fh:
        return _find_c2pa_box(fh, size)


def _find_c2pa_box(fh: BinaryIO, size: int) -> bytes | None:
    offset = 0
    while offset + 8 <= size:
        fh.seek(offset)
        header = fh.read(16)
        box_size = int.from_bytes(header[0:4], "big")
        kind = header[4:8]
        head_len = 8
        if box_size == 1 and len(header) == 16:
            box_size, head_len = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:
            box_size = size - offset
        if box_size < head_len:
            return None
        if kind == b"uuid":
            fh.seek(offset + head_len)
            if fh.read(16) == _C2PA_UUID and box_size < 64 * _CHUNK:
                return fh.read(box_size - head_len - 16)
        offset += box_size
    return None
