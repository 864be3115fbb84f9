"""What every ``studio`` command shares: settings, exit codes, errors as messages, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from consent.errors import ConsentError, DuplicateError, NotFoundError
from consent.merkle import MerkleError
from consent.registry import Registry
from studio.bootstrap import open_registry
from studio.settings import Settings, SettingsError

EXIT_DENY, EXIT_USAGE, EXIT_REJECTED, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 2, 3, 4, 5

out = Console()
# Errors are never wrapped: a path or an id broken across lines cannot be copied.
err = Console(stderr=True, soft_wrap=True)


class State:
    """Options of the root command (``--data``), read by every subcommand."""

    data_dir: Path | None = None


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _settings() -> Settings:
    try:
        return Settings.from_env(State.data_dir)
    except SettingsError as exc:
        # Read before any command-specific option, so there is no --json to honour yet.
        _fail(EXIT_USAGE, str(exc), False, "settings")


def _registry() -> Registry:
    return open_registry(_settings())


def _fail(code: int, message: str, as_json: bool, kind: str = "error") -> NoReturn:
    if as_json:
        out.print_json(json.dumps({"ok": False, "error": kind, "message": message}))
    else:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Map registry errors to messages and exit codes; never a traceback for bad input."""
    try:
        yield
    except NotFoundError as exc:
        _fail(EXIT_NOT_FOUND, exc.message, as_json, exc.code)
    except DuplicateError as exc:
        _fail(EXIT_CONFLICT, exc.message, as_json, exc.code)
    except ConsentError as exc:
        _fail(EXIT_REJECTED, exc.message, as_json, exc.code)
    except (MerkleError, OSError, ImportError) as exc:
        # OSError: unreadable input files, or a configured model file that is missing
        # (the message names it and its folder); ImportError: an optional backend's package.
        _fail(EXIT_REJECTED, str(exc), as_json, type(exc).__name__)


def _emit(as_json: bool, value: Any, human: Callable[[], None]) -> None:
    if as_json:
        out.print_json(json.dumps(value, default=str))
    else:
        human()


