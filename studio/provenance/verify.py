"""``studio verify FILE``: everything anyone holding a file can learn about where it came from.

Four independent checks, each reported with what it found and how sure it is:

1. **C2PA manifest** (``signing.read_manifest``): validation state (``Trusted`` when the studio's
   root or a configured anchor signed it, ``Valid`` when intact but the signer is not trusted
   here, ``Invalid`` with the failing codes), signer, actions and ingredients.
2. **Consent now**: the grants the manifest's consent assertion names, looked up in the registry
   *today*: active, revoked (with the revocation), expired. A manifest is a record of the past;
   the registry says whether the use may continue.
3. **Ledger**: the inclusion proof of the output's publication event (found by the file's hash,
   or by the original's hash for a recovered manifest), verified against the current root.
   Signed and published are separate facts: a file the studio signed but never published (a
   render that crashed or was refused after signing) is reported "signed, not published" and
   does not verify.
4. **Watermark**: RivaGAN detection over frames sampled across the file, with its confidence.

With the ledger proof comes the output's **performer approval** (``Registry.approval_status``):
``not_required``, or, for an output made under a grant that requires approval, ``awaiting``,
``approved`` or ``rejected``. An approval is given after the file was signed and published,
so the file's own manifest cannot name it: the ledger does (docs/provenance.md). A held
(awaiting) or rejected output does not verify.

A copy whose metadata was stripped (re-encoded, screen-captured) has no manifest; when the
watermark is found, the manifest store is searched by its payload and the candidate is confirmed
by perceptual frame hashes, and the report says plainly that the manifest was *recovered*: its
hard binding cannot hold for a re-encoded copy, so its content is shown, not its integrity.
"Recovered" needs both: a payload whose frames match no stored manifest is reported as what it
is (a watermark payload, nothing more) and earns no badge. A centre-cropped copy, whose blind
read keeps too many wrong bits, is traced the other way round: the stored outputs whose frames
(whole, or their centre 80 %) look like it are the candidates, and the one whose payload the
frames read under crop hypotheses correlate with best is taken (``_recover``).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consent.approval import ApprovalStatus
from consent.errors import ConsentError, NotFoundError
from consent.ledger import EventType, Ledger
from consent.merkle import MerkleError
from consent.registry import Registry
from pipelines.hashing import file_identity, sha256_file
from studio.errors import InputChangedError
from studio.provenance.manifest import (
    ConsentReference,
    FaceSegments,
    ManifestReadError,
    NoManifestError,
    ProvenanceError,
    StoreError,
)
from studio.provenance.signing import ManifestReport, read_manifest
from studio.provenance.store import ManifestStore, frame_hashes_of
from studio.provenance.watermark import (
    MAX_FRAMES,
    Detection,
    WatermarkDetector,
    best_issued,
    crop_reads,
    sample_frames,
    strip_black_bars,
)

#: Frames read to confirm the payload a file's own manifest declares, when the quick
#: sequential read did not: a small picture re-encoded can leave a few wrong bits that only
#: a longer vote removes.
CONFIRM_FRAMES = 2 * MAX_FRAMES


@dataclass(frozen=True)
class GrantNow:
    grant_id: str
    status: str
    detail: str
    sha256_matches: bool | None
    """Does the registry's grant still have the hash the manifest recorded?"""

    def to_json(self) -> dict[str, Any]:
        return {"grant_id": self.grant_id, "status": self.status, "detail": self.detail,
                "sha256_matches": self.sha256_matches}


@dataclass(frozen=True)
class LedgerProof:
    index: int
    tree_size: int
    verified: bool
    proof: dict[str, Any]


@dataclass(frozen=True)
class Recovery:
    """What the watermark led to for a file that carries no manifest: a stored manifest
    matched by payload *and* frame hashes (``matched``), or only a payload (``report`` None)."""

    original_sha256: str
    distance: float
    report: ManifestReport | None
    note: str

    @property
    def matched(self) -> bool:
        return self.report is not None and bool(self.original_sha256)


