"""Hostile tests of the analysis cache after its seal was checked.

The attacker can write ``<data>/analysis`` (not the HMAC key). An entry's seal is checked when
a render places the entry's files in its staging folder; the render reads the meshes from
there much later (memory-mapped, frame by frame, in step 4). So what the seal checked must be
the very bytes the render reads: a cache entry edited in place afterwards, or a link in an
entry to a file the attacker keeps editing, must not move the face the render warps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.faces.landmark_file import MESH_SHAPE
from pipelines.media import probe
from studio.identity import embedder_for, sha256_file
from studio.render import analysis_cache
from studio.render.analysis_cache import AnalysisCache, AnalysisParams, render_analysis_params
from studio.settings import Settings

from .conftest import DEMO_SHOT

pytestmark = pytest.mark.slow  # one analysis of the demo shot per test

Cached = tuple[AnalysisCache, AnalysisParams, Path]


@pytest.fixture
def settings(cold_settings: Settings) -> Settings:
    """An empty cache: these tests watch entries being made, found and discarded."""
    return cold_settings


@pytest.fixture
def analysed(settings: Settings, tmp_path: Path) -> tuple[AnalysisParams, ShotAnalysis]:
    embedder = embedder_for(settings)
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate, embedder.name)
    return params, analyse_shot(DEMO_SHOT, tmp_path / "scan", embedder,
                                max_faces=params.max_faces, sample_every=params.sample_every,
                                max_samples=params.max_samples,
                                end_samples=params.end_samples)


@pytest.fixture
def cached(settings: Settings, analysed: tuple[AnalysisParams, ShotAnalysis]) -> Cached:
    params, analysis = analysed
    cache = AnalysisCache.for_settings(settings)
    cache.store(params, sha256_file(DEMO_SHOT), analysis)
    root = settings.data_dir / "analysis"
    (entry,) = [p for p in root.iterdir() if p.is_dir()]
    return cache, params, entry


def _moved(raw: bytes, dx: float) -> bytes:
    """The meshes of a track file, every point ``dx`` pixels to the right (another face)."""
    meshes = np.frombuffer(raw, dtype=np.float32).reshape(-1, *MESH_SHAPE).copy()
    meshes[:, :, 0] += dx
    return meshes.tobytes()


def test_an_entry_edited_in_place_after_the_seal_check_does_not_reach_the_render(
        cached: Cached, tmp_path: Path) -> None:
    cache, params, entry = cached
    info = probe(DEMO_SHOT)
    loaded = cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, info, tmp_path / "staging")
    assert loaded is not None
    track = loaded.tracks[0].track_id
    sealed = np.array(loaded.landmarks(track).meshes)
    # The seal was checked; the render has not read a mesh yet. The attacker rewrites the
    # cache entry's file in place (same inode): every point 120 px to the right.
    mesh_file = entry / "landmarks" / f"track-{track}.f32"
    raw = mesh_file.read_bytes()
    with mesh_file.open("r+b") as fh:
        fh.write(_moved(raw, 120.0))
    assert not np.array_equal(np.fromfile(mesh_file, dtype=np.float32).reshape(sealed.shape),
                              sealed)
    # What the render reads is still what the seal covered.
    assert np.array_equal(np.array(loaded.landmarks(track).meshes), sealed)


def test_a_link_in_an_entry_to_a_file_the_attacker_keeps_is_discarded(
        cached: Cached, tmp_path: Path) -> None:
    cache, params, entry = cached
    mesh_file = next((entry / "landmarks").glob("track-*.f32"))
    # The attacker's own copy (same bytes, so the seal's hash matches today), linked in.
    theirs = tmp_path / "attacker" / "mesh.f32"
    theirs.parent.mkdir()
    theirs.write_bytes(mesh_file.read_bytes())
    mesh_file.unlink()
    os.symlink(theirs, mesh_file)
    into = tmp_path / "staging"
    loaded = cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, probe(DEMO_SHOT), into)
    assert loaded is None  # discarded: the render tracks afresh
    assert not entry.exists() and not into.exists()
    assert theirs.is_file()  # the attacker's file itself is not the cache's to delete


def test_files_changed_while_an_entry_is_being_written_are_not_sealed(
        settings: Settings, analysed: tuple[AnalysisParams, ShotAnalysis], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    params, analysis = analysed
    root = settings.data_dir / "analysis"
    real_hash, real_key = sha256_file, AnalysisCache._key

    done: set[Path] = set()

    def tamper() -> None:
        # The attacker, watching <data>/analysis, edits the entry being written before it
        # is sealed and renamed into place (once per file): every mesh 120 px to the right.
        for mesh_file in root.glob(".tmp-*/landmarks/track-*.f32"):
            if mesh_file not in done:
                done.add(mesh_file)
                mesh_file.write_bytes(_moved(mesh_file.read_bytes(), 120.0))

    def hash_after_tamper(path: Path) -> str:  # just before each file's hash is taken ...
        tamper()
        return real_hash(path)

    def key_after_tamper(self: AnalysisCache) -> bytes:  # ... and just before the MAC
        tamper()
        return real_key(self)

    monkeypatch.setattr(analysis_cache, "sha256_file", hash_after_tamper)
    monkeypatch.setattr(AnalysisCache, "_key", key_after_tamper)
    cache = AnalysisCache.for_settings(settings)
    cache.store(params, sha256_file(DEMO_SHOT), analysis)
    monkeypatch.undo()
    assert done  # the attack ran
    assert [p.name for p in root.iterdir() if p.is_dir()]  # an entry was written
    loaded = cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, probe(DEMO_SHOT),
                        tmp_path / "staging")
    if loaded is None:
        return  # the tampered entry was discarded: the render tracks afresh
    track = analysis.tracks[0].track_id
    assert np.array_equal(np.array(loaded.landmarks(track).meshes),
                          np.array(analysis.landmarks(track).meshes))
