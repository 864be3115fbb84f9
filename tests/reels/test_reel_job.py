"""The reel job on a three-shot reel built from GRID clips: the consented speaker's shot is
rendered, the shot of a face without consent is refused (ledgered) and copied, the shot
without a face is copied; the conformed review proxy and ProRes master keep the reel's frame
count, rate and timecode; an interrupted job resumes without rendering again what was done;
a changed dub renders again only its character's shots; under a grant that requires approval
the deliverables are held; after a revocation the kept shot is refused and nothing is
delivered."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from consent.registry import Registry
from pipelines.media import probe
from pipelines.media.audio import load_audio, resample
from studio.reels.job import ReelOutcome, ReelRelease
from studio.reels.store import ReelStore, ShotState
from studio.services import reels
from studio.services.context import AppContext
from studio.settings import Settings
from tests.media import mediagen as gen
from tests.reel import reelgen

GRID = gen.ASSETS / "grid"
#: Shot 0: the demo performer (bbaf2n, consented), 45 frames; shot 1: brbk7n, a face no
#: grant covers, 30 frames; shot 2: a test pattern, no face, 20 frames. 95 frames, 25 fps.
SEGMENTS = (reelgen.Segment("grid:bbaf2n", 0, 45), reelgen.Segment("grid:brbk7n", 5, 30),
            reelgen.Segment("lavfi:testsrc2", 0, 20))
FRAMES = 95
RATE = 16000


class Stop(Exception):
    """The interruption a test puts between two shots."""


def _speech(clip: str, seconds: float) -> NDArray[np.float32]:
    """``seconds`` of a GRID clip's speech (its voice starts at 0.49 s), mono at 16 kHz."""
    audio = resample(load_audio(GRID / f"{clip}.mpg"), RATE)
    mono: NDArray[np.float32] = audio.samples.mean(axis=0).astype(np.float32)
    return mono[int(0.49 * RATE):int((0.49 + seconds) * RATE)]


def _stem(path: Path, speech: NDArray[np.float32], at: float) -> Path:
    track = np.zeros((1, int(FRAMES / 25 * RATE)), np.float32)
    track[0, int(at * RATE):int(at * RATE) + speech.size] = speech
    return gen.write_audio(path, track, RATE)


def _frames(path: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(path)) as c:
        return [np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8)
                for f in c.decode(video=0)]


def _psnr(a: list[NDArray[np.uint8]], b: list[NDArray[np.uint8]]) -> float:
    mse = float(np.mean([(x.astype(np.float64) - y) ** 2 for x, y in zip(a, b, strict=True)]))
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


