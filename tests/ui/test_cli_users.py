"""`studio users …` and `studio up --no-ui` (first admin, one-time password printed once)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from consent.store import Store
from studio.accounts import Accounts, Role
from studio.cli import app
from studio.settings import Settings

runner = CliRunner()


def _run(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data", str(settings.data_dir), *args], env=env)
    return result.exit_code, result.output


def _accounts(settings: Settings) -> Accounts:
    return Accounts.open(Store.open(settings.database_url))


def test_up_creates_the_first_admin_once(settings: Settings) -> None:
    code, out = _run(settings, "up", "--no-ui")
    assert code == 0, out
    match = re.search(r"one-time password: (\S+)", out)
    assert match and "created the first studio account: admin" in out
    accounts = _accounts(settings)
    assert accounts.authenticate("admin", match.group(1)).ok
    assert accounts.get("admin").role is Role.ADMIN
    assert accounts.get("admin").must_change_password  # refused everywhere until changed
    code, out = _run(settings, "up", "--no-ui")
    assert code == 0 and "one-time password" not in out
    code, out = _run(settings, "up", "--no-ui", "--json")
    doc = json.loads(out)  # one document: the set-up's actions and the (absent) first admin
    assert code == 0 and doc["ok"] and doc["first_admin"] is None and doc["actions"]


def test_users_add_passwd_disable_list(settings: Settings, tmp_path: pytest.TempPathFactory
                                       ) -> None:
    code, out = _run(settings, "users", "add", "Otto", "--role", "operator", "--name",
                     "Otto Operator")
    assert code == 0, out
    generated = re.search(r"one-time password: (\S+)", out)
    assert generated is not None
    code, out = _run(settings, "users", "add", "aude", "--role", "auditor",
                     env={"STUDIO_USER_PASSWORD": "auditor-password-9"})
    assert code == 0 and "password" not in out
    code, out = _run(settings, "users", "add", "otto", "--role", "operator")
    assert code == 5 and "already exists" in out
    code, out = _run(settings, "users", "add", "eve", "--role", "root")
    assert code == 2
    accounts = _accounts(settings)
    assert accounts.authenticate("otto", generated.group(1)).ok
    assert accounts.authenticate("aude", "auditor-password-9").ok

    code, out = _run(settings, "users", "passwd", "otto", "--json")
    new = json.loads(out)["password"]
    assert code == 0 and new and not accounts.authenticate("otto", generated.group(1)).ok
    assert accounts.authenticate("otto", new).ok

    code, out = _run(settings, "users", "disable", "otto")
    assert code == 0 and accounts.get("otto").disabled
    code, out = _run(settings, "users", "list", "--json")
    users = {u["username"]: u for u in json.loads(out)["users"]}
    assert users["otto"]["disabled"] is True and users["aude"]["role"] == "auditor"
    assert users["otto"]["display_name"] == "Otto Operator"
    code, out = _run(settings, "users", "passwd", "nobody")
    assert code == 4
