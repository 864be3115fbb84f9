"""Run the demo render and kill this process with SIGKILL at one named point of it.

``python -m tests.render.crash_render DATA_DIR POINT OUTPUT_NAME [SHOT DUB]``: the point is a stage
("ingest", …, "publish") or one of the job's inner points ("signed", "stored", "linked" —
inside the publication's transaction — and "published"). Used by tests/render/test_publish.py
to check that a crash anywhere leaves nothing that verifies as published.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from studio.bootstrap import open_registry
from studio.render import RenderJob, RenderRequest
from studio.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"


def main(data: str, point: str, output: str, shot: str = "", dub: str = "") -> int:
    settings = Settings.from_env(Path(data))
    registry = open_registry(settings)
    request = RenderRequest(
        operation="lipsync", source=Path(shot) if shot else GRID / "bbaf2n.mpg",
        project_id="demo-dub", language="fr", source_language="en", territory="FR",
        operator="Test Operator", dub=Path(dub) if dub else GRID / "brbk7n.mpg",
        output_name=output)

    def between(at: str) -> None:
        if at == point:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    RenderJob(request, settings, registry, between=between).run()
    return 0  # the point was never reached


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
