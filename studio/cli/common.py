"""What every ``studio`` command shares: settings, exit codes, errors as messages, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from studio.errors import EXIT_CONFLICT, EXIT_DENY, EXIT_NOT_FOUND, EXIT_REJECTED, EXIT_USAGE
from studio.settings import Settings, SettingsError

# The registry (SQLAlchemy, pydantic) and the error table are imported where they are used:
# `studio --help` and every command's --help load neither (tests/cli/test_cli_startup.py).
if TYPE_CHECKING:
    from consent.registry import Registry
    from studio.services.context import AppContext

__all__ = ["EXIT_CONFLICT", "EXIT_DENY", "EXIT_NOT_FOUND", "EXIT_REJECTED", "EXIT_USAGE",
           "JsonOpt", "State", "err", "out"]

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
    from studio.bootstrap import open_registry

    return open_registry(_settings())


def _context() -> AppContext:
    """The data folder's settings and registry, for a use case (studio.services)."""
    from studio.services.context import AppContext

    return AppContext.open(_settings())


def _fail(code: int, message: str, as_json: bool, kind: str = "error") -> NoReturn:
    if as_json:
        out.print_json(json.dumps({"ok": False, "error": kind, "message": message}))
    else:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Errors as messages and exit codes, by the one table (studio.services.errors); never a
    traceback for bad input. An error no family claims is a bug and keeps its traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        from studio.services.errors import translate

        said = translate(exc)
        if said is None:
            raise
        _fail(said.exit_code, said.message, as_json, said.kind)


def _emit(as_json: bool, value: Any, human: Callable[[], None]) -> None:
    if as_json:
        out.print_json(json.dumps(value, default=str))
    else:
        human()


