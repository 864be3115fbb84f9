"""Run the demo render and kill this process with SIGKILL at one named point of it.

``python -m tests.render.crash_render DATA_DIR POINT OUTPUT_NAME [SHOT DUB]``: the point is a stage
("ingest", …, "publish") or one of the job's inner points ("signed", "stored", "linked" —
inside the publication's transaction — and "published"). Used by tests/render/test_publish.py
to check that a crash anywhere leaves nothing that verifies as published.

``python -m tests.render.crash_render --serve``: the same, once per line of JSON arguments on
stdin, each in a child forked from this process once the studio is imported; one JSON line
answers each (the child's return code as ``subprocess`` reports it, ``-9`` for SIGKILL, and its
output). Importing the studio is most of a short render's cost (~3 s of ~4.5 s on two
cores); eleven crashes import it once. Each child is still a process of its own that dies
by SIGKILL mid-render and opens its own registry: nothing but imported code is shared.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import traceback
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


def serve() -> int:
    # What a render imports on its way (lazily) is imported here, before any fork. Nothing
    # has run yet: no database connection, model or thread pool of the studio's is inherited.
    import sqlalchemy.dialects.sqlite  # noqa: F401

    import consent.write_guards  # noqa: F401
    import pipelines.lipsync.embedded  # noqa: F401

    for line in sys.stdin:
        args = [str(a) for a in json.loads(line)]
        with tempfile.TemporaryFile() as output:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:  # the child: one crash_render run, its output in ``output``
                code = 1
                try:
                    os.dup2(output.fileno(), 1)
                    os.dup2(output.fileno(), 2)
                    code = main(*args)
                except BaseException:  # reported to the test, then the child exits
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            output.seek(0)
            text = output.read().decode("utf-8", errors="replace")
        answer = {"returncode": os.waitstatus_to_exitcode(status), "output": text}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main(*sys.argv[1:]))
