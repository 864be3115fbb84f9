"""Does the lip-synced mouth say what the dub says? An independent, ground-truth bench.

Run from the repository root::

    .venv/bin/python bench/lipsync_sync.py            # all 30 swapped GRID pairs, ~1-4 min
    .venv/bin/python bench/lipsync_sync.py --quick    # the 5 pairs with A = bbaf2n

Every ordered pair (A, B) of distinct GRID clips: shot A is lip-synced with the embedded
backend (``EmbeddedLipSync``, driven by ``drive_from_recording`` of clip B's audio prepared as a
dub for A). Frames are rendered in memory through the backend's own ``prepare`` / ``edits`` /
``render`` (what ``run_lipsync`` does, minus the guard, which only restricts pixels, and the
H.264 encode). Then, with dlib's 68-point predictor (``pipelines.qc.dlib_mouth``: inner-lip
gap / mouth width per frame; the renderer places lips with mediapipe, so the judge is
independent) and clip B's *video* as the ground truth of how that audio moves a real mouth:

* ``r_dub``: Pearson r(output opening, B's real opening), lag 0. Goal: mean ≥ 0.75.
* ``leak``: r(output, A's original opening) − r(A original, B original): how much of the
  original actor's articulation shows through, beyond what two unrelated GRID sentences share
  (every clip is silence, speech, silence). Goal: ≤ 0.10 on every pair.
* ``range``: (p95 − p5) of the output's opening / the same of B's. Goal: 0.8–1.25 every pair.
* ``drive``: r(the drive's jaw parameter, B's real opening), the ceiling the renderer works
  under, and ``render leak`` = r(output, A) − r(drive, A): the part of the leak the *renderer*
  adds (the rest is in the drive: GRID sentences share their shape, so a drive from B's audio
  alone already correlates with A's mouth).
* ``range/A``: the output's range over A's own original range (the performer's calibration).
* ``env`` (secondary, the old proxy): best-lag (±3) r of the output opening with the dub's
  per-frame log-RMS (``quality.sync_score``).
* ``oracle`` (what the goals allow): B's *real* mouth, with every frame outside B's voice
  activity (the drive's ``voiced`` spans) set to B's closed value (p5), is the best output a
  renderer that keeps "mouth closed in silence" could show. Its r with B's real mouth is the
  ceiling of ``r_dub``; its ``leak`` against A is what the leak figure reads even with no
  leak at all (GRID speakers often hold the mouth open before they speak, so closing it in
  silence alone makes an output follow a shot whose actor rests closed). ``partial leak``:
  the partial correlation of the output with A's mouth given the drive, the renderer's own
  share measured without that shared silence structure.

Table to stdout, JSON (with the per-frame series, used to set the QC thresholds) to
``bench/out/lipsync_sync.json``.
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
import statistics
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.lipsync import EmbeddedLipSync, SpeechDrive, drive_from_recording
from pipelines.lipsync.interface import FaceTrackInput
from pipelines.media import VideoReader, load_audio
from pipelines.qc.dlib_mouth import mouth_series, video_mouth_series
from pipelines.qc.report import assess_track, bilabial_frames
from pipelines.quality import frame_loudness, sync_score
from pipelines.speech.dub import prepare_dub

GRID = ROOT / "assets" / "media" / "grid"
CLIPS = ["bbaf2n", "brbk7n", "id2_vcd_swwp2s", "lbax4n", "lbbc2a", "lrwp9a"]
OUT = ROOT / "bench" / "out" / "lipsync_sync.json"
R_GOAL, LEAK_GOAL, RANGE_GOAL = 0.75, 0.10, (0.8, 1.25)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    x, y = a[:n], b[:n]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def partial(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Partial correlation of ``x`` and ``y`` given ``z``."""
    rxy, rxz, ryz = pearson(x, y), pearson(x, z), pearson(y, z)
    return (rxy - rxz * ryz) / math.sqrt(max((1 - rxz**2) * (1 - ryz**2), 1e-12))


def oracle(mouth: np.ndarray, voiced: Sequence[tuple[float, float]], fps: float) -> np.ndarray:
    """``mouth`` closed (its p5) outside ``voiced``: the best silence-closed output."""
    times = (np.arange(len(mouth)) + 0.5) / fps
    inside = np.zeros(len(mouth), dtype=bool)
    for start, end in voiced:
        inside |= (times >= start) & (times < end)
    out = mouth.copy()
    out[~inside] = np.nanpercentile(mouth, 5)
    return out


def spread(x: np.ndarray) -> float:
    return float(np.nanpercentile(x, 95) - np.nanpercentile(x, 5))


BACKEND_OPTIONS: dict[str, Any] = {}


