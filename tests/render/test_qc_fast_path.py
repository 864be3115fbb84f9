"""The render QC's fast path (source series kept, output alone decoded) reports exactly what
the full QC (source and output decoded and measured side by side) reports, on a real render
of the demo shot; a tampered kept series is never used."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipelines.media
from consent.registry import Registry
from studio.identity import sha256_file
from studio.render import RenderJob, RenderRequest
from studio.render import job as job_module
from studio.render.qc_cache import QCSourceCache
from studio.render.qc_step import lipsync_qc
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE

pytestmark = pytest.mark.slow  # one render of the demo shot


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, render_qc=True)


def test_the_fast_qc_reports_what_the_full_qc_reports(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    real = lipsync_qc
    calls: list[tuple[Any, Any, dict[str, Any]]] = []

    def spy(analysis: Any, drives: Any, output: Path, **kw: Any) -> Any:
        calls.append((analysis, drives, kw))
        return real(analysis, drives, output, **kw)

    monkeypatch.setattr(job_module, "lipsync_qc", spy)
    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator="Test Operator", dub=OTHER_VOICE, output_name="qc.fr.mp4")
    outcome = RenderJob(request, settings, registry).run()
    (analysis, drives, kw), = calls
    # The job's staging copy of the shot is gone with the job: the same bytes from assets.
    analysis = replace(analysis, source=DEMO_SHOT)
    cache, sha = kw["source_cache"], kw["source_sha256"]
    assert isinstance(cache, QCSourceCache) and sha == sha256_file(DEMO_SHOT)
    track_ids = sorted(drives)
    frames = analysis.scan.frame_count
    kept = {t: cache.load(sha, analysis.landmarks_sha256, t, frames) for t in track_ids}
    assert all(s is not None and np.isfinite(s).sum() > frames // 2 for s in kept.values())

    opened: list[str] = []
    reader = pipelines.media.VideoReader

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(path).name)
        return reader(path, *args, **kwargs)

    monkeypatch.setattr(pipelines.media, "VideoReader", counting)
    embedder = kw["embedder"]
    full = real(analysis, drives, outcome.output, embedder=embedder)
    assert sorted(opened) == sorted([DEMO_SHOT.name, outcome.output.name])
    opened.clear()
    fast = real(analysis, drives, outcome.output, embedder=embedder,
                source_cache=cache, source_sha256=sha)
    assert opened == [outcome.output.name]  # the shot is not decoded again
    assert fast.report == full.report
    # ... and the render's own QC (which measured the shot and kept its series) agrees.
    # (The job measured its staged output, before the manifest went in: same pictures.)
    assert outcome.qc is not None and outcome.qc["tracks"] == full.report["tracks"]
    assert outcome.needs_review == full.needs_review

    # A kept series moved by an attacker (its seal kept) is discarded and measured afresh:
    # the report is the full one, and a sound series is kept in its place.
    (t,) = track_ids[:1]
    path = cache.root / f"{cache.key(sha, analysis.landmarks_sha256, t, frames)}.json"
    doc = json.loads(path.read_text())
    doc["body"]["series"] = [None if v is None else 0.0 for v in doc["body"]["series"]]
    path.write_text(json.dumps(doc))
    opened.clear()
    again = real(analysis, drives, outcome.output, embedder=embedder,
                 source_cache=cache, source_sha256=sha)
    assert DEMO_SHOT.name in opened
    assert again.report == full.report
    restored, before = cache.load(sha, analysis.landmarks_sha256, t, frames), kept[t]
    assert restored is not None and before is not None
    assert np.array_equal(restored, before, equal_nan=True)
