"""Motion-file seals at the registry (SQLite and PostgreSQL): issued only for an allowed,
ledgered performance_driving decision; checked against the ledger as an attacker who owns
the database would try to fool it. The media end of it: tests/render/test_motion_seals.py."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from consent.errors import (
    MotionSealError,
    NotFoundError,
    SealScopeError,
    TamperedMotionError,
    UnledgeredSealError,
)
from consent.gate import Decision
from consent.keys import PrivateKey
from consent.motion_seal import seal_draft, verify_seal
from consent.registry import Registry
from consent.store import DecisionRow, LedgerEntryRow
from tests.consent.helpers import drop_guards
from tests.factory import SOURCE_SHA, T0, match, request, signed_grant

PAYLOAD = hashlib.sha256(b"motion payload").hexdigest()


@pytest.fixture
def extraction(registry: Registry, performer: PrivateKey) -> Decision:
    drop_guards(registry.store)
    doc = signed_grant(performer, scope={"techniques": ["lip_sync", "performance_driving"],
                                         "max_alteration": "full_face"})
    assert registry.import_grant(doc.raw, officer="Officer O").status == "active"
    decision = registry.authorize(
        request(technique="performance_driving", track_id="driver",
                operation="motion_extract", alteration="full_face"),
        [match(track_id="driver")], known_tracks=["driver"])
    assert decision.allowed
    return decision


def _seal(registry: Registry, decision: Decision, **changes: Any) -> bytes:
    draft = seal_draft(decision, format_version=2, payload_sha256=PAYLOAD,
                       video_sha256=SOURCE_SHA, embedder="dlib", created_at=T0)
    draft.update(changes)
    return registry.issue_motion_seal(draft).to_bytes()


def _verify(registry: Registry, raw: bytes, **kwargs: Any) -> Any:
    args: dict[str, Any] = dict(payload_sha256=PAYLOAD, project_id="proj-1", format_version=2)
    args.update(kwargs)
    return verify_seal(registry, raw, **args)


def test_a_seal_is_issued_for_an_allowed_ledgered_decision_and_verifies(
        registry: Registry, extraction: Decision) -> None:
    checked = _verify(registry, _seal(registry, extraction))
    assert checked.seal.driver_performer_id == "perf-a"
    assert checked.seal.decision_ledger_index == extraction.ledger_index
    assert [g.status for g in checked.grants] == ["active"] and not checked.inactive_grants
    with pytest.raises(SealScopeError, match="project proj-1"):
        _verify(registry, _seal(registry, extraction), project_id="proj-2")
    with pytest.raises(TamperedMotionError, match="edited after extraction"):
        _verify(registry, _seal(registry, extraction), payload_sha256="0" * 64)


def test_the_registry_seals_nothing_but_an_allowed_decision_on_record(
        registry: Registry, extraction: Decision) -> None:
    with pytest.raises(MotionSealError, match="allowed decision"):
        seal_draft(replace(extraction, allowed=False), format_version=2,
                   payload_sha256=PAYLOAD, video_sha256=SOURCE_SHA, embedder="dlib",
                   created_at=T0)
    lipsync = registry.authorize(request(), [match()])
    assert lipsync.allowed
    with pytest.raises(MotionSealError, match="performance_driving"):
        seal_draft(lipsync, format_version=2, payload_sha256=PAYLOAD,
                   video_sha256=SOURCE_SHA, embedder="dlib", created_at=T0)
    with pytest.raises(NotFoundError, match="no allowed decision"):
        _seal(registry, extraction, decision_ledger_index=0)
    with pytest.raises(Exception, match="differs from the recorded one"):
        _seal(registry, extraction, decision_sha256="0" * 64)


def test_a_decision_record_edited_in_the_database_fails_the_check(
        registry: Registry, extraction: Decision) -> None:
    raw = _seal(registry, extraction)
    with registry.store.session() as s:
        row = s.get(DecisionRow, extraction.decision_id)
        assert row is not None
        original, row.document = row.document, row.document + b" "
    with pytest.raises(UnledgeredSealError, match="missing or altered"):
        _verify(registry, raw)
    if registry.store.engine.dialect.name == "sqlite":  # SQLite stores text in any column
        with registry.store.session() as s:
            s.execute(text("UPDATE decisions SET document = :doc WHERE decision_id = :id"),
                      {"doc": original.decode(), "id": extraction.decision_id})
        with pytest.raises(UnledgeredSealError, match="missing or altered"):
            _verify(registry, raw)


def test_a_ledger_leaf_rewritten_in_the_database_fails_the_inclusion_proof(
        registry: Registry, extraction: Decision) -> None:
    raw = _seal(registry, extraction)
    with registry.store.session() as s:
        row = s.get(LedgerEntryRow, extraction.ledger_index)
        assert row is not None
        row.data = row.data.replace(b'{"', b'{ "', 1)  # the same JSON, other bytes
    with pytest.raises(UnledgeredSealError, match="inclusion proof fails"):
        _verify(registry, raw)


def test_a_revoked_grant_is_reported_inactive(registry: Registry,
                                              extraction: Decision) -> None:
    raw = _seal(registry, extraction)
    registry.revoke_grant("grant-1", reason="withdrawn", officer="Officer O",
                          performer_request_reference="REQ-1")
    checked = _verify(registry, raw)
    assert [g.status for g in checked.inactive_grants] == ["revoked"]
