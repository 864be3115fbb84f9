"""Reenactment shares the frame-edit core (``pipelines.edits``, ``pipelines.faces``) with
lip-sync but never imports the lip-sync package: the two pipelines are peers."""

import subprocess
import sys


def test_reenact_imports_no_lipsync_module() -> None:
    code = ("import sys, pipelines.reenact, pipelines.reenact.pipeline, "
            "pipelines.reenact.embedded, pipelines.reenact.motion_file\n"
            "print(sorted(m for m in sys.modules if m.startswith('pipelines.lipsync')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
