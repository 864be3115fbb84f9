"""The reel job's figures for ``bench/reel.py`` (issue 17): end to end, resume after kill -9.

:func:`figures` runs the studio's reel job (:mod:`studio.services.reels`) on a reel with a
known shot list, in a fresh data folder seeded like ``make run`` (the demo performer bbaf2n,
a grant, an enrolled face): character ANA, played by the demo performer, speaks throughout
(GRID speech looped over the reel), so every shot in which bbaf2n is on screen is rendered,
a shot showing only faces without consent is a ledgered refusal, a shot without a face is
copied (a voice over).

1. The job runs in a child process that is killed (SIGKILL) once a shot is rendered and the
   next one is in flight (being identified or rendered); the job is then run again to the
   end. Reported: shots finished before the kill
   that were rendered again (must be 0) and shots lost (in flight at the kill: at most 1).
2. End-to-end fps: reel frames over the wall time of the two runs together; the single-shot
   figure: frames per second of the shot renders themselves (RenderJob, as recorded).
3. Peak memory (max RSS) of the resumed run's process.
4. PSNR of the untouched shots in the review proxy against the source reel.

Run alone on a small reel: ``.venv/bin/python bench/reel_job.py`` (6 shots, 360x288).
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import tempfile
import time
from typing import Any

import av
import numpy as np

from pipelines.media.audio import load_audio, resample
from pipelines.reel import ShotList
from tests.media import mediagen as gen

RATE = 16000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _stem(path: Path, seconds: float) -> Path:
    """GRID speech (bbaf2n's voice, 0.49-2.21 s of its clip) repeated with short pauses for
    ``seconds``: ANA speaks in every shot."""
    audio = resample(load_audio(gen.ASSETS / "grid" / "lbax4n.mpg"), RATE)
    speech = audio.samples.mean(axis=0).astype(np.float32)[int(0.49 * RATE):int(2.21 * RATE)]
    gap = np.zeros(int(0.25 * RATE), np.float32)
    unit = np.concatenate([speech, gap])
    total = int(seconds * RATE)
    track = np.tile(unit, total // unit.size + 1)[:total]
    return gen.write_audio(path, track[None, :], RATE)


def _setup(work: Path, reel: Path, shots: ShotList) -> tuple[Path, str, Path]:
    from studio.bootstrap import SeedReport, open_registry, seed_demo
    from studio.identity import sha256_file
    from studio.reels.store import ReelStore
    from studio.services.context import AppContext
    from studio.services.reels import cast
    from studio.settings import Settings

    data = work / "studio-data"
    settings = Settings.from_env(data)
    registry = open_registry(settings)
    seed_demo(registry, SeedReport())
    store = ReelStore.open(registry.store)
    record = store.add_reel("demo-dub", reel.resolve(), sha256_file(reel), "edl", shots)
    cast(AppContext(settings, registry), record.reel_id, "ANA", "demo-performer")
    registry.store.dispose()
    stem = _stem(work / "ana.wav", float(shots.frame_count / shots.frame_rate))
    return data, record.reel_id, stem


def _worker(data: Path, reel_id: str, stem: Path, out: Path) -> None:
    """One run of the job (a child process), its outcome as JSON in ``out``."""
    from studio.reels.job import ReelRelease
    from studio.services.context import AppContext
    from studio.services.reels import ReelRender, render_reel
    from studio.settings import Settings

    ctx = AppContext.open(Settings.from_env(data))
    started = time.perf_counter()
    outcome = render_reel(ctx, ReelRender(reel_id, ReelRelease("fr", "FR", "Bench Operator",
                                                               source_language="en"),
                                          {"ANA": stem}))
    body = outcome.to_json()
    body["wall_s"] = time.perf_counter() - started
    body["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps(body, default=str))


def _states(data: Path, reel_id: str) -> list[tuple[str, dict[str, Any]]]:
    from studio.bootstrap import open_registry
    from studio.reels.store import ReelStore
    from studio.settings import Settings

    registry = open_registry(Settings.from_env(data))
    try:
        jobs = ReelStore(registry.store).jobs_of(reel_id)
        return [(s.state.value, s.outcome) for s in jobs[0].shots] if jobs else []
    finally:
        registry.store.dispose()


def _psnr(reel: Path, proxy: Path, shots: ShotList, untouched: set[int]) -> list[float]:
    """Per untouched shot, PSNR of the proxy against the source (decoded side by side)."""
    sums = dict.fromkeys(untouched, 0.0)
    with av.open(str(reel)) as a, av.open(str(proxy)) as b:
        for i, (fa, fb) in enumerate(zip(a.decode(video=0), b.decode(video=0), strict=True)):
            shot = shots.shot_at(i).index
            if shot in sums:
                x = fa.to_ndarray(format="rgb24").astype(np.float64)
                y = fb.to_ndarray(format="rgb24").astype(np.float64)
                sums[shot] += float(np.mean((x - y) ** 2))
    out = []
    for index, total in sums.items():
        mse = total / shots[index].frames
        out.append(math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse))
    return out


def figures(reel: Path, shots: ShotList, work: Path) -> dict[str, Any]:
    """Run the reel job on ``reel`` (killed once, resumed) and measure it (module doc)."""
    work.mkdir(parents=True, exist_ok=True)
    data, reel_id, stem = _setup(work, reel, shots)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(data), reel_id,
           str(stem)]
    first_out, second_out = work / "run1.json", work / "run2.json"
    log(f"reel job: {len(shots)} shots, killed with a shot in flight after the first render, "
        "then resumed")
    started = time.perf_counter()
    child = subprocess.Popen([*cmd, str(first_out)], cwd=ROOT)
    finished_before: list[int] = []
    in_flight: list[int] = []
    killed = False
    while child.poll() is None:
        time.sleep(1.0)
        states = _states(data, reel_id)
        if sum(s == "rendered" for s, _ in states) >= 1 and any(
                s == "rendering" for s, _ in states):
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            killed = True
            states = _states(data, reel_id)
            finished_before = [i for i, (s, _) in enumerate(states)
                               if s in ("rendered", "copied", "refused")]
            in_flight = [i for i, (s, _) in enumerate(states) if s == "rendering"]
            break
    if not killed:
        log("  the job ended before a second render started: no kill measured")
    log(f"  killed: {killed}; finished before the kill: {len(finished_before)} shots, in "
        f"flight: {in_flight}")
    subprocess.run([*cmd, str(second_out)], cwd=ROOT, check=True)
    wall = time.perf_counter() - started
    second = json.loads(second_out.read_text())
    rendered_again = [i for i in second["rendered_now"] if i in finished_before]
    final: dict[int, dict[str, Any]] = {s["shot"]: s for s in second["shots"]}
    rendered = [i for i, s in final.items() if s["state"] == "rendered"]
    render_frames = sum(final[i]["outcome"]["frames"] for i in rendered)
    render_seconds = sum(final[i]["outcome"]["seconds"] for i in rendered)
    items = {i["kind"]: i for i in second["deliverables"].get("items", [])}
    untouched = {i for i in final if i not in rendered}
    psnr = _psnr(reel, Path(items["review"]["path"]), shots, untouched) if items else []
    counts: dict[str, int] = {}
    for s in final.values():
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    return {
        "shots": len(shots), "frames": shots.frame_count, "states": counts,
        "end_to_end_fps": shots.frame_count / wall, "wall_s": wall,
        "single_shot_render_fps": render_frames / render_seconds if render_seconds else None,
        "rendered_shots": len(rendered), "killed": killed,
        "finished_before_kill": len(finished_before), "in_flight_at_kill": in_flight,
        "rendered_again_after_resume": rendered_again,
        "lost_shots": len([i for i in in_flight if i in second["rendered_now"]]),
        "resumed_run_wall_s": second["wall_s"], "resumed_run_max_rss_mb": second["max_rss_mb"],
        "untouched_psnr_min_db": min(psnr) if psnr else None,
        "untouched_psnr_mean_db": float(np.mean([p for p in psnr if math.isfinite(p)]))
        if psnr else None,
        "deliverables": sorted(items),
        # Why each shot ended as it did (a refusal names the faces the gate saw).
        "per_shot": [{"shot": i, "state": s["state"], "reason": (s.get("reason") or "")[:240]}
                     for i, s in sorted(final.items())],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=4, metavar=("DATA", "REEL", "STEM", "OUT"))
    args = parser.parse_args(argv)
    if args.worker:
        data, reel_id, stem, out = args.worker
        _worker(Path(data), reel_id, Path(stem), Path(out))
        return 0
    from tests.reel import reelgen

    # the demo performer in three shots (two renders at least: the kill falls in the second)
    segments = [reelgen.Segment("grid:bbaf2n", 0, 36), reelgen.Segment("grid:brbk7n", 0, 30),
                reelgen.Segment("cu:bbaf2n", 30, 30), reelgen.Segment("lavfi:testsrc2", 0, 24),
                reelgen.Segment("grid:bbaf2n", 36, 36),
                reelgen.Segment("two:lbax4n+lrwp9a", 10, 30)]
    shots = reelgen.truth(segments, start_timecode="10:00:00:00")
    with tempfile.TemporaryDirectory(prefix="bench-reel-job-") as tmp:
        reel = reelgen.build_reel(Path(tmp) / "reel.mp4", segments, timecode="10:00:00:00")
        log(f"reel: {len(shots)} shots, {shots.frame_count} frames, 360x288: "
            + ", ".join(s.source for s in segments))
        result = figures(reel, shots, Path(tmp) / "work")
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
