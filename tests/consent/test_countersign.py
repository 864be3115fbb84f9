"""Optional production countersignatures (CONSENT.md, proof): verified at import and at every
decision against keys the registry bound to the grantee company."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from consent.errors import DuplicateError, SignatureError
from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import GrantRow
from tests.consent.helpers import drop_guards
from tests.factory import match, request, signed_grant


@pytest.fixture
def production(registry: Registry) -> PrivateKey:
    key = PrivateKey.generate()
    registry.add_production_key("Dub House Ltd", key.public_key, officer="O")
    return key


def test_countersigned_grant_imports_and_allows(registry: Registry, performer: PrivateKey,
                                                production: PrivateKey) -> None:
    doc = signed_grant(performer).with_signature(production)
    assert len(doc.signatures) == 2
    status = registry.import_grant(doc.raw, officer="O")
    assert status.status == "active"
    decision = registry.authorize(request(), [match()])
    assert decision.allowed, decision.reasons


def test_countersignature_by_an_unknown_key_is_refused(registry: Registry,
                                                       performer: PrivateKey) -> None:
    doc = signed_grant(performer).with_signature(PrivateKey.generate())
    with pytest.raises(SignatureError, match="no registered production key"):
        registry.import_grant(doc.raw, officer="O")
    assert registry.grants() == []


def test_countersignature_by_another_company_is_refused(registry: Registry,
                                                        performer: PrivateKey) -> None:
    other = PrivateKey.generate()
    registry.add_production_key("Other Films", other.public_key, officer="O")
    doc = signed_grant(performer).with_signature(other)
    with pytest.raises(SignatureError, match="the grantee is Dub House Ltd"):
        registry.import_grant(doc.raw, officer="O")


def test_a_performer_key_cannot_also_be_a_production_key(registry: Registry,
                                                         performer: PrivateKey) -> None:
    with pytest.raises(DuplicateError):
        registry.add_production_key("Dub House Ltd", performer.public_key, officer="O")


def test_a_forged_countersignature_in_the_database_denies(registry: Registry,
                                                          performer: PrivateKey,
                                                          production: PrivateKey) -> None:
    doc = signed_grant(performer).with_signature(production)
    registry.import_grant(doc.raw, officer="O")
    envelope = json.loads(doc.raw)
    forged = signed_grant(performer, grant_id="other").with_signature(production)
    envelope["signatures"][1] = json.loads(forged.raw)["signatures"][1]
    drop_guards(registry.store)  # the attacker holds the database file
    with registry.store.session() as s:
        s.execute(update(GrantRow).values(document=json.dumps(envelope).encode()))
    decision = registry.authorize(request(), [match()])
    assert not decision.allowed
    assert any("grant grant-1 of perf-a differs from the document" in r
               for r in decision.reasons)
    assert registry.grant("grant-1").status == "invalid"


def test_cli_countersign_flow(tmp_path: Path, performer_key: PrivateKey) -> None:
    from typer.testing import CliRunner

    from studio.cli import app

    runner = CliRunner()
    env = {"STUDIO_KEY_PASSPHRASE": "production passphrase"}
    grant = tmp_path / "grant.json"
    grant.write_bytes(signed_grant(performer_key).raw)
    result = runner.invoke(app, ["consent", "keygen", "dubhouse", "--out", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    out = tmp_path / "countersigned.json"
    result = runner.invoke(app, ["consent", "countersign", str(grant), "--key",
                                 str(tmp_path / "dubhouse.key"), "--out", str(out), "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_bytes())["signatures"]) == 2
