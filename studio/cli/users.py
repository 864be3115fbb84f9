"""``studio users …``: the accounts that sign in to the studio UI (admin's tool).

Passwords are hashed with argon2id; a generated password is printed once. To set a known
password, give it in a file (``--password-file``) or in ``$STUDIO_USER_PASSWORD`` — never on
the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from studio.cli.common import JsonOpt, _emit, _errors, _registry, out
from studio.roles import Role

# The accounts service (SQLAlchemy, alembic, argon2) is imported when a command runs, so that
# `studio --help` stays fast (tests/cli/test_cli_startup.py).
if TYPE_CHECKING:
    from studio.accounts import Accounts

users_app = typer.Typer(help="Studio UI accounts: add, passwd, disable, enable, list.",
                        no_args_is_help=True)

PasswordFileOpt = Annotated[Path | None, typer.Option(
    "--password-file", help="File holding the password (else $STUDIO_USER_PASSWORD, else a "
    "generated one is printed once).")]


def _accounts() -> Accounts:
    from studio.accounts import Accounts

    return Accounts.open(_registry().store)


def _given_password(password_file: Path | None) -> str | None:
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").rstrip("\r\n")
    return os.environ.get("STUDIO_USER_PASSWORD") or None


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower-case letters, digits, "
                                            "'.', '_', '-').")],
    role: Annotated[Role, typer.Option("--role", help="consent_officer, operator, auditor or "
                                       "admin.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (for the ledger).")
                    ] = None,
    password_file: PasswordFileOpt = None,
    must_change: Annotated[bool, typer.Option("--must-change/--no-must-change",
                                              help="Flag the password as temporary.")
                           ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; prints the generated password once unless one is given."""
    with _errors(as_json):
        given = _given_password(password_file)
        user, password = _accounts().add(username, role, password=given, display_name=name,
                                         must_change_password=must_change)
    shown = None if given else password
    _emit(as_json, {"ok": True, "user": user.to_json(), "password": shown},
          lambda: out.print(f"added {user.username} ({user.role.label})"
                            + (f"\none-time password: {shown}" if shown else ""),
                            highlight=False))


@users_app.command("passwd")
def users_passwd(
    username: str,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a new password (generated and printed once unless one is given)."""
    with _errors(as_json):
        given = _given_password(password_file)
        password = _accounts().set_password(username, given, must_change_password=not given)
    shown = None if given else password
    _emit(as_json, {"ok": True, "username": username, "password": shown},
          lambda: out.print(f"password of {username} changed"
                            + (f"\none-time password: {shown}" if shown else ""),
                            highlight=False))


@users_app.command("disable")
def users_disable(username: str, as_json: JsonOpt = False) -> None:
    """Disable an account: refused at its next click, and at sign-in."""
    with _errors(as_json):
        user = _accounts().set_disabled(username, True)
    _emit(as_json, {"ok": True, "user": user.to_json()},
          lambda: out.print(f"{user.username} disabled", highlight=False))


@users_app.command("enable")
def users_enable(username: str, as_json: JsonOpt = False) -> None:
    """Enable a disabled account again."""
    with _errors(as_json):
        user = _accounts().set_disabled(username, False)
    _emit(as_json, {"ok": True, "user": user.to_json()},
          lambda: out.print(f"{user.username} enabled", highlight=False))


@users_app.command("role")
def users_role(username: str, role: Annotated[Role, typer.Argument()],
               as_json: JsonOpt = False) -> None:
    """Change an account's role (takes effect at its next click)."""
    with _errors(as_json):
        user = _accounts().set_role(username, role)
    _emit(as_json, {"ok": True, "user": user.to_json()},
          lambda: out.print(f"{user.username} is now {user.role.label}", highlight=False))


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """Every account, its role and state."""
    with _errors(as_json):
        users = _accounts().list()

    def human() -> None:
        table = Table("user", "name", "role", "state", "last sign-in")
        for u in users:
            table.add_row(u.username, u.display_name, u.role.label,
                          "disabled" if u.disabled else "active",
                          u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "")
        out.print(table)

    _emit(as_json, {"ok": True, "users": [u.to_json() for u in users]}, human)


def ensure_first_admin(accounts: Accounts) -> tuple[str, str] | None:
    """Create the first admin when there is no account at all; returns (name, password)."""
    if accounts.count():
        return None
    user, password = accounts.add("admin", Role.ADMIN, display_name="Studio admin",
                                  must_change_password=True)
    return user.username, password