@pytest.mark.slow
def test_reel_job_renders_consented_shots_resumes_and_rerenders_only_changed(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    reel_path = reelgen.build_reel(tmp_path / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    ana = _stem(tmp_path / "ana.wav", _speech("brbk7n", 1.2), 0.2)  # in shot 0 (0-1.8 s)
    ben = _stem(tmp_path / "ben.wav", _speech("lbax4n", 0.9), 1.95)  # in shot 1 (1.8-3.0 s)
    registry.register_performer("ben-performer", "Ben Example", professional_name="Ben",
                                officer="Test Officer")
    ctx = AppContext(settings, registry)

    reel = reels.import_reel(ctx, reels.ReelImport(reel_path, "demo-dub", detect=True))
    assert [(s.start, s.end) for s in reel.shots] == [(0, 45), (45, 75), (75, 95)]
    assert reel.shots.start_timecode == "01:00:00:00"
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")

    def render(stems: dict[str, Path], stop_after: int | None = None) -> ReelOutcome:
        def between(index: int) -> None:
            if index == stop_after:
                raise Stop(f"interrupted after shot {index}")
        return reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release, stems),
                                 between=between)

    # 1. Interrupted after the first shot: it is rendered and recorded, the rest pending.
    with pytest.raises(Stop):
        render({"ANA": ana, "BEN": ben}, stop_after=0)
    status = reels.reel_status(ctx, reel.reel_id)
    (job,) = status.jobs
    assert job.status == "interrupted"
    assert [s.state for s in job.shots] == [ShotState.RENDERED, ShotState.PENDING,
                                            ShotState.PENDING]
    first_output = job.shots[0].outcome["output"]

    # 2. Resumed: nothing rendered again; BEN's shot refused (no consented face), the
    # pattern copied.
    done = render({"ANA": ana, "BEN": ben})
    assert done.rendered_now == ()
    states = {s.shot: s for s in done.shots}
    assert states[0].state is ShotState.RENDERED and states[0].outcome["output"] == first_output
    assert states[1].state is ShotState.REFUSED
    assert "no face in the shot matches" in (states[1].reason or "")
    assert states[2].state is ShotState.COPIED and states[2].reason == "no dialogue"
    assert registry.decision_document(states[1].outcome["decision_id"])["allowed"] is False

    items = {i["kind"]: i for i in done.deliverables["items"]}
    assert set(items) == {"review", "master", "mix", "stem"}
    review, master = Path(items["review"]["path"]), Path(items["master"]["path"])
    for path, codec in ((review, "h264"), (master, "prores")):
        info = probe(path)
        video = info.require_video()
        assert (video.codec, video.frame_count, info.timecode) == (
            codec, FRAMES, "01:00:00:00"), path.name
        assert video.frame_rate == 25
    # Untouched shots are the source's pixels up to the codec; the rendered one changed.
    src, out = _frames(reel_path), _frames(review)
    psnr = {i: _psnr(src[a:b], out[a:b]) for i, (a, b) in enumerate([(0, 45), (45, 75),
                                                                      (75, 95)])}
    print(f"review proxy PSNR against the source per shot: {psnr}")
    assert psnr[1] > 38 and psnr[2] > 38
    assert psnr[0] < psnr[1]
    # Signed with each rendered shot as an ingredient, published under one reel decision.
    from studio.provenance.signing import read_manifest

    manifest = read_manifest(review)
    assert states[0].outcome["sha256"] in str(manifest)
    assert registry.decision_document(done.deliverables["decision_id"])["allowed"] is True
    from studio.provenance.identity import trust_anchors
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    for path in (review, master):
        checked = verify_file(path, registry, ManifestStore(settings.manifests_dir),
                              trust_anchors_pem=trust_anchors(settings), watermark=False)
        assert checked.ok, checked.to_json()
        assert (checked.provenance, checked.consent_now) == ("Trusted", "active")
        assert checked.ledger is not None and checked.ledger.verified

    # 3. Run again unchanged: nothing rendered, the same deliverables.
    again = render({"ANA": ana, "BEN": ben})
    assert again.rendered_now == () and again.deliverables == done.deliverables

    # 4. ANA's dub changes: only ANA's shot renders again.
    ana2 = _stem(tmp_path / "ana2.wav", _speech("lbbc2a", 1.2), 0.2)
    changed = render({"ANA": ana2, "BEN": ben})
    assert changed.rendered_now == (0,)
    assert changed.deliverables["digest"] != done.deliverables["digest"]

    # 5. The performer's grant is replaced by one that requires their approval: the kept
    # shot (made under the old grant) renders again, and every deliverable is held.
    from tests.render.test_approval_render import GRANT, _held_grant

    _held_grant(registry)
    held = render({"ANA": ana2, "BEN": ben})
    assert held.rendered_now == (0,)
    assert held.shots[0].outcome["approval"] == "awaiting"
    assert {i["approval"] for i in held.deliverables["items"]} == {"awaiting"}

    # 6. The performer revokes: their kept shot is asked about again and refused (their
    # templates are gone: no face has consent), so nothing is left to deliver.
    registry.revoke_grant(GRANT, reason="withdrawn", officer="Officer",
                          performer_request_reference="REQ-17")
    revoked = render({"ANA": ana2, "BEN": ben})
    assert revoked.rendered_now == ()
    assert [s.state for s in revoked.shots] == [ShotState.REFUSED, ShotState.REFUSED,
                                                ShotState.COPIED]
    assert revoked.deliverables["items"] == []


def test_a_reel_is_kept_with_its_shots_and_the_cli_imports_casts_and_refuses(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    import json

    from studio.cli import app

    shots = reelgen.truth(reelgen.TEST_REEL, start_timecode="01:00:00:00")
    store = ReelStore.open(registry.store)
    kept = store.add_reel("demo-dub", tmp_path / "kept.mp4", "0" * 64, "edl", shots)
    store.set_cast(kept.reel_id, "ANA", "demo-performer")
    again = store.reel(kept.reel_id)
    assert again.shots == shots and again.cast == {"ANA": "demo-performer"}

    reel_path = reelgen.build_reel(tmp_path / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    runner = CliRunner()

    def studio(*args: str) -> tuple[int, dict[str, Any]]:
        result = runner.invoke(app, ["--data", str(settings.data_dir), "reel", *args,
                                     "--json"])
        return result.exit_code, json.loads(result.output)

    code, body = studio("import", str(reel_path), "--project", "demo-dub", "--detect")
    assert code == 0, body
    reel_id = str(body["reel_id"])
    assert body["shots"] == 3 and body["start_timecode"] == "01:00:00:00"
    assert studio("cast", reel_id, "ANA", "demo-performer")[0] == 0
    assert studio("cast", reel_id, "BEN", "nobody-registered")[0] == 4
    assert studio("import", str(reel_path), "--project", "demo-dub")[0] == 2  # no shots source
    stem = _stem(tmp_path / "ana.wav", _speech("brbk7n", 1.0), 0.2)
    code, body = studio("render", reel_id, "--language", "fr", "--territory", "FR",
                        "--operator", "Test", "--dialogue", f"ANA={stem}", "--script",
                        str(stem))
    assert code == 2, body  # stems or a script, not both
    code, body = studio("status", reel_id)
    assert code == 0 and body["cast"] == {"ANA": "demo-performer"} and body["jobs"] == []
    assert [s["frames"] for s in body["shot_list"]] == [45, 30, 20]
    assert studio("status", "reel-nothere")[0] == 4

    # A second run of the same reel and language while one holds it: refused at once.
    import fcntl
    import os

    lock = settings.data_dir / "reels" / reel_id / "fr" / "lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_CREAT | os.O_WRONLY, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        code, body = studio("render", reel_id, "--language", "fr", "--territory", "FR",
                            "--operator", "Test", "--dialogue", f"ANA={stem}")
    finally:
        os.close(fd)
    assert code == 5 and "another run" in str(body["message"]), body
