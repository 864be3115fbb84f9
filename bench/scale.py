"""The same multi-shot job on the local executor and on Ray with 1 and 2 worker nodes.

Run from the repository root::

    .venv/bin/python bench/scale.py             # 3 shots per mode (GRID 360x288, 75 frames)
    .venv/bin/python bench/scale.py --shots 2   # shorter

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


def _mode(name: str, data: str, shots: int, queue: Any) -> None:
    """One mode in a fresh process: warm-up shot, then ``shots`` shots submitted at once."""
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
        settings = replace(settings, executor="ray", ray_task_memory_mb=256)
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
        queue.put({"mode": name, "shots": shots, "wall_s": wall, "jobs": per_job,
                   "noop_task_ms": noop_ms, "cold": cold})
    finally:
        manager.shutdown()
        registry.store.dispose()
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()  # type: ignore[no-untyped-call]


def run_mode(name: str, data: Path, shots: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_mode, args=(name, str(data), shots, queue))
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
                                             for j in jobs) / frames}


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
    args = parser.parse_args(argv)
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
        for mode in args.modes.split(","):
            data = Path(tmp) / mode.replace(" ", "-")
            shutil.copytree(seeded, data)
            log(f"{mode}: {args.shots} shots")
            results.append(run_mode(mode.strip(), data, args.shots))
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
