"""CLI start-up: commands that need no media stack do not load it.

A wall-clock limit would be flaky on a shared machine; what makes start-up slow is which
modules load, so that is what is asserted (the figures are in bench/provenance.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "mediapipe", "gradio", "diffusers", "av", "c2pa", "onnxruntime", "cv2",
         "scipy", "dlib", "pipelines.media", "pipelines.faces", "pipelines.lipsync",
         "pipelines.reenact", "studio.identity", "studio.render.job")

PROBE = """
import json, sys
from studio.cli import app
try:
    app(sys.argv[1:], prog_name="studio")
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _loaded_after(*argv: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, timeout=120, check=False)
    last = done.stdout.strip().splitlines()[-1]
    loaded: list[str] = json.loads(last)
    return loaded


@pytest.mark.parametrize("argv", [("--help",), ("consent", "--help"), ("ledger", "--help"),
                                  ("render", "--help"), ("verify", "--help")])
def test_help_loads_no_media_stack(argv: tuple[str, ...]) -> None:
    assert _loaded_after(*argv) == []


def test_verify_loads_no_face_or_render_stack(tmp_path: object) -> None:
    # verify needs av, c2pa and onnxruntime, but not torch, mediapipe or the pipelines.
    probe = ("import sys, json; import studio.cli, studio.provenance.verify, "
             "studio.provenance.identity; print(json.dumps(sorted(m for m in "
             f"{HEAVY!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & {"torch", "mediapipe", "gradio", "diffusers", "scipy", "dlib",
                         "pipelines.faces", "pipelines.media", "pipelines.lipsync",
                         "pipelines.reenact", "studio.identity", "studio.render.job"}, loaded
