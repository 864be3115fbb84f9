"""Media I/O benchmark: the decode + encode floor of every pipeline, and memory vs length.

Run from the repository root::

    .venv/bin/python bench/media_io.py            # 10 s and 100 s clips (~4 min on 2 cores)
    .venv/bin/python bench/media_io.py --quick    # 4 s and 40 s clips (smoke run)

Measures (docs/QUALITY.md, "Speed, memory, scale"):

1. Decode-only and decode + encode frames per second on a 10 s 1280x720 H.264 clip (25 fps,
   GRID frames upscaled, AAC stereo), through ``VideoReader`` -> ``VideoWriter`` exactly as a
   pipeline uses them: RGB frames in Python, the source's audio remuxed. H.264 at the
   writer's defaults (libx264 CRF 18, preset medium) and ProRes 422 HQ. No pipeline can be
   faster than this floor.
2. Peak RSS of the same decode + encode (H.264 defaults) on the 10 s clip and on a 100 s clip
   (the 10 s clip's packets remuxed ten times), each in a fresh process (peak = VmHWM) so
   that the figure is that run's own. Target: within 10 % of each other.

Progress goes to stderr, the table to stdout, the figures as JSON to
``bench/out/media_io.json``.
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
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import av

from bench._floor import Machine, Row, media_floor, report
from pipelines.media import SourceAudio, VideoReader, VideoWriter, probe
from pipelines.media.writer import Codec
from tests.media import mediagen as gen

OUT = ROOT / "bench" / "out" / "media_io.json"
SIZE = (1280, 720)
RATE = 25
#: The pipelines' reader and writer (RGB frames in Python, audio remuxed) within 1.25x of a
#: plain PyAV decode -> RGB -> x264 at the same settings, timed in the same run.
TARGET_RATIO = 1.25
_t0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _t0:7.1f}s] {message}", file=sys.stderr, flush=True)


def make_source(path: Path, seconds: int) -> Path:
    """``seconds`` of GRID frames upscaled to 720p, H.264 (veryfast, CRF 20) with AAC."""
    frames = gen.grid_frames(seconds * RATE, size=SIZE)
    return gen.write_video(path, frames, rate=RATE, options={"preset": "veryfast", "crf": "20"},
                           audio=(gen.tone(440, seconds, 48000, 2), 48000))


def concat_copies(src: Path, dst: Path, copies: int) -> Path:
    """``copies`` x ``src`` back to back by remuxing its packets (no re-encoding)."""
    info = probe(src)
    length = info.require_video().duration
    last_dts: dict[int, int] = {}
    with av.open(str(dst), "w") as out:
        with av.open(str(src)) as first:
            streams = {s.index: out.add_stream_from_template(s)
                       for s in first.streams if s.type in ("video", "audio")}
        for k in range(copies):
            with av.open(str(src)) as container:
                for packet in container.demux(*[container.streams[i] for i in streams]):
                    if packet.size == 0 or packet.time_base is None or packet.dts is None:
                        continue
                    shift = round(k * length / packet.time_base)
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    index = packet.stream_index
                    if packet.dts <= last_dts.get(index, -(2**62)):
                        continue  # audio that overhangs the video of the previous copy
                    last_dts[index] = packet.dts
                    packet.stream = streams[index]
                    out.mux(packet)
    return dst


def transcode(src: Path, dst: Path, codec: Codec, *, write: bool = True) -> tuple[int, float]:
    """(frames, seconds) for decode (+ encode) of ``src`` through the public API."""
    start = time.perf_counter()
    with VideoReader(src) as reader:
        if not write:
            frames = sum(1 for _ in reader)
            return frames, time.perf_counter() - start
        with VideoWriter(dst, reader.video, codec=codec, audio=SourceAudio(src)) as writer:
            for frame in reader:
                writer.write(frame)
        frames = writer.frames_written
    return frames, time.perf_counter() - start


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in kB (VmRSS: now, VmHWM: peak of this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(src: str, dst: str) -> None:
    """Run in a fresh process: decode + encode, then report peak RSS as JSON on stdout.

    The peak is VmHWM, the high-water mark of this process's own memory. Not ``ru_maxrss``:
    Linux carries the parent's high-water mark into a forked-and-exec'd child, so a child of
    this (large) benchmark would report the benchmark's figure.
    """
    before = _status_kb("VmRSS")
    frames, seconds = transcode(Path(src), Path(dst), "h264")
    print(json.dumps({"frames": frames, "seconds": seconds, "peak_rss_kb": _status_kb("VmHWM"),
                      "rss_before_kb": before}))


def peak_rss(src: Path, dst: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(src), str(dst)],
        check=True, capture_output=True, text=True, cwd=ROOT)
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def table(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value")
    print(f"| {'-' * width} | -----")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s and 40 s clips")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    machine = Machine()
    short_s = 4 if args.quick else 10
    copies = 10
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "pyav": av.__version__,
                    "ffmpeg": av.ffmpeg_version_info, "loadavg_start": os.getloadavg()},
        "clip": {"size": list(SIZE), "fps": RATE, "short_s": short_s,
                 "long_s": short_s * copies},
    }
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp_name:
        tmp = Path(tmp_name)
        log(f"making a {short_s} s 720p H.264 clip from GRID frames")
        short = make_source(tmp / "short.mp4", short_s)
        log(f"remuxing it {copies} times into a {short_s * copies} s clip")
        long = concat_copies(short, tmp / "long.mp4", copies)
        assert probe(long).require_video().frame_count == short_s * RATE * copies

        speed: dict[str, dict[str, float]] = {}
        for name, codec, write in (("decode", "h264", False), ("decode+encode h264", "h264",
                                   True), ("decode+encode prores", "prores", True)):
            suffix = ".mov" if codec == "prores" else ".mp4"
            log(f"timing {name}")
            frames, seconds = transcode(short, tmp / f"out{suffix}", codec, write=write)
            speed[name] = {"frames": frames, "seconds": seconds, "fps": frames / seconds}
        log("timing the floor: plain PyAV decode -> RGB -> x264 (CRF 18, medium), no audio")
        floor = media_floor(short, frames=int(speed["decode+encode h264"]["frames"]), crf=18,
                            preset="medium")
        speed["floor h264"] = floor
        results["speed"] = speed

        memory: dict[str, dict[str, Any]] = {}
        for label, src in (("short", short), ("long", long)):
            log(f"peak RSS of decode+encode, {label} clip (fresh process)")
            memory[label] = peak_rss(src, tmp / f"rss-{label}.mp4")
        ratio = memory["long"]["peak_rss_kb"] / memory["short"]["peak_rss_kb"]
        results["memory"] = {**memory, "long_over_short": ratio,
                             "within_10_percent": abs(ratio - 1) <= 0.10}

    rows = [
        (f"decode 720p H.264 -> RGB ({short_s} s)",
         f"{speed['decode']['fps']:.1f} fps ({speed['decode']['fps'] / RATE:.2f}x real time)"),
        ("decode + encode H.264 (CRF 18, medium) + AAC remux",
         f"{speed['decode+encode h264']['fps']:.1f} fps "
         f"({speed['decode+encode h264']['fps'] / RATE:.2f}x real time)"),
        ("decode + encode ProRes 422 HQ + AAC remux",
         f"{speed['decode+encode prores']['fps']:.1f} fps "
         f"({speed['decode+encode prores']['fps'] / RATE:.2f}x real time)"),
        (f"peak RSS, decode + encode H.264, {short_s} s clip",
         f"{memory['short']['peak_rss_kb'] / 1024:.1f} MB "
         f"(+{(memory['short']['peak_rss_kb'] - memory['short']['rss_before_kb']) / 1024:.1f}"
         " MB over imports)"),
        (f"peak RSS, decode + encode H.264, {short_s * copies} s clip",
         f"{memory['long']['peak_rss_kb'] / 1024:.1f} MB "
         f"(+{(memory['long']['peak_rss_kb'] - memory['long']['rss_before_kb']) / 1024:.1f}"
         " MB over imports)"),
        ("long / short peak RSS",
         f"{ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'NOT within'} 10 %)"),
    ]
    print(f"media I/O benchmark ({'quick' if args.quick else 'full'}; "
          f"{os.cpu_count()} CPUs, PyAV {av.__version__})")
    table(rows)
    print()
    results["against_floor"] = report([Row(
        "VideoReader -> VideoWriter H.264 + AAC remux", speed["decode+encode h264"]["fps"],
        "fps", floor=floor["fps"], target_ratio=TARGET_RATIO, rate=True,
        note=f"{short_s} s 720p, CRF 18 medium")], machine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
