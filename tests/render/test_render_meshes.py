"""A local render warps the face meshes its tracking recorded, whatever happens to the mesh
files in the job's staging folder afterwards (``studio.render.meshes``).

The attacker can write ``<data>/staging`` (shared storage). The render reads the meshes once
into memory when tracking ends, checked against the tracking's own digest: files changed
before that check refuse the render (nothing published); files changed after it (during
step 4) move nothing, because step 4 never reads them again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consent.ledger import EventType, Ledger
from consent.registry import Registry
from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.faces.landmark_file import MESH_SHAPE
from pipelines.media import probe
from studio.errors import RenderWorkerError
from studio.identity import embedder_for, sha256_file
from studio.render import RenderJob, RenderRequest
from studio.render.analysis_cache import (
    AnalysisCache,
    analyse_for_render,
    render_analysis_params,
)
from studio.render.pipeline_step import run_pipeline
from studio.render.staging import PRIVATE_PREFIX
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE

pytestmark = pytest.mark.slow  # a render each


def _request(name: str) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name=name)


def _move_all(folder: Path, dx: float) -> tuple[float, float]:
    """Every mesh in ``folder`` ``dx`` px to the right, in place; the x span before."""
    spans = []
    for mesh_file in sorted(folder.glob("track-*.f32")):
        meshes = np.fromfile(mesh_file, dtype=np.float32).reshape(-1, *MESH_SHAPE)
        spans.append((float(meshes[:, :, 0].min()), float(meshes[:, :, 0].max())))
        meshes[:, :, 0] += dx
        with mesh_file.open("r+b") as fh:
            fh.write(meshes.tobytes())
    assert spans
    return min(a for a, _ in spans), max(b for _, b in spans)


def _published(registry: Registry) -> int:
    with registry.store.session() as s:
        return sum(Ledger.entry(s, i).event_type is EventType.OUTPUT_PUBLISHED
                   for i in range(Ledger.size(s)))


def test_meshes_changed_in_staging_as_tracking_ends_are_refused(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[tuple[float, float]] = []

    def analyse_then_move(*args: Any, **kwargs: Any) -> tuple[ShotAnalysis, bool]:
        # Tracked (or taken from the sealed cache) into staging; the attacker moves the
        # meshes before the render has read one.
        analysis, reused = analyse_for_render(*args, **kwargs)
        moved.append(_move_all(analysis.landmarks_dir, 120.0))
        return analysis, reused

    monkeypatch.setattr("studio.render.job.analyse_for_render", analyse_then_move)
    before = _published(registry)
    name = "moved-at-tracking.fr.mp4"
    with pytest.raises(RenderWorkerError, match="not those the tracking recorded"):
        RenderJob(_request(name), settings, registry).run()
    assert moved  # the attack ran
    assert not (settings.outputs_dir / name).exists()
    assert _published(registry) == before


def test_meshes_moved_during_the_render_do_not_move_the_edit(
        settings: Settings, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def move_then_render(work: Any, *args: Any, **kwargs: Any) -> Any:
        # Step 4 is about to start: the attacker moves every mesh file 120 px to the right.
        assert isinstance(work.source, ShotAnalysis)
        seen["face_x"] = _move_all(work.source.landmarks_dir, 120.0)
        # What step 4 warps: read-only copies in this process's private folder (memory-mapped,
        # flat in the shot's length), not the staging files.
        track = work.source.landmarks(work.source.tracks[0].track_id)
        assert track.mapped is not None
        seen["private"] = track.mapped.parents[1]
        assert seen["private"].name.startswith(f"{PRIVATE_PREFIX}{os.getpid()}-")
        result, note = run_pipeline(work, *args, **kwargs)
        seen["boxes"] = [c.box for c in result.changes if c.frames]
        return result, note

    monkeypatch.setattr("studio.render.job.run_pipeline", move_then_render)
    outcome = RenderJob(_request("moved-in-render.fr.mp4"), settings, registry).run()
    assert outcome.output.is_file()
    assert not seen["private"].exists()  # the job removed its private copies
    low, high = seen["face_x"]
    assert seen["boxes"]
    for x0, _, x1, _ in seen["boxes"]:
        # The edit is centred on the face that was tracked, not 120 px to the right of it.
        assert abs((x0 + x1) / 2 - (low + high) / 2) < 20, (seen["boxes"], seen["face_x"])


def test_the_cache_keeps_only_the_meshes_the_tracking_recorded(
        cold_settings: Settings, tmp_path: Path) -> None:
    # The cache copies a fresh analysis from the job's staging folder: meshes moved there
    # since they were tracked are never sealed as the studio's (a later render of the same
    # shot would take them on trust).
    settings = cold_settings
    embedder = embedder_for(settings)
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate, embedder.name)
    analysis = analyse_shot(DEMO_SHOT, tmp_path / "staging", embedder,
                            max_faces=params.max_faces, sample_every=params.sample_every,
                            max_samples=params.max_samples, end_samples=params.end_samples)
    assert analysis.landmarks_sha256
    cache, shot_sha = AnalysisCache.for_settings(settings), sha256_file(DEMO_SHOT)
    recorded = {p: p.read_bytes() for p in analysis.landmarks_dir.glob("track-*")}
    _move_all(analysis.landmarks_dir, 120.0)
    cache.store(params, shot_sha, analysis)
    assert cache.load(params, shot_sha, DEMO_SHOT, info, tmp_path / "a") is None
    for path, raw in recorded.items():  # the bytes the tracking wrote, again
        path.write_bytes(raw)
    cache.store(params, shot_sha, analysis)
    loaded = cache.load(params, shot_sha, DEMO_SHOT, info, tmp_path / "b")
    assert loaded is not None
    # The reused analysis carries the sealed meshes' digest: the render checks against it.
    assert loaded.landmarks_sha256 == analysis.landmarks_sha256
    assert loaded.pinned().meshes is not None
