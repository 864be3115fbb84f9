"""Lip-sync benchmark: sync, swap test, bilabials, silence, identity, locality, jitter, speed.

Run from the repository root::

    .venv/bin/python bench/lipsync.py            # 5 swap pairs + 720p speed, ~2-3 min on 2 cores
    .venv/bin/python bench/lipsync.py --quick    # one pair, one speed round
    .venv/bin/python bench/lipsync.py --long     # adds a 10x longer 720p clip (750 frames)

What is measured (docs/QUALITY.md, "Lip-sync", "Both", "Speed"), all with
``pipelines.quality`` and the embedded CPU backend (``EmbeddedLipSync``), watermark off:

1. **Reference.** Sync score (best-lag Pearson r of mouth opening vs per-frame log-RMS,
   ±3 frames) of every untouched GRID clip with its own audio; the mean is the reference level.
2. **Swap test.** Clip A's picture is lip-synced to clip B's audio (a different speaker),
   through the studio path: ``analyse_shot`` → ``prepare_dub`` → ``drive_from_recording`` →
   ``run_lipsync`` (H.264 at ``LipSyncJob``'s default CRF/preset). Targets: r(output, B) ≥
   0.8 × reference mean and r(output, A's own audio) < 0.5 × reference mean. Also shown: r of
   the *untouched* A picture against B's audio (what the swap scores with no lip sync at all),
   r between the two audio envelopes themselves (an output that followed B perfectly would
   still score about that against A: every GRID clip is silence, ~2 s of speech, silence), and
   both scores restricted to the frames where A or B speaks (VAD), which removes that shared
   shape. These diagnostics are reported, not judged.
3. **Bilabials.** B's phones are recognised (``timed_phones_for_dub``, the drive's own
   recogniser). A P/B/M phone counts as closed when the smallest output opening over its frames
   is ≤ A's closed value + :data:`CLOSED_MARGIN` (0.03 iod), A's closed value being the 5th
   percentile of A's untouched openings. Target: every bilabial.
4. **Silence.** Mean output opening over frames wholly outside B's voice segments, against A's
   closed value (target: within the same +0.03 margin).
5. **Identity** (dlib, every 5th frame pair, output vs source): worst ≤ 0.35.
   **Locality**: PSNR outside the lower-face mask dilated by 0.25 iod ≥ 40 dB; the same figure
   for a plain decode + encode of A at the same settings is the encoder's floor.
   **Jitter ratio**: output / source landmark jitter (whole mesh and lower face).
6. **Speed at 720p.** A GRID clip upscaled to 1280×720 (``to_720p``), written once to a
   temporary H.264 file (CRF 12, with its own audio): end-to-end fps (analysis with dlib
   embeddings + dub preparation and drive + render + encode; no TTS), render-only fps
   (``run_lipsync``: decode + edit + encode), the floor (a plain PyAV decode -> RGB -> x264) fps at
   the same CRF/preset, and render wall / plain wall. Target ≥ 25 fps end to end. Median of the
   rounds. ``--long`` adds the same on a 10× concatenation (one round).

A side-by-side preview of the first pair (source | output, with the dub audio and a caption)
goes to ``bench/out/lipsync_preview.mp4``. Progress goes to stderr, the table to stdout, the
figures as JSON to ``bench/out/lipsync.json``.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np

from bench._floor import Machine, Row, media_floor, report
from bench.faces import to_720p
from pipelines.edits import EditPermits
from pipelines.faces import DlibEmbedder
from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.faces.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from pipelines.lipsync import (
    EmbeddedLipSync,
    LipSyncJob,
    SpeechDrive,
    drive_from_recording,
    run_lipsync,
)
from pipelines.lipsync.embedded import MeshEdit
from pipelines.lipsync.interface import FaceTrackInput
from pipelines.media import Audio, VideoReader, VideoWriter, copy_video, load_audio, probe
from pipelines.media.probe import VideoStreamInfo
from pipelines.quality import (
    DEFAULT_DILATE_FRAC,
    bilabial_closure,
    closed_mouth_value,
    frame_loudness,
    identity_distances,
    jitter_ratio,
    mouth_openings,
    psnr_outside_mask,
    silence_opening,
    sync_score,
    voiced_frames,
)
from pipelines.speech.dub import prepare_dub
from pipelines.speech.recognition import detect_voice, timed_phones_for_dub

GRID = ROOT / "assets" / "media" / "grid"
CLIPS = ["bbaf2n", "brbk7n", "id2_vcd_swwp2s", "lbax4n", "lbbc2a", "lrwp9a"]
SPEED_CLIP = "bbaf2n"
OUT = ROOT / "bench" / "out" / "lipsync.json"
PREVIEW = ROOT / "bench" / "out" / "lipsync_preview.mp4"

CLOSED_MARGIN = 0.03
"""Lips count as closed up to the speaker's closed value + this (inter-ocular units)."""
CLOSED_PERCENTILE = 5.0
SYNC_KEEP = 0.8          # r(B) ≥ 0.8 × reference mean
SYNC_DROP = 0.5          # r(A) < 0.5 × reference mean
IDENTITY_MAX = 0.35
PSNR_MIN = 40.0
FPS_MIN = 25.0
#: End to end within 1.5x a plain PyAV decode -> RGB -> x264 of the same clip at the same
#: settings, timed in the same run (issue 19).
TARGET_RATIO = 1.5

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(LipSyncJob)}
CRF = int(_DEFAULTS["crf"])
PRESET = str(_DEFAULTS["preset"])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def clip(name: str) -> Path:
    return GRID / f"{name}.mpg"


