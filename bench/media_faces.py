"""Media and faces benchmark (issue 3): the floor every pipeline stands on.

Runs ``bench/media_io.py`` (decode + encode fps of a 720p H.264 clip, peak RSS of a 10 s and
a 100 s transcode) and ``bench/faces.py`` (face-tracking fps at 720p, embedding and
enrolment time), then measures peak RSS of ``studio.identity``'s streaming face scan on a
10 s and a 100 s 720p clip, each in a fresh process: the two must be within 10 %.

    .venv/bin/python bench/media_faces.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench import faces as faces_bench  # noqa: E402
from bench import media_io  # noqa: E402

OUT = ROOT / "bench" / "out" / "media_faces.json"


def scan_child(path: str) -> None:
    """In a fresh process: stream-scan a clip for faces; print frames, time and VmHWM."""
    from pipelines.faces.embedding import DlibEmbedder
    from pipelines.faces.scan import scan_video
    from pipelines.media import VideoReader

    start = time.perf_counter()
    with VideoReader(path) as reader:
        result = scan_video((f.rgb for f in reader), DlibEmbedder())
    print(json.dumps({"frames": result.frame_count, "tracks": len(result.tracks),
                      "seconds": time.perf_counter() - start,
                      "peak_rss_kb": media_io._status_kb("VmHWM")}))


def scan_rss(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--scan-child", str(path)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s and 40 s clips, one round")
    parser.add_argument("--scan-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan_child:
        scan_child(args.scan_child)
        return 0
    flags = ["--quick"] if args.quick else []
    status = media_io.main(flags) | faces_bench.main(flags)
    short = 4 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-media-faces-") as tmp:
        small = media_io.make_source(Path(tmp) / "short.mp4", short)
        long = media_io.concat_copies(small, Path(tmp) / "long.mp4", 10)
        a, b = scan_rss(small), scan_rss(long)
    ratio = b["peak_rss_kb"] / a["peak_rss_kb"]
    rows = [
        (f"face scan {short} s 720p: fps", f"{a['frames'] / a['seconds']:.1f}"),
        (f"face scan {short * 10} s 720p: fps", f"{b['frames'] / b['seconds']:.1f}"),
        (f"face scan peak RSS, {short} s clip", f"{a['peak_rss_kb'] / 1024:.1f} MB"),
        (f"face scan peak RSS, {short * 10} s clip", f"{b['peak_rss_kb'] / 1024:.1f} MB"),
        ("long / short peak RSS (target <= 1.10)",
         f"{ratio:.3f} {'PASS' if ratio <= 1.10 else 'FAIL'}"),
    ]
    print("\nstreaming face scan (studio.identity path)")
    media_io.table(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"short": a, "long": b, "ratio": ratio}, indent=2))
    return status | (0 if ratio <= 1.10 else 1)


if __name__ == "__main__":
    raise SystemExit(main())
