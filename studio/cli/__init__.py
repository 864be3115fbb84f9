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

from studio.cli.main import app, main

__all__ = ["app", "main"]
