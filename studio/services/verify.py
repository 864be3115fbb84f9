"""What a file is, who signed it, whether its consent still stands, its ledger proof and
its watermark (``studio verify``, the studio's Verify tab)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import InputNotFoundError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from studio.provenance.verify import VerifyReport

#: The reel deliverables that carry the shots' pictures (and so their watermarks).
VIDEO_KINDS = ("master", "review")


def verify(ctx: AppContext, file: Path, *, watermark: bool = True) -> VerifyReport:
    """The file's provenance report (the media stack for the watermark loads here)."""
    from studio.provenance.identity import trust_anchors
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    if not file.is_file():
        raise InputNotFoundError(f"{file}: no such file")
    settings = ctx.settings
    report = verify_file(file, ctx.registry, ManifestStore(settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(settings) or None,
                         watermark=watermark)
    # Only a file whose manifest says it is made from a reel is looked for among the reels'
    # deliverables (the reel tables are not touched for any other file).
    manifest = report.manifest
    if watermark and manifest is not None and any(
            "source-reel" in (i.label, i.title) or i.title == "source reel"
            for i in manifest.ingredients):
        report.reel = reel_marks(ctx, file, report.sha256)
    return report


def reel_marks(ctx: AppContext, file: Path, sha256: str) -> dict[str, Any] | None:
    """When ``file`` is a reel's conformed master or review proxy (a deliverable of a reel
    job, by its SHA-256): each shot's watermark read from the shot's own frames, a rendered
    shot's against its render's payload (``studio.reels.marks``). ``None`` otherwise."""
    from studio.provenance.store import ManifestStore
    from studio.reels.marks import ShotSpan, read_marks
    from studio.reels.store import ReelStore, ShotState

    store = ReelStore.open(ctx.registry.store)
    manifests = ManifestStore(ctx.settings.manifests_dir)

    def issued_to(payload: int) -> str | None:
        found = manifests.by_payload(payload)
        return found[0].sha256 if found else None

    for reel in store.reels():
        for job in store.jobs_of(reel.reel_id):
            item = next((i for i in job.deliverables.get("items", [])
                         if i.get("sha256") == sha256 and i.get("kind") in VIDEO_KINDS), None)
            if item is None:
                continue
            records = {s.shot: s for s in job.shots}
            spans = []
            for shot in reel.shots:
                record = records.get(shot.index)
                rendered = record is not None and record.state is ShotState.RENDERED
                output = str(record.outcome.get("sha256")) if rendered and record else None
                stored = manifests.by_hash(output) if output else None
                spans.append(ShotSpan(shot.index, shot.start, shot.end,
                                      None if stored is None else stored.payload, output))
            marks = read_marks(file, spans, issued_to)
            return {"reel_id": reel.reel_id, "language": job.language,
                    "kind": item["kind"], "ok": all(m.ok for m in marks),
                    "shots": [m.to_json() for m in marks]}
    return None
