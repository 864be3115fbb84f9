"""``python -m studio.cli``: the ``studio`` command."""

from studio.cli.main import main

main()
