"""The same multi-shot job on the local executor and on Ray with 1 and 2 worker nodes.

Run from the repository root::

    .venv/bin/python bench/scale.py             # 3 shots per mode (GRID 360x288, 75 frames)
    .venv/bin/python bench/scale.py --shots 2   # shorter
    .venv/bin/python bench/scale.py --quick     # 1 shot, a 150-frame long shot in 3 chunks,
                                                # local x1 / ray 1w / ray 2w (a few minutes)

Each mode runs in a fresh child process against a copy of one seeded data folder (SQLite:
the registry's database is the head's alone in every mode, so its engine does not change what
is compared). A "shot" is a lip-sync render of GRID bbaf2n (the demo performer) to GRID
brbk7n's voice, one output per language; every mode first renders one shot that is not
timed (cold imports and model loads; on Ray one per worker node, so that each is warm), then
submits all shots at once to a ``JobManager``:

- ``local x1``: the default executor with one render slot (``STUDIO_CONCURRENT_RENDERS=1``);
- ``local x2``: the same with two slots (this machine's core count);
- ``ray 1w`` / ``ray 2w``: ``STUDIO_EXECUTOR=ray`` on a ``ray.cluster_utils.Cluster`` on
  127.0.0.1 whose head node runs no tasks and whose 1 or 2 worker nodes have one CPU each; the
  studio (head) runs steps 1-3 and 5-7 of every render, the workers step 4.

Then one long shot (GRID bbaf2n looped, ``--long-loops`` times 75 frames, to brbk7n's voice
looped): on the local executor one task renders it whole; on Ray it is split into frame ranges
of ``--chunk-frames`` (``STUDIO_RAY_CHUNK_FRAMES``), one task each, that the workers render in
parallel and the head encodes once (``studio.render.chunks``). Reported: its wall time, its
step 4 (the head's wait for every chunk plus the assembly) and their speed-up against the
single-process render (``local x1``).

Reported per mode: wall time for the shots, throughput against ``local x1``, the head's and
the workers' seconds per frame (from each job's log), the scheduling overhead of a render task
(the head's wait for a task minus the worker's own pipeline time: token, serialisation of the
analysed shot, queueing, the result's way back) and a no-op Ray task's round trip. Then the
model of a film in ten languages on N GPU workers (bench/README.md explains it) from those
per-frame costs. All figures come with the CPU model and load: on two shared cores the head
and the workers compete, and so do other processes.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# First on the path, also when PYTHONPATH names it: bench/consent.py must not shadow consent/.
sys.path[:] = [str(ROOT), *(p for p in sys.path if p != str(ROOT))]

import argparse
import itertools
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from queue import Empty
from typing import Any

from bench._floor import Machine

OUT = ROOT / "bench" / "out" / "scale.json"
GRID = ROOT / "assets" / "media" / "grid"
LANGUAGES = ("fr", "de", "es", "en")
#: Steps the head runs in every mode (the registry's side and the media it must read).
HEAD_STAGES = ("ingest", "identify", "authorize", "re-check", "stamp", "publish")
#: A feature film and its languages, for the model.
FILM_FRAMES, FILM_LANGUAGES = 150_000, 10


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _stages(job_dir: Path) -> tuple[dict[str, float], dict[str, Any] | None]:
    entries = [json.loads(x) for x in (job_dir / "log.jsonl").read_text().splitlines()]
    stages: dict[str, float] = {}
    for a, b in itertools.pairwise(entries):
        span = datetime.fromisoformat(b["at"]) - datetime.fromisoformat(a["at"])
        stages[a["stage"]] = stages.get(a["stage"], 0.0) + span.total_seconds()
    worker = next((e for e in entries if e["message"] == "rendered by a worker"), None)
    if worker is not None:
        start = next(e for e in entries if e["stage"] == "run" and e["message"] == "rendering")
        waited = datetime.fromisoformat(worker["at"]) - datetime.fromisoformat(start["at"])
        worker = {**worker, "head_wait_s": waited.total_seconds()}
    return stages, worker


def _mode(name: str, data: str, shots: int, queue: Any,
          long_shot: tuple[str, str, int] | None = None) -> None:
    """One mode in a fresh process: warm-up shot, then ``shots`` shots submitted at once,
    then the long shot (source, dub, chunk frames) alone."""
    from studio.bootstrap import open_registry
    from studio.executors import LocalExecutor
    from studio.jobs import JobManager, JobStatus
    from studio.render import RenderRequest
    from studio.settings import Settings

    settings = Settings.from_env(Path(data))
    registry = open_registry(settings)
    cluster = None
    noop_ms: float | None = None
    if name.startswith("ray"):
        import ray
        from ray.cluster_utils import Cluster

        from studio.executors.ray_executor import RayExecutor

        os.environ["STUDIO_REGISTRY_PUBLIC_KEY"] = registry.public_key.to_base64()
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False,
            "object_store_memory": 200 * 1024 * 1024})
        for _ in range(int(name.split()[1][0])):
            cluster.add_node(num_cpus=1, object_store_memory=200 * 1024 * 1024)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        settings = replace(settings, executor="ray", ray_task_memory_mb=256,
                           ray_chunk_frames=long_shot[2] if long_shot else 1500)
        executor: Any = RayExecutor(settings, registry)

        @ray.remote(num_cpus=1)
        def noop() -> int:
            return 0

        ray.get([noop.remote() for _ in range(4)])  # a worker process up on each node
        laps = []
        for _ in range(30):
            t0 = time.perf_counter()
            ray.get(noop.remote())
            laps.append(time.perf_counter() - t0)
        noop_ms = statistics.median(laps) * 1000
    else:
        executor = LocalExecutor()
    slots = shots if cluster is not None else int(name.split("x")[1])
    slots_warm = int(name.split()[1][0]) if cluster is not None else 1
    manager = JobManager(settings, registry, registry.store, workers=slots, executor=executor)

    def request(lang: str, tag: str) -> RenderRequest:
        return RenderRequest(operation="lipsync", source=GRID / "bbaf2n.mpg",
                             dub=GRID / "brbk7n.mpg", project_id="demo-dub", language=lang,
                             source_language="en", territory="FR", operator="Bench Operator",
                             output_name=f"{tag}.{lang}.mp4")

    load_before = os.getloadavg()
    try:
        # One untimed shot per worker (or slot): imports and model loads are not throughput.
        warm = [manager.submit(request("fr", f"warmup{i}"), "bench") for i in range(slots_warm)]
        cold = []
        for w in warm:
            record = manager.wait(w.job_id)
            assert record.status is JobStatus.DONE, record.error
            assert record.outcome is not None
            stages, _ = _stages(Path(record.outcome["job_dir"]))
            cold.append({"frames": record.outcome["frames"], "stages_s": stages})
        started = time.perf_counter()
        jobs = [manager.submit(request(LANGUAGES[i % len(LANGUAGES)], f"shot{i}"), "bench")
                for i in range(shots)]
        done = [manager.wait(j.job_id) for j in jobs]
        wall = time.perf_counter() - started
        assert all(d.status is JobStatus.DONE for d in done), [d.error for d in done]
        per_job = []
        for d in done:
            assert d.outcome is not None
            stages, worker = _stages(Path(d.outcome["job_dir"]))
            per_job.append({"frames": d.outcome["frames"], "stages_s": stages,
                            "worker": worker})
        long = None
        if long_shot is not None:
            long_req = replace(request("de", "long"), source=Path(long_shot[0]),
                               dub=Path(long_shot[1]))
            t0 = time.perf_counter()
            record = manager.wait(manager.submit(long_req, "bench").job_id)
            long_wall = time.perf_counter() - t0
            assert record.status is JobStatus.DONE, record.error
            assert record.outcome is not None
            job_dir = Path(record.outcome["job_dir"])
            stages, _ = _stages(job_dir)
            chunks = sum(1 for line in (job_dir / "log.jsonl").read_text().splitlines()
                         if json.loads(line)["message"] == "rendered by a worker")
            long = {"frames": record.outcome["frames"], "wall_s": long_wall,
                    "run_s": stages.get("run", 0.0), "tasks": max(1, chunks)}
        queue.put({"mode": name, "shots": shots, "wall_s": wall, "jobs": per_job,
                   "noop_task_ms": noop_ms, "cold": cold, "long": long,
                   "load_before": load_before, "load_after": os.getloadavg()})
    finally:
        manager.shutdown()
        registry.store.dispose()
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()  # type: ignore[no-untyped-call]


def run_mode(name: str, data: Path, shots: int,
             long_shot: tuple[str, str, int] | None = None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_mode, args=(name, str(data), shots, queue, long_shot))
    proc.start()
    while True:
        try:
            result: dict[str, Any] = queue.get(timeout=5)
            break
        except Empty as exc:  # is the child still there?
            if not proc.is_alive():
                raise SystemExit(f"mode {name!r} failed (exit {proc.exitcode}); see above"
                                 ) from exc
    proc.join()
    return result


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    jobs = result["jobs"]
    frames = sum(j["frames"] for j in jobs)
    head = sum(sum(j["stages_s"].get(s, 0.0) for s in HEAD_STAGES) for j in jobs)
    if jobs[0]["worker"] is not None:
        step4 = sum(j["worker"]["pipeline_s"] for j in jobs)
        overheads = [j["worker"]["head_wait_s"] - j["worker"]["pipeline_s"] for j in jobs]
    else:
        step4 = sum(j["stages_s"].get("run", 0.0) for j in jobs)
        overheads = []
    cold = result["cold"][0]
    return {"mode": result["mode"], "shots": result["shots"], "frames": frames,
            "wall_s": result["wall_s"], "shots_per_min": 60 * result["shots"] / result["wall_s"],
            "head_s_per_frame": head / frames, "step4_s_per_frame": step4 / frames,
            # The least: a task that found a worker free (the others also waited in the queue).
            "task_overhead_s": min(overheads) if overheads else None,
            "task_wait_median_s": statistics.median(overheads) if overheads else None,
            "noop_task_ms": result["noop_task_ms"],
            # The first render of a shot tracks its faces; later ones reuse the sealed
            # analysis of the same bytes (studio/render/analysis_cache.py).
            "cold_identify_s_per_frame": cold["stages_s"].get("identify", 0.0) / cold["frames"],
            "warm_identify_s_per_frame": sum(j["stages_s"].get("identify", 0.0)
                                             for j in jobs) / frames,
            "long": result.get("long"),
            "load": (result.get("load_before"), result.get("load_after"))}


def make_long_shot(folder: Path, loops: int) -> tuple[Path, Path]:
    """GRID bbaf2n looped ``loops`` times (360x288, 25 fps) and brbk7n's voice looped to
    the same length, as the dub."""
    import numpy as np

    from pipelines.media import VideoReader, VideoWriter, load_audio
    from pipelines.media.audio import Audio, downmix, resample
    from pipelines.media.probe import VideoStreamInfo

    with VideoReader(GRID / "bbaf2n.mpg") as reader:
        like = reader.output
        frames = [f.rgb.copy() for f in reader]
    voice = resample(downmix(load_audio(GRID / "brbk7n.mpg"), "mono"), 48_000)
    seconds = len(frames) * loops / 25
    samples = np.tile(voice.samples, (1, loops + 1))[:, : int(seconds * 48_000)]
    shot, dub = folder / f"long{loops}.mp4", folder / f"long{loops}-dub.mp4"
    with VideoWriter(shot, like, crf=16, preset="veryfast") as writer:
        for _ in range(loops):
            for f in frames:
                writer.write(f)
    small = VideoStreamInfo.new(64, 64, 25)
    with VideoWriter(dub, small, preset="ultrafast",
                     audio=Audio(np.ascontiguousarray(samples), 48_000)) as writer:
        for _ in range(len(frames) * loops):
            writer.write(np.zeros((64, 64, 3), np.uint8))
    return shot, dub


def film_model(head_s: float, track_s: float, step4_s: float, overhead_s: float, *,
               shots_per_film: int, gpu_frame_s: float | None) -> list[dict[str, Any]]:
    """Hours for a film in ten languages on N workers (bench/README.md: the model): the head
    tracks each frame once (``track_s``: the first language's identify, less a later one's)
    and runs its other steps for every language (``head_s``); workers share step 4."""
    frames = FILM_FRAMES * FILM_LANGUAGES
    tasks = shots_per_film * FILM_LANGUAGES
    rows = []
    for per_frame, kind in ((step4_s, "CPU worker (measured)"),
                            (gpu_frame_s, "GPU worker (given)")):
        if per_frame is None:
            continue
        for n in (1, 4, 16, 64):
            workers_h = (frames * per_frame + tasks * overhead_s) / n / 3600
            head_h = (FILM_FRAMES * track_s + frames * head_s) / 3600
            rows.append({"workers": n, "kind": kind, "worker_hours": workers_h,
                         "head_hours_one_core": head_h,
                         "film_hours": max(workers_h, head_h),
                         "bound": "head" if head_h > workers_h else "workers"})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--modes", default="local x1,local x2,ray 1w,ray 2w")
    parser.add_argument("--gpu-frame-ms", type=float, default=None,
                        help="a GPU worker's step-4 cost per frame, for the model (measure it "
                        "with bench/neural.py --gpu-only on the GPU)")
    parser.add_argument("--shots-per-film", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--long-loops", type=int, default=8,
                        help="the long shot: GRID bbaf2n looped this many times (75 frames "
                        "each); 0: no long shot")
    parser.add_argument("--chunk-frames", type=int, default=150,
                        help="frames per Ray task of the long shot (STUDIO_RAY_CHUNK_FRAMES)")
    parser.add_argument("--quick", action="store_true",
                        help="1 shot, a 150-frame long shot in chunks of 50, local x1 and "
                        "Ray with 1 and 2 workers")
    args = parser.parse_args(argv)
    if args.quick:
        args.shots, args.long_loops, args.chunk_frames = 1, 2, 50
        args.modes = "local x1,ray 1w,ray 2w"
    from studio.accounts.service import migrate as migrate_accounts
    from studio.bootstrap import SeedReport, open_registry, seed_demo
    from studio.settings import Settings

    machine = Machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        seeded = Path(tmp) / "seeded"
        registry = open_registry(Settings.from_env(seeded))
        seed_demo(registry, SeedReport())
        migrate_accounts(registry.store.engine)  # the job history's table
        registry.store.dispose()
        long_shot = None
        if args.long_loops > 0:
            shot, dub = make_long_shot(Path(tmp), args.long_loops)
            long_shot = (str(shot), str(dub), args.chunk_frames)
        for mode in args.modes.split(","):
            data = Path(tmp) / mode.replace(" ", "-")
            shutil.copytree(seeded, data)
            log(f"{mode}: {args.shots} shots; load average {os.getloadavg()}")
            results.append(run_mode(mode.strip(), data, args.shots, long_shot))
    machine.finish()
    rows = [summarise(r) for r in results]
    base = rows[0]["shots_per_min"]
    print(f"CPU: {machine.cpu_model} x{machine.cpus}; load {machine.load_start} -> "
          f"{machine.load_end}")
    print("| mode | shots | frames | wall s | shots/min | vs first | head s/frame | "
          "step 4 s/frame | task overhead s (least) | no-op task ms | identify cold/warm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        overhead = "" if r["task_overhead_s"] is None else f"{r['task_overhead_s']:.2f}"
        noop = "" if r["noop_task_ms"] is None else f"{r['noop_task_ms']:.2f}"
        print(f"| {r['mode']} | {r['shots']} | {r['frames']} | {r['wall_s']:.1f} | "
              f"{r['shots_per_min']:.2f} | {r['shots_per_min'] / base:.2f}x | "
              f"{r['head_s_per_frame'] * 1000:.1f} ms | {r['step4_s_per_frame'] * 1000:.1f} ms"
              f" | {overhead} | {noop} | {r['cold_identify_s_per_frame'] * 1000:.1f} / "
              f"{r['warm_identify_s_per_frame'] * 1000:.1f} ms |")
    longs = [r for r in rows if r["long"]]
    if longs:
        base_long = longs[0]["long"]
        print(f"\nLong shot: {base_long['frames']} frames; on Ray in chunks of "
              f"{args.chunk_frames} frames (one task each), encoded once by the head")
        print("| mode | tasks | wall s | frames/s | speed-up (wall) | step 4 s | "
              "speed-up (step 4) | load average before -> after |")
        print("|---|---|---|---|---|---|---|---|")
        for r in longs:
            lg = r["long"]
            before, after = r["load"]
            load = "" if before is None else \
                f"{before[0]:.2f} -> {after[0]:.2f}"
            print(f"| {r['mode']} | {lg['tasks']} | {lg['wall_s']:.1f} | "
                  f"{lg['frames'] / lg['wall_s']:.2f} | "
                  f"{base_long['wall_s'] / lg['wall_s']:.2f}x | {lg['run_s']:.1f} | "
                  f"{base_long['run_s'] / lg['run_s']:.2f}x | {load} |")
        print(f"(speed-up against {longs[0]['mode']}, the single-process render; "
              f"os.getloadavg() now {os.getloadavg()})")
    ray_rows = [r for r in rows if r["task_overhead_s"] is not None]
    model: list[dict[str, Any]] = []
    if ray_rows:
        # The least contended figures (on a shared machine concurrent modes time-slice).
        head_s = min(r["head_s_per_frame"] for r in rows)
        step4_s = min(r["step4_s_per_frame"] for r in rows)
        track_s = max(0.0, min(r["cold_identify_s_per_frame"] - r["warm_identify_s_per_frame"]
                               for r in rows))
        overhead_s = min(r["task_overhead_s"] for r in ray_rows)
        model = film_model(head_s, track_s, step4_s, overhead_s,
                           shots_per_film=args.shots_per_film,
                           gpu_frame_s=None if args.gpu_frame_ms is None
                           else args.gpu_frame_ms / 1000)
        print(f"\nFilm model: {FILM_FRAMES} frames x {FILM_LANGUAGES} languages, "
              f"{args.shots_per_film} shots per film; per frame: head {head_s * 1000:.1f} ms "
              f"per language + tracking {track_s * 1000:.1f} ms once, step 4 "
              f"{step4_s * 1000:.1f} ms (CPU), task overhead {overhead_s:.2f} s")
        print("| workers | kind | worker hours | head hours (1 core) | film hours | bound |")
        print("|---|---|---|---|---|---|")
        for m in model:
            print(f"| {m['workers']} | {m['kind']} | {m['worker_hours']:.1f} | "
                  f"{m['head_hours_one_core']:.1f} | {m['film_hours']:.1f} | {m['bound']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine.__dict__, "modes": rows,
                                    "raw": results, "film_model": model}, indent=1,
                                   default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
