"""CLI start-up: commands that need no media stack do not load it.

A wall-clock limit would be flaky on a shared machine; what makes start-up slow is which
modules load, so that is what is asserted (the figures are in bench/provenance.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "mediapipe", "gradio", "diffusers", "av", "c2pa", "onnxruntime", "cv2",
         "scipy", "dlib", "pipelines.media", "pipelines.faces", "pipelines.lipsync",
         "pipelines.reenact", "studio.identity", "studio.render.job")

#: The consent registry and what it stands on (SQLAlchemy, alembic, the pydantic documents,
#: numpy for face templates): the commands that use them import them; no --help needs them.
REGISTRY = ("sqlalchemy", "alembic", "consent.registry", "consent.documents", "consent.store",
            "numpy", "studio.services.context", "studio.accounts.service")

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

# Every command's and every group's --help in one process: what any of them loads stays
# in sys.modules, so an empty answer covers them all.
EVERY_HELP = """
import json, sys
import typer.main
from studio.cli import app

def paths(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {{}}).items()):
        yield from paths(sub, [*path, name])

seen = []
for path in paths(typer.main.get_command(app), []):
    try:
        app([*path, "--help"], prog_name="studio")
    except SystemExit:
        pass
    seen.append(" ".join(path))
heavy = {heavy!r}
print(json.dumps({{"helps": seen, "loaded": sorted(m for m in heavy if m in sys.modules)}}))
"""


def _run(code: str, *argv: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _loaded_after(*argv: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    loaded: list[str] = json.loads(_run(PROBE.format(heavy=heavy), *argv))
    return loaded


@pytest.mark.parametrize("argv", [("--help",), ("consent", "--help"), ("ledger", "--help"),
                                  ("render", "--help"), ("verify", "--help")])
def test_help_loads_no_media_stack(argv: tuple[str, ...]) -> None:
    assert _loaded_after(*argv) == []


@pytest.mark.parametrize("argv", [("--help",), ("consent", "--help"), ("ledger", "--help")])
def test_help_loads_no_registry(argv: tuple[str, ...]) -> None:
    """The goal of issue 14 (start-up ≤ 1 s): these three are what people type first."""
    assert _loaded_after(*argv, heavy=REGISTRY) == []


def test_no_help_of_any_command_loads_the_registry_or_the_media_stack() -> None:
    # typer resolves every option's type to build a --help, so an option typed by an enum
    # from a heavy module would load it here (consent.enums and studio.roles are light).
    answer = json.loads(_run(EVERY_HELP.format(heavy=HEAVY + REGISTRY)))
    assert {"", "consent", "consent register", "ledger verify", "users add",
            "render lipsync", "reel render", "verify"} <= set(answer["helps"])
    assert answer["loaded"] == []


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


def test_verify_starts_its_watermark_read_before_the_command_line_loads(
        tmp_path: Path) -> None:
    """``studio verify FILE`` (the entry point, ``studio.cli.main``) starts the watermark read
    before typer and the command modules load, and the command takes that read over: one
    read, not two. Any other shape of command line starts nothing."""
    import os
    import time

    import studio.services.verify as service
    from studio.cli import _prestart_verify

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video")
    other = tmp_path / "other.mp4"
    other.write_bytes(b"neither")
    for argv in (["verify", "--no-watermark", str(clip)], ["verify", "--help"],
                 ["verify", str(clip), str(other)], ["render", str(clip)],
                 ["verify", "--bogus", str(clip)], ["verify", str(tmp_path / "missing.mp4")],
                 []):
        _prestart_verify(argv)
        assert service._PRESTARTED == {}, argv
    try:
        _prestart_verify(["verify", "--json", str(clip)])
        (early,) = [f for _, f in service._PRESTARTED.values()]
        assert service.start_watermark_read(Path(str(clip))) is early  # taken over
        assert service._PRESTARTED == {}
        assert service.start_watermark_read(clip) is not early  # a second verify reads again
        # The read's errors come out where verify takes it, as before.
        with pytest.raises(ValueError, match="not a readable media file"):
            early.result(timeout=120)

        _prestart_verify(["verify", str(clip)])
        (early,) = [f for _, f in service._PRESTARTED.values()]
        clip.write_bytes(b"changed since")  # another file by now: not the read started
        stat = clip.stat()
        os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert service.start_watermark_read(clip) is not early

        # Rewritten in place, same size, its mtime set back: still not the read started.
        _prestart_verify(["verify", str(clip)])
        (early,) = [f for _, f in service._PRESTARTED.values()]
        before = clip.stat()
        time.sleep(0.05)
        clip.write_bytes(b"CHANGED SINCE")
        os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert service.start_watermark_read(clip) is not early
    finally:
        service._PRESTARTED.clear()
