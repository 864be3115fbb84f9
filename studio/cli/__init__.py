"""The ``studio`` command line: the same operations as the studio UI, over the application
layer (:mod:`studio.services`).

================  ===============================================================
:mod:`.main`      the root command; set-up (``init``, ``up``), ``consent``, ``ledger``,
                  ``faces``
:mod:`.render`    ``render lipsync|reenact``, ``motion extract``, ``verify``, ``qc``
:mod:`.users`     ``users`` (studio UI accounts)
:mod:`.models`    ``models`` (local checkpoints)
:mod:`.workers`   ``workers`` (the Ray render cluster)
:mod:`.reels`     ``reel`` (reel jobs)
:mod:`.common`    settings, output, and errors as exit codes (the one table)
================  ===============================================================

Commands import the media stack and the consent registry only when they run, so ``studio
--help`` and every command's ``--help`` stay fast (``tests/cli/test_cli_startup.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """The ``studio`` command (``[project.scripts]``)."""
    _prestart_verify(sys.argv[1:])
    from studio.cli.main import main as run

    run()


def _prestart_verify(argv: list[str]) -> None:
    """``studio verify FILE``: start the watermark read (most of a verify, on its own thread)
    before the command line's own imports (typer, rich, the command modules: ~0.4 s), so
    the decoder runs while they load; ``verify`` takes the read over
    (``studio.services.verify.start_watermark_read``). Anything but that exact shape — help,
    ``--no-watermark``, an unknown option, several files — is left to the parser."""
    if not argv or argv[0] != "verify":
        return
    options = [a for a in argv[1:] if a.startswith("-")]
    files = [a for a in argv[1:] if not a.startswith("-")]
    if len(files) != 1 or any(o not in ("--json",) for o in options):
        return
    from studio.services.verify import prestart_watermark_read

    prestart_watermark_read(Path(files[0]))


def __getattr__(name: str) -> Any:
    if name == "app":
        from studio.cli.main import app

        return app
    raise AttributeError(name)
