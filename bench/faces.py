"""Face-layer benchmarks: tracking fps at 720p, embedding time per face, enrolment-like cost.

Run from the repository root::

    .venv/bin/python bench/faces.py            # ~1 min on 2 cores
    .venv/bin/python bench/faces.py --quick    # one round each

What is timed (docs/QUALITY.md, "Speed, memory, scale"):

1. Face tracking at 720p: a GRID clip (360×288, 75 frames) scaled to 900×720 and padded to
   1280×720 with its own edge colours, upscaled once beforehand so that neither decoding nor
   scaling is timed. Three figures: the mesh alone (mediapipe tracking mode), mesh + shot-cut
   detector + tracker (no identity), and the full ``scan_video`` with dlib embeddings sampled
   every 5 frames (what ``identify`` will run). Median of the rounds.
2. Embedding time per face: ``DlibEmbedder.embed`` (5-point alignment + ResNet) on one face,
   at GRID's native size and at 720p (the chip is 150×150 either way; the difference is the
   alignment's image access).
3. Enrolment-like cost: 16 evenly spread frames of a clip, each run through the still-image
   path (static mesh, pose, sharpness, embedding), as enrolling a performer from reference
   footage would; plus the cold start (loading dlib's models, building the mesh graph).

Progress goes to stderr, the table to stdout, the same figures as JSON to
``bench/out/faces.json``.
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
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import av
import cv2
import mediapipe
import numpy as np

from pipelines.faces import (
    DlibEmbedder,
    FaceMeshDetector,
    FaceTracker,
    ShotCutDetector,
    face_sharpness,
    is_frontal,
    observation_pose,
    scan_video,
)

CLIP = ROOT / "assets" / "media" / "grid" / "bbaf2n.mpg"
OUT = ROOT / "bench" / "out" / "faces.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def to_720p(frame: np.ndarray) -> np.ndarray:
    scaled = cv2.resize(frame, (900, 720), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(cv2.copyMakeBorder(scaled, 0, 0, 190, 190, cv2.BORDER_REPLICATE))


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_tracking(frames: Sequence[np.ndarray], embedder: DlibEmbedder, rounds: int
                   ) -> dict[str, Any]:
    n = len(frames)

    def mesh_only() -> None:
        with FaceMeshDetector(static=False) as det:
            for f in frames:
                det.detect(f)

    def mesh_and_tracker() -> None:
        tracker, cuts = FaceTracker(None), ShotCutDetector()
        with FaceMeshDetector(static=False) as det:
            for f in frames:
                cut = cuts.update(f)
                if cut:
                    det.reset()
                tracker.update(f, det.detect(f), cut=cut)
        assert len(tracker.finish()) == 1

    def full_scan() -> None:
        result = scan_video(frames, embedder, sample_every=5)
        assert len(result.tracks) == 1

    def cut_detector() -> None:
        det = ShotCutDetector()
        for f in frames:
            det.update(f)

    rows: dict[str, Any] = {}
    for key, fn in [("mesh", mesh_only), ("mesh+tracker", mesh_and_tracker),
                    ("scan_video+dlib", full_scan), ("cut detector", cut_detector)]:
        log(f"tracking at 720p: {key} …")
        fn()  # warm-up (graph build, caches)
        secs = timed(fn, rounds)
        med = statistics.median(secs)
        rows[key] = {"frames": n, "seconds_median": med, "fps": n / med,
                     "ms_per_frame": 1000 * med / n, "rounds": secs}
    return rows


def bench_embedding(native: Sequence[np.ndarray], big: Sequence[np.ndarray],
                    embedder: DlibEmbedder, rounds: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for key, frames in [("360x288", native), ("1280x720", big)]:
        picks = [frames[i] for i in range(0, len(frames), max(1, len(frames) // 15))]
        with FaceMeshDetector(static=True) as det:
            obs = [(f, det.detect(f)[0]) for f in picks]
        embedder.embed(*obs[0])
        times = []
        for _ in range(rounds):
            for f, o in obs:
                t0 = time.perf_counter()
                embedder.embed(f, o)
                times.append(time.perf_counter() - t0)
        times.sort()
        rows[key] = {"faces": len(times), "ms_mean": 1000 * statistics.fmean(times),
                     "ms_p50": 1000 * times[len(times) // 2],
                     "ms_p95": 1000 * times[int(0.95 * (len(times) - 1))]}
        log(f"embedding {key}: {rows[key]['ms_mean']:.1f} ms/face")
    return rows


def enrol(frames: Sequence[np.ndarray], embedder: DlibEmbedder) -> int:
    """The still-image path on 16 frames; returns how many made good templates."""
    idx = np.linspace(0, len(frames) - 1, 16).round().astype(int)
    good = 0
    with FaceMeshDetector(static=True, max_faces=2) as det:
        for i in idx:
            faces = det.detect(frames[i])
            if len(faces) != 1:
                continue
            face = faces[0]
            if is_frontal(observation_pose(face)) and face_sharpness(frames[i], face.bbox) >= 20:
                embedder.embed(frames[i], face)
                good += 1
    return good


def bench_enrolment(native: Sequence[np.ndarray], big: Sequence[np.ndarray], rounds: int
                    ) -> dict[str, Any]:
    t0 = time.perf_counter()
    embedder = DlibEmbedder()
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    with FaceMeshDetector(static=True) as det:
        det.detect(native[0])
    graph = time.perf_counter() - t0
    rows: dict[str, Any] = {"cold_start": {"dlib_models_load_s": load,
                                           "mesh_graph_first_frame_s": graph}}
    for key, frames in [("360x288", native), ("1280x720", big)]:
        good = enrol(frames, embedder)

        def run(fr: Sequence[np.ndarray] = frames) -> None:
            enrol(fr, embedder)

        secs = timed(run, rounds)
        med = statistics.median(secs)
        rows[key] = {"frames": 16, "good_templates": good, "seconds_median": med,
                     "ms_per_frame": 1000 * med / 16, "rounds": secs}
        log(f"enrolment {key}: {med:.2f} s for 16 frames ({good} good)")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of each measurement")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else 3
    load_start = os.getloadavg()

    native = decode(CLIP)
    big = [to_720p(f) for f in native]
    log(f"{CLIP.name}: {len(native)} frames, upscaled to {big[0].shape[1]}×{big[0].shape[0]}")
    embedder = DlibEmbedder()

    tracking = bench_tracking(big, embedder, rounds)
    embedding = bench_embedding(native, big, embedder, rounds)
    enrolment = bench_enrolment(native, big, rounds)

    lines = ["| measurement | figure |", "| --- | --- |"]
    for key, row in tracking.items():
        lines.append(f"| 720p {key} | {row['fps']:.1f} fps ({row['ms_per_frame']:.2f} ms/frame) |")
    for key, row in embedding.items():
        lines.append(f"| dlib embedding per face, {key} | {row['ms_mean']:.1f} ms "
                     f"(p50 {row['ms_p50']:.1f}, p95 {row['ms_p95']:.1f}) |")
    for key in ("360x288", "1280x720"):
        row = enrolment[key]
        lines.append(f"| enrolment, 16 frames, {key} | {row['seconds_median']:.2f} s "
                     f"({row['ms_per_frame']:.0f} ms/frame, {row['good_templates']} good) |")
    cold = enrolment["cold_start"]
    lines.append(f"| cold start (warm page cache): dlib models / first mesh frame | "
                 f"{cold['dlib_models_load_s']:.2f} s / {cold['mesh_graph_first_frame_s']:.2f} s |")
    print("\n".join(lines))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "meta": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "mediapipe": mediapipe.__version__,
                 "opencv": cv2.__version__, "clip": CLIP.name, "rounds": rounds,
                 "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "tracking_720p": tracking, "embedding": embedding, "enrolment": enrolment,
        "table": lines,
    }, indent=2))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