def render_in_memory(analysis: ShotAnalysis, frames: list[np.ndarray], drive: SpeechDrive
                     ) -> list[np.ndarray]:
    video = analysis.info.require_video()
    backend = EmbeddedLipSync(**BACKEND_OPTIONS)
    track = analysis.tracks[0].track_id
    face = FaceTrackInput(track, analysis.landmarks(track), analysis.exemplars.get(track),
                          (video.width, video.height))
    edits = {e.frame_index: e for e in backend.edits(backend.prepare(face, drive))}
    out = []
    for i, rgb in enumerate(frames):
        img = rgb.copy()
        if i in edits:
            backend.render(img, [edits[i]])
        out.append(img)
    return out


def evaluate(pairs: Sequence[tuple[str, str]], work: Path) -> list[dict[str, Any]]:
    mouths = {c: video_mouth_series(GRID / f"{c}.mpg") for c in CLIPS}
    rows: list[dict[str, Any]] = []
    for a in dict.fromkeys(p[0] for p in pairs):
        analysis = analyse_shot(GRID / f"{a}.mpg", work / a, None)
        video = analysis.info.require_video()
        n, fps = analysis.scan.frame_count, video.frame_rate
        with VideoReader(GRID / f"{a}.mpg") as reader:
            frames = [f.rgb.copy() for f in reader]
        for b in [p[1] for p in pairs if p[0] == a]:
            t0 = time.perf_counter()
            dub = prepare_dub(load_audio(GRID / f"{b}.mpg"), Fraction(n) / fps)
            drive = drive_from_recording(dub, fps, n)
            out = mouth_series(render_in_memory(analysis, frames, drive))
            ma, mb = mouths[a], mouths[b]
            r_dub, r_orig, r_ab = pearson(out, mb), pearson(out, ma), pearson(ma, mb)
            jaw = drive.shapes[:, 0]
            loud = frame_loudness(dub.dialogue_mono_16k, fps, n)
            env = sync_score(out, loud)
            pbm = bilabial_frames(drive.timeline, float(fps), n)
            best = oracle(mb, drive.voiced, float(fps))
            qc = assess_track(out, ma, jaw, loud, pbm)
            control = assess_track(ma.copy(), ma, jaw, loud, pbm)
            row = {"video": a, "audio": b, "frames": n, "r_dub": r_dub,
                   "r_original": r_orig, "r_original_vs_dub": r_ab, "leak": r_orig - r_ab,
                   "range": spread(out) / spread(mb), "range_vs_A": spread(out) / spread(ma),
                   "r_drive_dub": pearson(jaw, mb),
                   "render_leak": r_orig - pearson(jaw, ma), "env_r": env.r, "env_lag": env.lag,
                   "oracle_r_dub": pearson(best, mb), "oracle_leak": pearson(best, ma) - r_ab,
                   "partial_leak": partial(out, ma, jaw),
                   "seconds": time.perf_counter() - t0, "output_opening": out.tolist(),
                   "drive_jaw": drive.shapes[:, 0].tolist(),
                   "qc": qc.to_json(), "qc_no_lipsync": control.to_json()}
            rows.append(row)
            log(f"{a} <- {b}: r_dub {r_dub:.3f} leak {row['leak']:+.3f} range "
                f"{row['range']:.2f} env {env.r:.3f} ({row['seconds']:.1f} s)")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only pairs with A = bbaf2n")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--video", action="append", choices=CLIPS, help="only these A clips")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=0|1",
                        help="EmbeddedLipSync keyword (e.g. neutralise=0), for A/B runs")
    parser.add_argument("--label", default="", help="recorded in the JSON (what was changed)")
    args = parser.parse_args(argv)
    for option in args.option:
        name, _, value = option.partition("=")
        BACKEND_OPTIONS[name] = bool(int(value))
    pairs = [(a, b) for a in CLIPS for b in CLIPS if a != b]
    if args.quick:
        pairs = [p for p in pairs if p[0] == CLIPS[0]]
    if args.video:
        pairs = [p for p in pairs if p[0] in args.video]
    with tempfile.TemporaryDirectory(prefix="bench_lipsync_sync_") as tmp:
        rows = evaluate(pairs, Path(tmp))
    lines = ["| A video ← B audio | r(out, B mouth) | r(out, A mouth) | r(A, B) | leak | "
             "range out/B | r(drive, B mouth) | render leak | range out/A | env r (proxy) |",
             "|" + " --- |" * 10]
    for r in rows:
        lines.append(f"| {r['video']} ← {r['audio']} | {r['r_dub']:.3f} | "
                     f"{r['r_original']:.3f} | {r['r_original_vs_dub']:.3f} | "
                     f"{r['leak']:+.3f} | {r['range']:.2f} | {r['r_drive_dub']:.3f} | "
                     f"{r['render_leak']:+.3f} | {r['range_vs_A']:.2f} | {r['env_r']:.3f} |")
    mean = statistics.fmean
    ranges = [r["range"] for r in rows]
    summary = {
        "r_dub_mean": mean(r["r_dub"] for r in rows),
        "r_dub_min": min(r["r_dub"] for r in rows),
        "leak_mean": mean(r["leak"] for r in rows),
        "leak_max": max(r["leak"] for r in rows),
        "range_min": min(ranges), "range_max": max(ranges),
        "range_in_goal": sum(RANGE_GOAL[0] <= x <= RANGE_GOAL[1] for x in ranges),
        "env_r_mean": mean(r["env_r"] for r in rows),
        "r_drive_dub_mean": mean(r["r_drive_dub"] for r in rows),
        "render_leak_mean": mean(r["render_leak"] for r in rows),
        "render_leak_max": max(r["render_leak"] for r in rows),
        "range_vs_A_min": min(r["range_vs_A"] for r in rows),
        "range_vs_A_max": max(r["range_vs_A"] for r in rows),
        "oracle_r_dub_mean": mean(r["oracle_r_dub"] for r in rows),
        "oracle_leak_max": max(r["oracle_leak"] for r in rows),
        "oracle_leak_over_goal": sum(r["oracle_leak"] > LEAK_GOAL for r in rows),
        "partial_leak_mean": mean(r["partial_leak"] for r in rows),
        "partial_leak_max": max(r["partial_leak"] for r in rows),
        "pairs": len(rows),
    }
    lines += [
        f"| **mean** | **{summary['r_dub_mean']:.3f}** (min {summary['r_dub_min']:.3f}) | "
        f"{mean(r['r_original'] for r in rows):.3f} | "
        f"{mean(r['r_original_vs_dub'] for r in rows):.3f} | "
        f"{summary['leak_mean']:+.3f} (max {summary['leak_max']:+.3f}) | "
        f"{summary['range_min']:.2f}–{summary['range_max']:.2f} | "
        f"{summary['r_drive_dub_mean']:.3f} | {summary['render_leak_mean']:+.3f} (max "
        f"{summary['render_leak_max']:+.3f}) | {summary['range_vs_A_min']:.2f}–"
        f"{summary['range_vs_A_max']:.2f} | {summary['env_r_mean']:.3f} |", "",
        f"goals: mean r ≥ {R_GOAL}: {'PASS' if summary['r_dub_mean'] >= R_GOAL else 'FAIL'}; "
        f"leak ≤ {LEAK_GOAL} every pair: "
        f"{'PASS' if summary['leak_max'] <= LEAK_GOAL else 'FAIL'}; range "
        f"{RANGE_GOAL[0]}–{RANGE_GOAL[1]} every pair: {summary['range_in_goal']}/{len(rows)} "
        f"{'PASS' if summary['range_in_goal'] == len(rows) else 'FAIL'}",
        f"ceilings under 'mouth closed in silence' (oracle: B's real mouth, closed outside B's "
        f"voice activity): mean r {summary['oracle_r_dub_mean']:.3f}; leak max "
        f"{summary['oracle_leak_max']:+.3f}, {summary['oracle_leak_over_goal']}/{len(rows)} "
        f"pairs over {LEAK_GOAL} with no leak at all",
        f"renderer leak as a partial correlation r(out, A | drive): mean "
        f"{summary['partial_leak_mean']:+.3f}, max {summary['partial_leak_max']:+.3f}"]
    lines += ["", "QC figures (pipelines.qc.report) over the renders, and over the untouched "
              "source with the dub (no lip sync: the negative control):",
              "| figure | renders min / median / max | flagged | no lip sync min / median / "
              "max | flagged |", "| --- | --- | --- | --- | --- |"]
    for key in ("sync", "leak", "range", "jitter", "bilabials"):
        def values(kind: str, key: str = key) -> list[float]:
            if key == "bilabials":
                return [r[kind]["bilabials_closed"] / r[kind]["bilabials_total"]
                        if r[kind]["bilabials_total"] else math.nan for r in rows]
            return [math.nan if r[kind][key] is None else r[kind][key] for r in rows]

        def flagged(kind: str, key: str = key) -> int:
            word = {"sync": "sync", "leak": "leak", "range": "range", "jitter": "jitter",
                    "bilabials": "bilabials"}[key]
            return sum(any(word in reason for reason in r[kind]["reasons"]) for r in rows)

        cells = []
        for kind in ("qc", "qc_no_lipsync"):
            v = np.array(values(kind))
            cells.append(f"{np.nanmin(v):.2f} / {np.nanmedian(v):.2f} / {np.nanmax(v):.2f} | "
                         f"{flagged(kind)}/{len(rows)}")
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    lines.append(f"needs_review: renders {sum(r['qc']['needs_review'] for r in rows)}/"
                 f"{len(rows)}, no lip sync "
                 f"{sum(r['qc_no_lipsync']['needs_review'] for r in rows)}/{len(rows)}")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"label": args.label, "summary": summary, "rows": rows,
                                    "table": lines}, indent=1))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
