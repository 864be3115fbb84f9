"""Motion files issued by the registry: what sealing and checking cost.

Run from the repository root::

    .venv/bin/python bench/motion_seal.py

Against a data folder seeded like ``make run`` (demo performer, grant, enrolled face), the
demo performer's GRID clip bbaf2n is analysed once; then ``issue`` (match the embeddings,
the gate's ledgered performance_driving decision, the registry's Ed25519 seal, the write)
and ``check`` (read the file, the seal's signature and payload digest, the ledger leaf, the
decision record and an inclusion proof against a signed checkpoint, the grants now) are
timed, each the median of several runs; and the sizes of the file and of its seal. A render
with ``--motion`` pays ``check`` once. The figures also go to ``bench/out/motion_seal.json``.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import json
import statistics
import tempfile
import time

from consent.fields import Channel
from pipelines.faces.analysis import analyse_shot
from pipelines.reenact import extract_motion, read_motion_file
from studio.bootstrap import SeedReport, open_registry, seed_demo
from studio.identity import embedder_for, sha256_file
from studio.motion_seals import issue_motion_file, open_sealed_motion
from studio.settings import Settings

SHOT = ROOT / "assets" / "media" / "grid" / "bbaf2n.mpg"
OUT = ROOT / "bench" / "out" / "motion_seal.json"
ROUNDS = 10


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-motion-seal-") as tmp:
        work = Path(tmp)
        settings = Settings.from_env(work / "studio-data")
        registry = open_registry(settings)
        seed_demo(registry, SeedReport())
        embedder = embedder_for(settings)
        motion = extract_motion(analyse_shot(SHOT, work / "analysis", embedder),
                                neutral_frame="rest", embedder=embedder.name,
                                video_sha256=sha256_file(SHOT))
        issue_s, check_s = [], []
        path = None
        for i in range(ROUNDS):
            t0 = time.perf_counter()
            issued = issue_motion_file(registry, settings, motion, work / f"take{i}.motion.npz",
                                       project_id="demo-dub", language="en", territory="FR",
                                       channel=Channel.STREAMING, operator="Bench")
            issue_s.append(time.perf_counter() - t0)
            assert issued.path is not None
            path = issued.path
        assert path is not None
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            open_sealed_motion(registry, settings, path, "demo-dub")
            check_s.append(time.perf_counter() - t0)
        registry.store.dispose()
        result = {
            "frames": motion.frame_count,
            "issue_ms_median": round(1000 * statistics.median(issue_s), 1),
            "check_ms_median": round(1000 * statistics.median(check_s), 1),
            "file_bytes": path.stat().st_size,
            "seal_bytes": len(read_motion_file(path).seal),
            "rounds": ROUNDS,
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
