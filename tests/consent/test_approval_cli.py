"""``studio consent approve`` (the performer's side, offline), ``import-approval`` (the consent
officer) and ``approval-status``, end to end on a fresh data folder (SQLite)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from consent.gate import AuthorizationRequest, IdentityMatch
from studio.bootstrap import open_registry
from studio.cli import app
from studio.settings import Settings
from tests.factory import grant_draft, match, request

runner = CliRunner()
PASS = "correct horse battery"


def run(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data", str(data), *args])
    return result.exit_code, result.output


def run_json(data: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, output = run(data, *args, "--json")
    return code, json.loads(output)


def publish(data: Path, output: Path, req: AuthorizationRequest,
            ident: IdentityMatch) -> None:
    registry = open_registry(Settings.from_env(data))
    try:
        decision = registry.authorize(req, [ident])
        assert decision.allowed, decision.reasons
        registry.record_output(decision, hashlib.sha256(output.read_bytes()).hexdigest(),
                               "urn:c2pa:approval-test")
    finally:
        registry.store.dispose()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """perf-a registered with a key; their grant-1 requires approval; output.mp4 published
    under it. Returns (data folder, the performer's key file, the output)."""
    monkeypatch.setenv("STUDIO_KEY_PASSPHRASE", PASS)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    assert run(data, "consent", "keygen", "perf-a", "--out", str(tmp_path))[0] == 0
    code, out = run(data, "consent", "register", "perf-a", "--legal-name", "Ana Pérez",
                    "--public-key", str(tmp_path / "perf-a.pub"), "--officer", "Olga")
    assert code == 0, out
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(grant_draft(valid_until="2036-01-01T00:00:00Z",
                                                approval="required")))
    signed = tmp_path / "grant.json"
    code, out = run(data, "consent", "sign-grant", str(draft), "--key",
                    str(tmp_path / "perf-a.key"), "--out", str(signed))
    assert code == 0, out
    assert json.loads(signed.read_bytes())["signed"]["schema_version"] == 2
    code, out = run(data, "consent", "import", str(signed), "--officer", "Olga")
    assert code == 0, out
    output = tmp_path / "output.mp4"
    output.write_bytes(b"a held render")
    publish(data, output, request(), match())
    return data, tmp_path / "perf-a.key", output


def test_approve_import_and_status(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, key, output = world
    code, status = run_json(data, "consent", "approval-status", str(output))
    assert code == 1 and status["approval"]["state"] == "awaiting"
    assert status["approval"]["deliverable"] is False

    approval = tmp_path / "approval.json"
    code, out = run(data, "consent", "approve", str(output), "--performer", "perf-a",
                    "--grant", "grant-1", "--key", str(key), "--out", str(approval),
                    "--note", "Fine by me.")
    assert code == 0, out
    code, done = run_json(data, "consent", "import-approval", str(approval), "--officer",
                          "Olga")
    assert code == 0 and done["approval"]["state"] == "approved"
    code, out = run(data, "consent", "approval-status", str(output))
    assert code == 0 and "approved" in out and "perf-a (grant-1): approved" in out
    code, again = run_json(data, "consent", "import-approval", str(approval), "--officer",
                           "Olga")
    assert code == 5 and again["error"] == "registry.duplicate"


def test_rejection_forgery_and_usage(world: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, key, output = world
    rejection = tmp_path / "rejection.json"
    code, out = run(data, "consent", "approve", "--sha256",
                    hashlib.sha256(output.read_bytes()).hexdigest(),
                    "--performer", "perf-a", "--grant", "grant-1", "--decision", "rejected",
                    "--key", str(key), "--out", str(rejection))
    assert code == 0, out
    forged = json.loads(rejection.read_bytes())
    forged["signed"]["decision"] = "approved"
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    code, err = run_json(data, "consent", "import-approval", str(tmp_path / "forged.json"),
                         "--officer", "Olga")
    assert code == 3 and err["error"] == "signature.invalid"
    code, done = run_json(data, "consent", "import-approval", str(rejection), "--officer",
                          "Olga")
    assert code == 0 and done["approval"]["state"] == "rejected"
    assert run(data, "consent", "approval-status", str(output))[0] == 1

    other = tmp_path / "other.mp4"
    other.write_bytes(b"never published")
    early = tmp_path / "early.json"
    assert run(data, "consent", "approve", str(other), "--performer", "perf-a", "--grant",
               "grant-1", "--key", str(key), "--out", str(early))[0] == 0
    code, err = run_json(data, "consent", "import-approval", str(early), "--officer", "Olga")
    assert code == 3 and err["error"] == "approval.not_published"
    code, err = run_json(data, "consent", "approval-status", str(other))
    assert code == 4

    code, out = run(data, "consent", "approve", str(output), "--performer", "perf-a",
                    "--key", str(key), "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--grant" in out
