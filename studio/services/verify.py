"""What a file is, who signed it, whether its consent still stands, its ledger proof and
its watermark (``studio verify``, the studio's Verify tab)."""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.hashing import file_identity
from studio.errors import InputChangedError, InputNotFoundError

if TYPE_CHECKING:
    from studio.provenance.verify import VerifyReport
    from studio.provenance.watermark import Detection
    from studio.services.context import AppContext

#: The reel deliverables that carry the shots' pictures (and so their watermarks).
VIDEO_KINDS = ("master", "review")


_PRESTARTED: dict[Path, tuple[tuple[int, ...], Future[Detection]]] = {}
_PRESTARTED_LOCK = threading.Lock()
#: The identity (``file_identity``) of the file each started read began on.
_READ_OF: weakref.WeakKeyDictionary[Future[Detection], tuple[int, ...]] = \
    weakref.WeakKeyDictionary()


def _identity(file: Path) -> tuple[Path, tuple[int, ...]] | None:
    found = file_identity(file)
    return None if found is None else (file.resolve(), found)


def prestart_watermark_read(file: Path) -> None:
    """Start :func:`start_watermark_read` now, for a later call on the same file (the
    ``studio`` entry point, before the command line loads) to take over. A later call on
    another file, or on this path after the file changed (device, inode, size, mtime, ctime),
    starts its own read; an unclaimed read ends with its thread."""
    key = _identity(file)
    future = _start(file) if key is not None else None
    if key is not None and future is not None:
        with _PRESTARTED_LOCK:
            _PRESTARTED[key[0]] = (key[1], future)


def start_watermark_read(file: Path) -> Future[Detection] | None:
    """The watermark's quick read of ``file`` (``WatermarkDetector.detect_file``), started
    on a thread of its own; ``None`` when there is no such file.

    The read is most of a verify's time (the decoder over 3-4 frames) and needs neither the
    registry nor the manifest, so a front end that has yet to open the registry starts it
    first and hands it to :func:`verify` (``studio verify``: the registry loads meanwhile).
    Its errors come out where ``verify`` takes the result, as they would have there.
    """
    key = _identity(file)
    if key is not None:
        with _PRESTARTED_LOCK:
            early = _PRESTARTED.pop(key[0], None)
        if early is not None and early[0] == key[1]:
            return early[1]
    return _start(file)


def _start(file: Path) -> Future[Detection] | None:
    if not file.is_file():
        return None
    identity = file_identity(file)
    pool = ThreadPoolExecutor(1, thread_name_prefix="watermark-read")
    try:
        future = pool.submit(_read, file)
    finally:
        pool.shutdown(wait=False)  # the read runs on; the thread ends with it
    if identity is not None:
        _READ_OF[future] = identity
    return future


def _read(file: Path) -> Detection:
    # The media stack (numpy, PyAV, OpenCV, onnxruntime) loads on this thread too, while the
    # caller goes on loading its own.
    from studio.provenance.watermark import WatermarkDetector

    return WatermarkDetector().detect_file(file)


def verify(ctx: AppContext, file: Path, *, watermark: bool = True,
           watermark_read: Future[Detection] | None = None) -> VerifyReport:
    """The file's provenance report (the media stack for the watermark loads here).
    ``watermark_read``: the quick read already started (:func:`start_watermark_read`)."""
    from studio.provenance.identity import trust_anchors
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    if not file.is_file():
        raise InputNotFoundError(f"{file}: no such file")
    # One content for the whole report: a read started on the file as it was before a write
    # is read again, and a write during the report refuses it (``InputChangedError``).
    before = file_identity(file)
    if watermark_read is not None and _READ_OF.get(watermark_read) != before:
        watermark_read = None
    settings = ctx.settings
    report = verify_file(file, ctx.registry, ManifestStore(settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(settings) or None,
                         watermark=watermark, watermark_read=watermark_read)
    # Only a file whose manifest says it is made from a reel is looked for among the reels'
    # deliverables (the reel tables are not touched for any other file).
    manifest = report.manifest
    if watermark and manifest is not None and any(
            "source-reel" in (i.label, i.title) or i.title == "source reel"
            for i in manifest.ingredients):
        report.reel = reel_marks(ctx, file, report.sha256)
    if file_identity(file) != before:
        raise InputChangedError(f"{file} changed while it was being verified: verify it "
                                "again once nothing writes to it")
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
