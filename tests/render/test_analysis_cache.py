"""The render reuses a sealed analysis of the very same bytes, and nothing else.

Hostile cases: a tampered landmark file, a forged seal, an entry copied under another shot's
key, other bytes with the same name: each is discarded and the render tracks afresh. Reuse
never carries identity or consent: after a revocation the cached render is denied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from consent.registry import Registry
from pipelines.faces.analysis import analyse_shot
from pipelines.media import probe
from studio.errors import NoConsentedFaceError
from studio.identity import embedder_for, sha256_file
from studio.render import RenderDenied, RenderJob, RenderRequest
from studio.render.analysis_cache import AnalysisCache, render_analysis_params
from studio.settings import Settings

from .conftest import DEMO_SHOT, OTHER_VOICE

pytestmark = pytest.mark.slow  # whole renders, several per test


def _request(source: Path = DEMO_SHOT) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=source, project_id="demo-dub",
                         language="fr", source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE)


def _reused(job_dir: Path) -> bool:
    log = (job_dir / "log.jsonl").read_text()
    return "reused the sealed analysis" in log


def _entries(settings: Settings) -> list[Path]:
    root = settings.data_dir / "analysis"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@pytest.fixture
def settings(cold_settings: Settings) -> Settings:
    """An empty cache: these tests watch entries being made, found and discarded."""
    return cold_settings


@pytest.fixture
def cached(settings: Settings, tmp_path: Path) -> tuple[AnalysisCache, Path]:
    """The cache of ``settings`` holding the render analysis of the demo shot."""
    embedder = embedder_for(settings)
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate, embedder.name)
    analysis = analyse_shot(DEMO_SHOT, tmp_path / "scan", embedder,
                            max_faces=params.max_faces, sample_every=params.sample_every,
                            max_samples=params.max_samples, end_samples=params.end_samples)
    cache = AnalysisCache.for_settings(settings)
    cache.store(params, sha256_file(DEMO_SHOT), analysis)
    (entry,) = _entries(settings)
    return cache, entry


def test_a_second_render_reuses_the_first_ones_analysis(settings: Settings,
                                                         registry: Registry) -> None:
    first = RenderJob(_request(), settings, registry).run()
    assert not _reused(first.job_dir) and len(_entries(settings)) == 1
    second = RenderJob(_request(), settings, registry).run()
    assert _reused(second.job_dir)
    assert second.frames == first.frames
    identity = [json.loads((o.job_dir / "identity.json").read_text()) for o in (first, second)]
    assert identity[0] == identity[1]


def test_the_loaded_analysis_equals_the_fresh_one(settings: Settings,
                                                  cached: tuple[AnalysisCache, Path],
                                                  tmp_path: Path) -> None:
    cache, _ = cached
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate,
                                    embedder_for(settings).name)
    loaded = cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, info, tmp_path / "into")
    assert loaded is not None
    fresh = analyse_shot(DEMO_SHOT, tmp_path / "fresh", embedder_for(settings),
                         max_faces=8, sample_every=params.sample_every, max_samples=None,
                         end_samples=True)
    assert [t.track_id for t in loaded.tracks] == [t.track_id for t in fresh.tracks]
    for a, b in zip(loaded.tracks, fresh.tracks, strict=True):
        assert (a.first_frame, a.last_frame, a.segments) == (b.first_frame, b.last_frame,
                                                             b.segments)
        assert [s.frame_index for s in a.samples] == [s.frame_index for s in b.samples]
        assert a.embedding is not None and b.embedding is not None
        assert float(abs(a.embedding - b.embedding).max()) < 1e-5
    assert loaded.scan.cuts == fresh.scan.cuts
    for tid in fresh.exemplars:
        assert (loaded.exemplars[tid].patch == fresh.exemplars[tid].patch).all()
    first = fresh.tracks[0].track_id
    mesh_a, mesh_b = loaded.landmarks(first), fresh.landmarks(first)
    assert (mesh_a.frames == mesh_b.frames).all()
    assert abs(mesh_a.meshes - mesh_b.meshes).max() < 1e-4


@pytest.mark.parametrize("attack", ["landmarks", "embedding", "seal", "foreign-key"])
def test_a_tampered_entry_is_discarded_and_the_render_tracks_afresh(
        attack: str, settings: Settings, registry: Registry,
        cached: tuple[AnalysisCache, Path]) -> None:
    _, entry = cached
    if attack == "landmarks":
        mesh = next((entry / "landmarks").glob("track-*.f32"))
        data = bytearray(mesh.read_bytes())
        data[100] ^= 0x40
        mesh.write_bytes(bytes(data))
    elif attack == "embedding":
        index = json.loads((entry / "analysis.json").read_text())
        index["tracks"][0]["samples"][0]["good"] = not index["tracks"][0]["samples"][0]["good"]
        (entry / "analysis.json").write_text(json.dumps(index))
    elif attack == "seal":
        seal = json.loads((entry / "seal.json").read_text())
        seal["mac"] = "00" * 32
        (entry / "seal.json").write_text(json.dumps(seal))
    else:  # the entry moved under another shot's key: the seal names its own key
        entry.rename(entry.with_name("0" * 64))
        other = entry.with_name("0" * 64)
        shutil.copytree(other, entry)
        shutil.rmtree(other)
        seal = json.loads((entry / "seal.json").read_text())
        seal["body"]["key"] = "f" * 64
        (entry / "seal.json").write_text(json.dumps(seal))
    outcome = RenderJob(_request(), settings, registry).run()
    assert not _reused(outcome.job_dir)
    assert outcome.output.exists()
    # A fresh, sound entry replaced the bad one, and the next render reuses that.
    assert len(_entries(settings)) == 1
    assert _reused(RenderJob(_request(), settings, registry).run().job_dir)


@pytest.mark.parametrize("attack", ["stray-top", "stray-subfolder", "stray-in-landmarks",
                                    "empty-folder", "link", "huge-seal"])
def test_anything_the_seal_does_not_cover_discards_the_entry(
        attack: str, settings: Settings, cached: tuple[AnalysisCache, Path],
        tmp_path: Path) -> None:
    """Files no reader opens today still must not ride into a render's staging folder."""
    cache, entry = cached
    if attack == "stray-top":
        (entry / "notes.txt").write_text("planted")
    elif attack == "stray-subfolder":
        (entry / "landmarks" / "extra").mkdir()
        (entry / "landmarks" / "extra" / "track-9.f32").write_bytes(b"\0" * 64)
    elif attack == "stray-in-landmarks":
        (entry / "landmarks" / "track-99.f32").write_bytes(b"\0" * 64)
    elif attack == "empty-folder":
        (entry / "later").mkdir()
    elif attack == "link":
        (entry / "landmarks" / "passwd").symlink_to("/etc/hostname")
    else:  # a seal padded far past any the studio writes is refused unread
        seal = json.loads((entry / "seal.json").read_text())
        seal["padding"] = "x" * (2 << 20)
        (entry / "seal.json").write_text(json.dumps(seal))
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate, embedder_for(settings).name)
    into = tmp_path / "staging"
    assert cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, info, into) is None
    assert not entry.exists() and not into.exists()