@dataclass
class VerifyReport:
    path: Path
    sha256: str
    manifest: ManifestReport | None = None
    manifest_error: str | None = None
    recovered: Recovery | None = None
    consent: list[GrantNow] = field(default_factory=list)
    consent_error: str | None = None
    ledger: LedgerProof | None = None
    watermark: Detection | None = None
    watermark_error: str | None = None
    #: The authorised and edited face segments the manifest states (None: not recorded).
    segments: FaceSegments | None = None
    segments_error: str | None = None
    #: The performer approval of the published output (None: not published, or unknown).
    approval: ApprovalStatus | None = None
    approval_error: str | None = None
    #: A reel deliverable's watermarks shot by shot (``studio.reels.marks``; the services
    #: layer fills it in): ``{"reel_id", "language", "kind", "ok", "shots": [...]}``.
    reel: dict[str, Any] | None = None

    # -- the badges a person reads first ----------------------------------------------------

    @property
    def provenance(self) -> str:
        if self.manifest is not None:
            return str(self.manifest.state)
        if self.recovered is not None and self.recovered.matched:
            return "Recovered"
        return "Missing"

    @property
    def publication(self) -> str:
        """``published`` only with a verified ledger inclusion of ``output_published`` for
        this file's hash; ``original published`` for a recovered copy whose original's is."""
        if self.ledger is not None:
            if not self.ledger.verified:
                return "ledger proof failed"
            # A recovered copy is not the file the ledger names: its original is. Frame
            # hashes are perceptual, so the copy may also differ locally (a face replaced
            # keeps them within the match distance): never "published" for this file.
            return "published" if self.manifest is not None else "original published"
        if self.manifest is not None or (self.recovered is not None and self.recovered.matched):
            return "signed, not published"
        return "not published"

    @property
    def signer_trust(self) -> str:
        report = self.source_manifest()
        if report is None:
            return "unknown"
        if report.trusted_via:
            return "trusted (studio root)" if report.on_public_trust_list is not True \
                else "trusted (public C2PA trust list)"
        return "not trusted here"

    @property
    def consent_now(self) -> str:
        if not self.consent:
            return "unknown"
        statuses = {g.status for g in self.consent}
        if statuses == {"active"} and all(g.sha256_matches is not False for g in self.consent):
            return "active"
        for worst in ("revoked", "key_revoked", "expired", "invalid", "not_yet_valid"):
            if worst in statuses:
                return worst
        return "changed"

    @property
    def watermark_status(self) -> str:
        if self.watermark is None:
            return "not checked"
        expected = self._expected_payload()
        if expected is not None:
            if self.watermark.closest([expected]) == expected:
                return "found" if self.watermark.payload == expected else "found (weak read)"
            return "mismatch" if self.watermark.payload is not None else "not found"
        return "found" if self.watermark.payload is not None else "not found"

    def source_manifest(self) -> ManifestReport | None:
        """The manifest the report is about: the file's own, or a matched recovered one."""
        if self.manifest is not None:
            return self.manifest
        return self.recovered.report if self.recovered and self.recovered.matched else None

    def _expected_payload(self) -> int | None:
        report = self.source_manifest()
        if report is None or report.soft_binding is None:
            return None
        return report.soft_binding.payload

    @property
    def segments_check(self) -> str:
        """Whether every edited (track, frame range) lies inside an authorised segment."""
        if self.segments_error is not None:
            return "unreadable"
        if self.segments is None:
            return "not recorded"
        outside = self.segments.outside()
        if outside:
            return "edited outside authorised: " + ", ".join(f"{t} {a}-{b}"
                                                             for t, a, b in outside)
        return "edited within authorised"

    @property
    def approval_state(self) -> str:
        """``not_required``, ``awaiting``, ``approved``, ``rejected``; ``unknown`` without a
        publication (or when the ledger cannot be trusted: see ``approval_error``)."""
        return "unknown" if self.approval is None else self.approval.state.value

    @property
    def ok(self) -> bool:
        """Intact provenance, published (ledgered), consent still active, no edit outside
        the authorised segments the manifest states, and deliverable (approved by the
        performer, or no approval required)."""
        return (self.provenance in ("Valid", "Trusted") and self.consent_now == "active"
                and self.publication == "published"
                and self.segments_check in ("edited within authorised", "not recorded")
                and self.approval is not None and self.approval.deliverable
                and (self.reel is None or bool(self.reel.get("ok"))))

    def to_json(self) -> dict[str, Any]:
        report = self.manifest
        return {
            "file": str(self.path), "sha256": self.sha256, "ok": self.ok, "reel": self.reel,
            "badges": {"provenance": self.provenance, "signer": self.signer_trust,
                       "consent": self.consent_now, "watermark": self.watermark_status,
                       "publication": self.publication, "approval": self.approval_state},
            "published": self.publication == "published",
            "manifest": None if report is None else _report_json(report),
            "manifest_error": self.manifest_error,
            "recovered": None if self.recovered is None else {
                "original_sha256": self.recovered.original_sha256,
                "frame_distance": self.recovered.distance, "note": self.recovered.note,
                "matched": self.recovered.matched,
                "manifest": None if self.recovered.report is None
                else _report_json(self.recovered.report)},
            "consent": [g.to_json() for g in self.consent],
            "consent_error": self.consent_error,
            "ledger": None if self.ledger is None else {
                "index": self.ledger.index, "tree_size": self.ledger.tree_size,
                "verified": self.ledger.verified, "proof": self.ledger.proof},
            "watermark": None if self.watermark is None else {
                "payload": None if self.watermark.payload is None
                else f"{self.watermark.payload:08x}",
                "confidence": round(self.watermark.confidence, 3),
                "bit_agreement": round(self.watermark.bit_agreement, 3),
                "frames": self.watermark.frames_used, "status": self.watermark_status},
            "watermark_error": self.watermark_error,
            "segments": None if self.segments is None else {
                **self.segments.to_json(), "check": self.segments_check},
            "segments_check": self.segments_check,
            "approval": None if self.approval is None else self.approval.to_json(),
            "approval_error": self.approval_error,
        }


