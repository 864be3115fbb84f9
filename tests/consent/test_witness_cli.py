"""`studio ledger witness`: a separate process with its own key and state folder that
cosigns the ledger's checkpoints and refuses a rolled-back database (exit 1)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consent.keys import PrivateKey
from studio.bootstrap import open_registry
from studio.cli import app
from studio.settings import Settings

runner = CliRunner()


def witness(data: Path, state: Path, *extra: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["--data", str(data), "ledger", "witness", "--state",
                                 str(state), "--json", *extra])
    assert result.output.startswith("{"), (result.exit_code, result.output, result.exception)
    return result.exit_code, json.loads(result.output)


def copy_database(src: Path, dst: Path) -> None:
    """SQLite's online backup: a consistent copy whatever sits in the WAL."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    monkeypatch.delenv("STUDIO_WITNESS_LOGS", raising=False)
    d = tmp_path / "data"
    result = runner.invoke(app, ["--data", str(d), "ledger", "checkpoint", "--json"])
    assert result.exit_code == 0, result.output
    return d


def test_witness_cosigns_then_refuses_a_rollback(data: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "witness"
    code, first = witness(data, state)
    assert code == 0 and first["ok"] and first["previous_size"] == 0, first
    assert (state / "witness.vkey").read_text().startswith("studio-witness+")

    copy_database(data / "studio.db", tmp_path / "old.db")
    registry = open_registry(Settings.from_env(data))
    registry.register_performer("perf-w", "Performer W", officer="O")
    registry.add_key("perf-w", PrivateKey.generate().public_key, officer="O")
    registry.store.dispose()

    code, second = witness(data, state, "--publish")
    assert code == 0, second
    assert second["previous_size"] == first["size"]
    assert int(str(second["size"])) > int(str(first["size"]))
    assert "studio-witness" in (data / "ledger-checkpoints.log").read_text()

    copy_database(tmp_path / "old.db", data / "studio.db")  # the rollback
    code, refused = witness(data, state)
    assert code == 1, refused
    assert refused["ok"] is False and "rollback" in str(refused["message"])

    # ledger verify reads the witness's log too: the rolled-back tree is named.
    monkeypatch.setenv("STUDIO_WITNESS_LOGS", str(state / "cosigned.log"))
    result = runner.invoke(app, ["--data", str(data), "ledger", "verify", "--json"])
    assert result.exit_code == 1, result.output
    kinds = {p["kind"] for p in json.loads(result.output)["problems"]}
    assert "truncated" in kinds, result.output
