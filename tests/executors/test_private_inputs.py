"""A worker killed mid-task leaves its private input copies behind; the next task sweeps
them (studio.executors.worker.sweep_private_inputs), and never a live worker's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from studio.executors.worker import PRIVATE_PREFIX, sweep_private_inputs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_copies_of_a_killed_worker_are_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{PRIVATE_PREFIX}{_dead_pid()}-abc123"
    live = tmp_path / f"{PRIVATE_PREFIX}{os.getpid()}-def456"
    for folder in (dead, live):
        (folder / "source").mkdir(parents=True)
        (folder / "source" / "shot.mp4").write_bytes(b"a copy of the shot")
    other = tmp_path / "studio-inputs-notapid-x"  # not ours: left alone
    other.mkdir()
    decoy = tmp_path / f"{PRIVATE_PREFIX}{_dead_pid()}-link"
    decoy.symlink_to(live)  # a link is never followed or removed

    assert sweep_private_inputs(tmp_path) == [dead]
    assert not dead.exists()
    assert (live / "source" / "shot.mp4").read_bytes() == b"a copy of the shot"
    assert other.is_dir() and decoy.is_symlink()