def test_a_sound_entry_loads(settings: Settings, cached: tuple[AnalysisCache, Path],
                             tmp_path: Path) -> None:
    """The control for the case above: the untouched entry loads."""
    cache, _ = cached
    info = probe(DEMO_SHOT)
    assert info.video is not None
    params = render_analysis_params(settings, info.video.frame_rate, embedder_for(settings).name)
    analysis = cache.load(params, sha256_file(DEMO_SHOT), DEMO_SHOT, info, tmp_path / "staging")
    assert analysis is not None and analysis.tracks


def test_other_bytes_under_the_same_name_never_hit(settings: Settings, registry: Registry,
                                                   cached: tuple[AnalysisCache, Path],
                                                   tmp_path: Path) -> None:
    # Same pixels, another container byte (a metadata tag): another hash, another entry.
    import av

    copy = tmp_path / DEMO_SHOT.name
    with av.open(str(DEMO_SHOT)) as src, av.open(str(copy.with_suffix(".mp4")), "w") as dst:
        dst.metadata["comment"] = "re-muxed"
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
    outcome = RenderJob(_request(copy.with_suffix(".mp4")), settings, registry).run()
    assert not _reused(outcome.job_dir)


def test_a_cached_analysis_never_carries_consent(settings: Settings, registry: Registry,
                                                 cached: tuple[AnalysisCache, Path]) -> None:
    registry.revoke_grant("demo-grant-0001", reason="withdrawn", officer="Officer",
                          performer_request_reference="REQ-9")
    # Refused: a ledgered deny, or (the templates purged with the last grant) no face that
    # matches an enrolled performer. Either way, from the registry's state now.
    with pytest.raises((RenderDenied, NoConsentedFaceError)):
        RenderJob(_request(), settings, registry).run()
    assert not settings.outputs_dir.exists() or not any(settings.outputs_dir.iterdir())


def test_the_cache_can_be_turned_off(settings: Settings, registry: Registry,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_ANALYSIS_CACHE_MB", "0")
    off = Settings.from_env(settings.data_dir)
    RenderJob(_request(), off, registry).run()
    assert _entries(off) == []


def test_the_render_reuses_the_operators_scan(settings: Settings, registry: Registry) -> None:
    from studio.services import faces
    from studio.services.context import AppContext

    scan = faces.scan_shot_for_render(AppContext(settings, registry), DEMO_SHOT)
    assert not scan.reused and scan.identity.track_ids
    outcome = RenderJob(_request(), settings, registry).run()
    assert _reused(outcome.job_dir)
    rendered = json.loads((outcome.job_dir / "identity.json").read_text())
    assert rendered == scan.identity.to_json()