def _report_json(report: ManifestReport) -> dict[str, Any]:
    return {
        "state": str(report.state), "embedded": report.embedded,
        "sidecar": None if report.sidecar_path is None else str(report.sidecar_path),
        "failures": [{"code": f.code, "explanation": f.explanation} for f in report.failures],
        "signer": {"common_name": report.signer.common_name, "issuer": report.signer.issuer,
                   "organisation": report.signer.organisation},
        "trust_note": report.trust_note, "on_public_trust_list": report.on_public_trust_list,
        "title": report.title, "label": report.manifest_label,
        "actions": [{"action": a.action, "description": a.description,
                     "digital_source_type": a.digital_source_type,
                     "source_language": a.source_language,
                     "target_language": a.target_language} for a in report.actions],
        "ingredients": [{"label": i.label, "title": i.title, "relationship": i.relationship,
                         "sha256": i.sha256} for i in report.ingredients],
        "consent": None if report.consent is None else report.consent.to_json(),
        "training_mining": dict(report.training_mining),
        "soft_binding": None if report.soft_binding is None
        else {"alg": report.soft_binding.alg, "payload": report.soft_binding.payload_hex},
        "named_actors": [a.to_json() for a in report.named_actors],
    }


def verify_file(path: Path, registry: Registry, manifests: ManifestStore, *,
                trust_anchors_pem: bytes | None, watermark: bool = True,
                watermark_read: Future[Detection] | None = None) -> VerifyReport:
    """Run the four checks of the module docstring on ``path``. ``watermark_read``: the
    quick watermark read of ``path`` (``detect_file``), when a caller started it already."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    # The hash, the manifest and the watermark are three reads of the file: a file written
    # to between them would give a report of two contents (a hash that verifies beside a
    # watermark of other frames), so it gives none.
    before = file_identity(path)
    report = VerifyReport(path, sha256_file(path))
    try:
        report.manifest = read_manifest(path, trust_anchors_pem=trust_anchors_pem)
    except NoManifestError as exc:
        report.manifest_error = str(exc)
    except ProvenanceError as exc:
        report.manifest_error = f"{type(exc).__name__}: {exc}"
    if watermark:
        try:
            report.watermark = _detect(path, report, watermark_read)
        except (OSError, ValueError) as exc:
            report.watermark_error = str(exc)
    if report.manifest is None and report.watermark is not None:
        report.recovered = _recover(path, report.watermark, manifests, trust_anchors_pem)
    source = report.source_manifest()
    if source is not None:
        try:
            report.segments = FaceSegments.from_store(source.raw)
        except ManifestReadError as exc:
            report.segments_error = str(exc)
    consent = source.consent if source is not None else None
    if consent is not None:
        report.consent = _grants_now(registry, consent)
    elif source is not None:
        report.consent_error = "the manifest carries no consent assertion"
    if file_identity(path) != before:
        raise InputChangedError(f"{path} changed while it was being verified: verify it "
                                "again once nothing writes to it")
    output_sha = report.recovered.original_sha256 if report.recovered else report.sha256
    if report.recovered is not None and not report.recovered.matched:
        output_sha = ""  # a payload alone names no output
    report.ledger = _ledger_proof(registry, output_sha)
    if report.ledger is not None:
        try:
            report.approval = registry.approval_status(output_sha)
        except ConsentError as exc:  # a tampered ledger: no status is trusted
            report.approval_error = exc.message
    return report


def _detect(path: Path, report: VerifyReport,
            started: Future[Detection] | None = None) -> Detection:
    """The quick sequential read (``started`` already, or now); when the file's own manifest
    declares a payload that read does not confirm, a vote over more frames before the badge
    says "not found". Testing that one hypothesis keeps the chance match of a random read at
    about 1e-5 (``closest``), so the longer read cannot make an unmarked file look marked."""
    detector = WatermarkDetector()
    quick = started.result() if started is not None else detector.detect_file(path)
    expected = report._expected_payload()
    if expected is None or quick.closest([expected]) == expected:
        return quick
    longer = detector.detect_frames(strip_black_bars(f)
                                    for f in sample_frames(path, CONFIRM_FRAMES))
    return longer if longer.closest([expected]) == expected else quick


def _recover(path: Path, detection: Detection, manifests: ManifestStore,
             anchors: bytes | None) -> Recovery | None:
    # A decoded code word first (payload_code: a chance read decodes with p ≤ 6.4e-4).
    # Failing that, the payloads actually issued within 4 bits of the read: a re-encode of a
    # small picture can leave wrong bits the decoder was sure of, and a chance read lands that
    # near one given word with p ≈ 9.7e-6. Either way frame hashes must confirm the match
    # before anything is recovered (best_match).
    released = None if detection.payload is None else manifests.released(detection.payload)
    if released is not None:
        return Recovery("", 64.0, None,
                        f"watermark payload {detection.payload:08x} only: it was issued to a "
                        f"render that published nothing (released {released.get('released_at')})"
                        "; no manifest describes this file")
    in_use = manifests.payloads_in_use()
    near = detection.payload if detection.payload is not None \
        else detection.closest(in_use)
    hashes: tuple[int, ...] | None = None
    if near is None and in_use:
        # A centre crop moves the pattern's scale and loses the bits the decoder read in the
        # border (4-7 wrong of 32 at 80 %): read again under crop hypotheses and name the
        # payload that correlates best, among the stored outputs whose frames (whole or
        # centre) look like this file's, so that a chance correlation can name nothing else.
        # Hashes first: they cost a decode and no model call, and an unrelated file stops
        # there.
        try:
            hashes = frame_hashes_of(path)
            look_alikes = {m.payload for m in manifests.look_alikes(hashes)
                           if m.payload is not None}
            if look_alikes:
                reads = crop_reads(path, known={1.0: detection.mean_logits}
                                   if detection.frames_used else None)
                named = best_issued(reads, look_alikes)
                near = None if named is None else named.payload
        except (OSError, ValueError, StoreError):
            near = None
    if near is None:
        return None
    try:
        match = manifests.best_match(near, hashes if hashes is not None
                                     else frame_hashes_of(path))
    except StoreError as exc:
        return Recovery("", 64.0, None,
                        f"watermark payload {near:08x} only: no stored manifest matched this "
                        f"file's frames, so no manifest is shown ({exc})")
    stored = match.manifest
    try:
        recovered = read_manifest(path, trust_anchors_pem=anchors,
                                  sidecar=stored.manifest_path)
    except (ManifestReadError, NoManifestError) as exc:
        return Recovery(stored.sha256, match.distance, None,
                        f"watermark payload {near:08x} and frames matched output "
                        f"{stored.sha256[:16]}…, but its stored manifest is unreadable: {exc}")
    return Recovery(stored.sha256, match.distance, recovered,
                    "this file carries no manifest; the one shown was found through its "
                    f"watermark ({stored.payload_hex}) and confirmed by frame hashes "
                    f"({match.distance:.1f}/64 bits apart). It describes the original output "
                    f"{stored.sha256[:16]}…; this copy was re-encoded or stripped, so the "
                    "manifest's hash binding cannot hold for it, and it may have been edited "
                    "too: frame hashes are perceptual, a local change (a face replaced) still "
                    "matches them.")


def _grants_now(registry: Registry, consent: ConsentReference) -> list[GrantNow]:
    out = []
    for grant_id, sha in zip(consent.grant_ids, consent.grant_sha256s, strict=True):
        try:
            status = registry.grant(grant_id)
        except NotFoundError:
            out.append(GrantNow(grant_id, "unknown", "this registry has no such grant", None))
            continue
        out.append(GrantNow(grant_id, status.status, status.detail, status.sha256 == sha))
    return out


def _ledger_proof(registry: Registry, output_sha256: str) -> LedgerProof | None:
    if not output_sha256:
        return None
    with registry.store.session() as s:
        entries = Ledger.entries_referencing(s, "output", output_sha256,
                                             EventType.OUTPUT_PUBLISHED)
        if not entries:
            return None
        entry = entries[-1]
        proof = registry.ledger.inclusion_proof(s, entry.index)
    try:
        proof.verify()
        verified = True
    except MerkleError:  # reported in the result, not raised: verify describes, never stops
        verified = False
    data = proof.to_json()
    return LedgerProof(entry.index, int(data.get("tree_size", 0) or 0), verified, data)