def fmt(x: float, digits: int = 2) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"


# --- reference -------------------------------------------------------------------------------


def reference(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        path = clip(name)
        video = probe(path).require_video()
        openings = mouth_openings(path)
        loud = frame_loudness(load_audio(path), video.frame_rate, video.frame_count)
        score = sync_score(openings, loud)
        rows[name] = {
            "r": score.r, "lag": score.lag,
            "closed": closed_mouth_value(openings, CLOSED_PERCENTILE),
            "p95": float(np.nanpercentile(openings, 95)),
            "openings": openings.tolist(),
        }
        log(f"reference {name}: r={score.r:.3f} lag={score.lag}")
    return rows


def commanded_openings(analysis: ShotAnalysis, track: int, drive: SpeechDrive
                       ) -> np.ndarray:
    """Per frame, the inner-lip gap / iod of the embedded backend's *target* mesh (image
    plane): what the renderer was asked to show, to compare with what the mesh reads back."""
    video = analysis.info.require_video()
    backend = EmbeddedLipSync()
    face = FaceTrackInput(track, analysis.landmarks(track), analysis.exemplars.get(track),
                          (video.width, video.height))
    out = np.full(drive.frame_count, np.nan)
    for edit in backend.edits(backend.prepare(face, drive)):
        assert isinstance(edit, MeshEdit)
        m = edit.mesh
        iod = float(np.linalg.norm(m[RIGHT_EYE_OUTER] - m[LEFT_EYE_OUTER]))
        out[edit.frame_index] = float(np.linalg.norm(m[13] - m[14])) / iod
    return out


# --- swap test -------------------------------------------------------------------------------


def swap(a: str, b: str, ref: dict[str, dict[str, Any]], embedder: DlibEmbedder,
         work: Path) -> dict[str, Any]:
    src = clip(a)
    out = work / f"{a}__{b}.mp4"
    t0 = time.perf_counter()
    analysis = analyse_shot(src, work / f"an_{a}_{b}", None)
    video = analysis.info.require_video()
    n, fps = analysis.scan.frame_count, video.frame_rate
    dub = prepare_dub(load_audio(clip(b)), Fraction(n) / fps)
    drive = drive_from_recording(dub, fps, n)
    track = analysis.tracks[0].track_id
    result = run_lipsync(LipSyncJob(analysis, {track: drive}, dub.mix, out,
                                    permits=EditPermits.all_frames([track])), EmbeddedLipSync())
    render_s = time.perf_counter() - t0

    openings = mouth_openings(out)
    src_openings = np.asarray(ref[a]["openings"], dtype=np.float64)
    loud_b = frame_loudness(dub.dialogue_mono_16k, fps, n)
    loud_a = frame_loudness(load_audio(src), fps, n)
    r_b, r_a = sync_score(openings, loud_b), sync_score(openings, loud_a)
    r_src_b = sync_score(src_openings, loud_b)

    closed = float(ref[a]["closed"])
    threshold = closed + CLOSED_MARGIN
    heard = timed_phones_for_dub(dub.dialogue_mono_16k)
    checks = bilabial_closure(openings, heard.phones, fps, threshold)
    silence = silence_opening(openings, heard.voice, fps)
    # Diagnostics: how alike the two audio envelopes are (if the output followed B perfectly,
    # r(out, A) would still be about r(A audio, B audio)), and both scores over the frames in
    # which A or B speaks only (the shared silence - speech - silence shape of GRID removed).
    r_ab = sync_score(loud_a, loud_b, max_lag=0)
    speech = voiced_frames((*heard.voice, *detect_voice(load_audio(src))), fps, n)
    masked = np.where(speech, openings, np.nan)
    r_b_speech, r_a_speech = sync_score(masked, loud_b), sync_score(masked, loud_a)
    # What the backend was asked for vs what the output shows: r, and the share of the
    # source's own opening that survives (slope of output − target on source − target).
    target = commanded_openings(analysis, track, drive)
    r_target = sync_score(openings, target, max_lag=0)
    dx, dy = src_openings - target, openings - target
    ok = np.isfinite(dx) & np.isfinite(dy)
    leak = float(np.polyfit(dx[ok], dy[ok], 1)[0]) if ok.sum() > 2 else math.nan
    target_silence = silence_opening(target, heard.voice, fps)

    id_mean, id_worst = identity_distances(src, out, embedder, every=5)
    psnr = psnr_outside_mask(src, out, dilate_frac=DEFAULT_DILATE_FRAC)
    plain = work / f"{a}__plain.mp4"
    if not plain.exists():
        copy_video(src, plain, crf=CRF, preset=PRESET)
    psnr_floor = psnr_outside_mask(src, plain, dilate_frac=DEFAULT_DILATE_FRAC)
    jitter = jitter_ratio(src, out)
    jitter_lower = jitter_ratio(src, out, lower_face=True)
    row = {
        "video": a, "audio": b, "output": out.name, "frames": n,
        "render_s": render_s, "render_changes": [dataclasses.asdict(c) for c in result.changes],
        "r_B": r_b.r, "lag_B": r_b.lag, "r_A": r_a.r, "lag_A": r_a.lag,
        "r_source_vs_B": r_src_b.r, "lag_source_vs_B": r_src_b.lag,
        "r_audio_A_vs_B": r_ab.r, "speech_frames": int(speech.sum()),
        "r_B_speech_only": r_b_speech.r, "lag_B_speech_only": r_b_speech.lag,
        "r_A_speech_only": r_a_speech.r, "lag_A_speech_only": r_a_speech.lag,
        "closed_A": closed, "closed_threshold": threshold,
        "bilabials": [dataclasses.asdict(c) for c in checks],
        "bilabials_closed": sum(c.closed for c in checks), "bilabials_total": len(checks),
        "silence_opening": silence, "silence_target_opening": target_silence,
        "r_output_vs_target": r_target.r, "source_leak": leak,
        "target_opening_p95": float(np.nanpercentile(target, 95)),
        "voice": [[v.start, v.end] for v in heard.voice],
        "identity_mean": id_mean, "identity_worst": id_worst,
        "psnr_outside_mask": psnr, "psnr_plain_encode": psnr_floor,
        "jitter_ratio": jitter, "jitter_ratio_lower_face": jitter_lower,
        "output_opening_p5": float(np.nanpercentile(openings, 5)),
        "output_opening_p95": float(np.nanpercentile(openings, 95)),
        "source_opening_p95": float(ref[a]["p95"]),
        "openings": openings.tolist(),
        "loudness_B": loud_b.tolist(),
    }
    log(f"swap {a} <- {b}: r(B)={r_b.r:.3f}@{r_b.lag} r(A)={r_a.r:.3f}@{r_a.lag} "
        f"bilabials {row['bilabials_closed']}/{len(checks)} silence {silence:.3f} "
        f"(closed {closed:.3f}) id {id_mean:.3f}/{id_worst:.3f} psnr {psnr:.1f} "
        f"(plain {psnr_floor:.1f}) jitter {jitter:.2f}/{jitter_lower:.2f}")
    return row


def verdicts(row: dict[str, Any], ref_mean: float) -> dict[str, bool]:
    return {
        "sync_B": row["r_B"] >= SYNC_KEEP * ref_mean,
        "sync_A": row["r_A"] < SYNC_DROP * ref_mean,
        "bilabials": row["bilabials_closed"] == row["bilabials_total"],
        "silence": row["silence_opening"] <= row["closed_threshold"],
        "identity": row["identity_worst"] <= IDENTITY_MAX,
        "psnr": row["psnr_outside_mask"] >= PSNR_MIN,
    }


# --- preview ---------------------------------------------------------------------------------


def _caption(rgb: np.ndarray, text: str) -> None:
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    cv2.rectangle(rgb, (0, 0), (w + 8, h + base + 6), (0, 0, 0), cv2.FILLED)
    cv2.putText(rgb, text, (4, h + 3), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def preview(source: Path, output: Path, audio: Audio, caption: tuple[str, str],
            path: Path) -> None:
    with VideoReader(source) as left, VideoReader(output) as right:
        like = VideoStreamInfo.new(left.output.width * 2, left.output.height,
                                   left.output.frame_rate)
        with VideoWriter(path, like, crf=CRF, preset=PRESET, audio=audio) as writer:
            for a, b in zip(left, right, strict=True):
                _caption(a.rgb, caption[0])
                _caption(b.rgb, caption[1])
                writer.write(np.ascontiguousarray(np.concatenate([a.rgb, b.rgb], axis=1)))


# --- speed -----------------------------------------------------------------------------------


def make_720p(name: str, repeat: int, path: Path) -> int:
    """``repeat`` copies of the clip at 1280×720 with its own audio; returns the frame count."""
    src = clip(name)
    with av.open(str(src)) as container:
        native = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    info = probe(src).require_video()
    audio = load_audio(src)
    per = round(Fraction(len(native)) / info.frame_rate * audio.rate)
    one = np.zeros((audio.channels, per), dtype=np.float32)
    one[:, :min(per, audio.frames)] = audio.samples[:, :per]
    tiled = Audio(np.ascontiguousarray(np.tile(one, (1, repeat))), audio.rate)
    like = VideoStreamInfo.new(1280, 720, info.frame_rate)
    big = [to_720p(f) for f in native]
    with VideoWriter(path, like, crf=12, preset="fast", audio=tiled) as writer:
        for _ in range(repeat):
            for f in big:
                writer.write(f)
    return len(native) * repeat


def end_to_end(src: Path, work: Path, embedder: DlibEmbedder) -> dict[str, float]:
    """As the studio runs it: the dub's phones are worked out on the other core while the
    faces are tracked (both need only the shot's timing), then the render."""
    out = work / "speed_out.mp4"
    t0 = time.perf_counter()
    timing = probe(src).require_video()
    n_guess = timing.frame_count

    def speech() -> tuple[Any, Any, float]:
        started = time.perf_counter()
        dub = prepare_dub(load_audio(src), Fraction(n_guess) / timing.frame_rate)
        drive = drive_from_recording(dub, timing.frame_rate, n_guess)
        return dub, drive, time.perf_counter() - started

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(speech)
        analysis = analyse_shot(src, work / "speed_an", embedder)
        t1 = time.perf_counter()
        dub, drive, drive_alone = pending.result()
    n = analysis.scan.frame_count
    assert n == n_guess, (n, n_guess)
    t2 = time.perf_counter()
    job = LipSyncJob(analysis, {analysis.tracks[0].track_id: drive}, dub.mix, out,
                     permits=EditPermits.all_frames([analysis.tracks[0].track_id]))
    result = run_lipsync(job, EmbeddedLipSync())
    t3 = time.perf_counter()
    out.unlink(missing_ok=True)
    return {"frames": n, "analysis_s": t1 - t0, "drive_s": drive_alone,
            "drive_wait_s": t2 - t1, "render_s": t3 - t2,
            "render_internal_s": result.seconds, "total_s": t3 - t0}


def plain(src: Path, frames: int) -> float:
    """Seconds of the floor: a plain PyAV decode -> RGB -> x264 at the same CRF and preset."""
    took: float = media_floor(src, frames=frames, crf=CRF, preset=PRESET)["wall_s"]
    return took


def speed(repeat: int, rounds: int, work: Path, embedder: DlibEmbedder) -> dict[str, Any]:
    src = work / f"speed_720p_x{repeat}.mp4"
    frames = make_720p(SPEED_CLIP, repeat, src)
    log(f"speed: {src.name}, {frames} frames at 1280x720")
    e2e: list[dict[str, float]] = []
    copies: list[float] = []
    for i in range(rounds):
        e2e.append(end_to_end(src, work, embedder))
        copies.append(plain(src, frames))
        log(f"  round {i + 1}: total {e2e[-1]['total_s']:.2f} s (analysis "
            f"{e2e[-1]['analysis_s']:.2f}, drive {e2e[-1]['drive_s']:.2f}, render "
            f"{e2e[-1]['render_s']:.2f}); plain decode+encode {copies[-1]:.2f} s")
    med = {k: statistics.median(r[k] for r in e2e) for k in e2e[0]}
    plain_s = statistics.median(copies)
    src.unlink(missing_ok=True)
    return {
        "frames": frames, "width": 1280, "height": 720, "rounds": rounds,
        "crf": CRF, "preset": PRESET,
        "analysis_s": med["analysis_s"], "drive_s": med["drive_s"], "render_s": med["render_s"],
        "total_s": med["total_s"],
        "fps_end_to_end": frames / med["total_s"],
        "fps_analysis": frames / med["analysis_s"],
        "fps_render": frames / med["render_s"],
        "fps_plain": frames / plain_s, "plain_s": plain_s,
        "render_over_plain": med["render_s"] / plain_s,
        "all_rounds": e2e, "plain_rounds": copies,
    }


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one swap pair, one speed round")
    parser.add_argument("--long", action="store_true", help="also a 10x longer 720p clip")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--preview", type=Path, default=PREVIEW)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    machine = Machine()
    embedder = DlibEmbedder()
    pairs = [(CLIPS[i], CLIPS[(i + 1) % len(CLIPS)]) for i in range(1 if args.quick else 5)]

    with tempfile.TemporaryDirectory(prefix="bench_lipsync_") as tmp:
        work = Path(tmp)
        ref = reference(CLIPS)
        ref_mean = statistics.fmean(r["r"] for r in ref.values())
        swaps = [swap(a, b, ref, embedder, work) for a, b in pairs]
        for row in swaps:
            row["pass"] = verdicts(row, ref_mean)
        a, b = pairs[0]
        args.preview.parent.mkdir(parents=True, exist_ok=True)
        va = probe(clip(a)).require_video()
        dub = prepare_dub(load_audio(clip(b)), Fraction(va.frame_count) / va.frame_rate)
        preview(clip(a), work / swaps[0]["output"], dub.mix,
                (f"source {a}", f"lip-synced to {b} (embedded)"), args.preview)
        log(f"wrote {args.preview}")
        speeds = {"x1": speed(1, 1 if args.quick else 3, work, embedder)}
        if args.long:
            speeds["x10"] = speed(10, 1, work, embedder)

    lines = ["| reference: GRID clip with its own audio | r | lag | closed (p5) | p95 opening |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in ref.items():
        lines.append(f"| {name} | {r['r']:.3f} | {r['lag']:+d} | {r['closed']:.3f} | "
                     f"{r['p95']:.3f} |")
    lines.append(f"| **mean** | **{ref_mean:.3f}** | | | |")
    lines += ["", "| swap: A video ← B audio | r(out,B) @lag | r(out,A) @lag | r(src A,B) | "
              "r(audio A, audio B) | speech frames only: r(out,B) / r(out,A) | "
              "out vs commanded: r / source leak | "
              "bilabials closed | silence opening out / commanded / A closed | "
              "identity mean / worst | "
              "PSNR outside mask (plain enc.) | jitter ratio whole / lower | output p5–p95 "
              "(commanded / source p95) | verdict |",
              "|" + " --- |" * 14]
    for row in swaps:
        v = row["pass"]
        failed = [k for k, ok in v.items() if not ok]
        lines.append(
            f"| {row['video']} ← {row['audio']} | {fmt(row['r_B'], 3)} @{row['lag_B']:+d} | "
            f"{fmt(row['r_A'], 3)} @{row['lag_A']:+d} | {fmt(row['r_source_vs_B'], 3)} | "
            f"{fmt(row['r_audio_A_vs_B'], 3)} | {fmt(row['r_B_speech_only'], 3)} / "
            f"{fmt(row['r_A_speech_only'], 3)} ({row['speech_frames']} fr) | "
            f"{fmt(row['r_output_vs_target'], 3)} / {fmt(row['source_leak'], 2)} | "
            f"{row['bilabials_closed']}/{row['bilabials_total']} | "
            f"{fmt(row['silence_opening'], 3)} / {fmt(row['silence_target_opening'], 3)} / "
            f"{row['closed_A']:.3f} | "
            f"{fmt(row['identity_mean'], 3)} / {fmt(row['identity_worst'], 3)} | "
            f"{fmt(row['psnr_outside_mask'])} ({fmt(row['psnr_plain_encode'])}) dB | "
            f"{fmt(row['jitter_ratio'])} / {fmt(row['jitter_ratio_lower_face'])} | "
            f"{row['output_opening_p5']:.3f}–{row['output_opening_p95']:.3f} "
            f"({row['target_opening_p95']:.3f} / {row['source_opening_p95']:.3f}) | "
            f"{'PASS' if not failed else 'FAIL: ' + ', '.join(failed)} |")

    def overall(key: str) -> str:
        return "PASS" if all(r["pass"][key] for r in swaps) else "FAIL"

    n_b = sum(r["bilabials_total"] for r in swaps)
    c_b = sum(r["bilabials_closed"] for r in swaps)
    mean = statistics.fmean
    lines += ["", "| target | figure | verdict |", "| --- | --- | --- |",
              f"| r(out,B) ≥ {SYNC_KEEP} × ref = {SYNC_KEEP * ref_mean:.3f} | mean "
              f"{mean(r['r_B'] for r in swaps):.3f}, min {min(r['r_B'] for r in swaps):.3f} | "
              f"{overall('sync_B')} |",
              f"| r(out,A) < {SYNC_DROP} × ref = {SYNC_DROP * ref_mean:.3f} | mean "
              f"{mean(r['r_A'] for r in swaps):.3f}, max {max(r['r_A'] for r in swaps):.3f} | "
              f"{overall('sync_A')} |",
              f"| every bilabial closed (≤ A closed p{CLOSED_PERCENTILE:g} + {CLOSED_MARGIN}) | "
              f"{c_b}/{n_b} ({(c_b / n_b if n_b else math.nan):.0%}) | {overall('bilabials')} |",
              f"| silence opening ≤ A closed + {CLOSED_MARGIN} | mean "
              f"{mean(r['silence_opening'] for r in swaps):.3f} vs closed "
              f"{mean(r['closed_A'] for r in swaps):.3f} | {overall('silence')} |",
              f"| identity (dlib) worst ≤ {IDENTITY_MAX} | mean "
              f"{mean(r['identity_mean'] for r in swaps):.3f}, worst "
              f"{max(r['identity_worst'] for r in swaps):.3f} | {overall('identity')} |",
              f"| PSNR outside lower-face mask (+{DEFAULT_DILATE_FRAC} iod) ≥ {PSNR_MIN} dB | "
              f"min {min(r['psnr_outside_mask'] for r in swaps):.2f} dB (plain encode min "
              f"{min(r['psnr_plain_encode'] for r in swaps):.2f}) | {overall('psnr')} |",
              f"| jitter ratio output/source (whole / lower face) | mean "
              f"{mean(r['jitter_ratio'] for r in swaps):.2f} / "
              f"{mean(r['jitter_ratio_lower_face'] for r in swaps):.2f} | (reported) |"]
    lines += ["", f"| speed at 1280×720 (H.264 CRF {CRF}, preset {PRESET}) | frames | "
              "end-to-end fps | analysis / drive (alongside) / render s | render fps | "
              "plain decode+encode fps | render / plain | ≥ 25 fps |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, s in speeds.items():
        lines.append(
            f"| {key} ({s['rounds']} round{'s' if s['rounds'] > 1 else ''}, median) | "
            f"{s['frames']} | {s['fps_end_to_end']:.1f} | {s['analysis_s']:.2f} / "
            f"{s['drive_s']:.2f} / {s['render_s']:.2f} | {s['fps_render']:.1f} | "
            f"{s['fps_plain']:.1f} | {s['render_over_plain']:.2f} | "
            f"{'PASS' if s['fps_end_to_end'] >= FPS_MIN else 'FAIL'} |")
    load_end = os.getloadavg()
    lines.append(f"\nload average start {load_start[0]:.2f}, end {load_end[0]:.2f} "
                 f"({os.cpu_count()} CPUs, shared)")
    print("\n".join(lines))
    print()
    against_floor = report([Row(f"lip-sync end to end, 720p {s['frames']} frames",
                                s["fps_end_to_end"], "fps", floor=s["fps_plain"],
                                target_ratio=TARGET_RATIO, rate=True,
                                note=f"x264 {PRESET} CRF {CRF}")
                            for s in speeds.values()], machine)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "meta": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "opencv": cv2.__version__, "backend": "embedded-mesh",
                 "crf": CRF, "preset": PRESET, "closed_margin": CLOSED_MARGIN,
                 "closed_percentile": CLOSED_PERCENTILE, "dilate_frac": DEFAULT_DILATE_FRAC,
                 "loadavg_start": load_start, "loadavg_end": load_end,
                 "quick": args.quick, "long": args.long},
        "against_floor": against_floor,
        "reference": ref, "reference_mean": ref_mean, "swaps": swaps, "speed": speeds,
        "table": lines,
    }, indent=1, default=float))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
