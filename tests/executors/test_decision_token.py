"""The registry-signed decision a render worker acts on (consent.decision_token), on SQLite and
PostgreSQL: issued only for an allowed, ledgered decision; refused when forged, edited, expired,
or handed to another job, chunk or input."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from consent.canonical import canonical_bytes
from consent.decision_token import token_draft, verify_token
from consent.documents import RenderDecisionToken, sign_draft
from consent.errors import (
    DecisionScopeError,
    DecisionTokenError,
    DocumentError,
    ExpiredDecisionError,
    ForgedDecisionError,
    NotFoundError,
)
from consent.gate import Decision
from consent.keys import PrivateKey
from consent.registry import Registry
from tests.factory import T0, Clock, match, request, signed_grant

INPUTS = {"source": hashlib.sha256(b"shot").hexdigest(),
          "dub": hashlib.sha256(b"dub").hexdigest()}
SEGMENT = {"track_id": "t1", "first_frame": 0, "last_frame": 74, "performer_id": "perf-a"}


def _allowed(registry: Registry, performer: PrivateKey) -> Decision:
    registry.import_grant(signed_grant(performer).raw, officer="Officer O")
    decision = registry.authorize(request(segments=[SEGMENT]), [match()])
    assert decision.allowed, decision.reasons
    return decision


def _draft(decision: Decision, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(job_id="job-1", chunk_id="shot", inputs=INPUTS,
                                  traces={"t1": [(0, 74)]}, watermark_payload=0x1234,
                                  issued_at=T0)
    values.update(changes)
    return token_draft(decision, **values)


def _check(raw: bytes, registry: Registry, **changes: Any) -> RenderDecisionToken:
    values: dict[str, Any] = dict(job_id="job-1", chunk_id="shot", inputs=INPUTS,
                                  now=T0 + timedelta(minutes=5))
    values.update(changes)
    return verify_token(raw, registry.public_key, **values)


def test_a_token_for_an_allowed_decision_verifies_with_its_segments(
        registry: Registry, performer: PrivateKey) -> None:
    decision = _allowed(registry, performer)
    raw = registry.issue_decision_token(_draft(decision)).to_bytes()
    token = _check(raw, registry)
    assert token.decision_id == decision.decision_id
    assert token.decision_ledger_index == decision.ledger_index
    assert [(s.track_id, s.first_frame, s.last_frame, s.grant_id) for s in token.segments] \
        == [("t1", 0, 74, "grant-1")]
    assert token.watermark_payload == 0x1234
    assert {i.name: i.sha256 for i in token.inputs} == INPUTS


def test_the_registry_signs_no_token_for_a_denied_or_unrecorded_decision(
        registry: Registry, performer: PrivateKey) -> None:
    denied = registry.authorize(request(segments=[SEGMENT]), [match()])  # no grant yet
    assert not denied.allowed
    with pytest.raises(DecisionTokenError):
        _draft(denied)
    decision = _allowed(registry, performer)
    draft = _draft(decision)
    with pytest.raises(NotFoundError):
        registry.issue_decision_token({**draft, "decision_ledger_index": 0})
    with pytest.raises(DocumentError):
        registry.issue_decision_token({**draft, "decision_sha256": "0" * 64})


def test_forged_edited_expired_and_foreign_tokens_are_refused(
        registry: Registry, performer: PrivateKey, clock: Clock) -> None:
    decision = _allowed(registry, performer)
    draft = _draft(decision)
    raw = registry.issue_decision_token(draft).to_bytes()

    # Signed by someone else's key (the same body, a well-formed envelope).
    forged = sign_draft(RenderDecisionToken, draft, [PrivateKey.generate()]).to_bytes()
    with pytest.raises(ForgedDecisionError, match="not by the registry's key"):
        _check(forged, registry)
    # The registry's signature, with a wider segment written in afterwards.
    envelope = json.loads(raw)
    envelope["signed"]["segments"][0]["last_frame"] = 10_000
    with pytest.raises(ForgedDecisionError, match="does not verify"):
        _check(canonical_bytes(envelope), registry)
    with pytest.raises(ForgedDecisionError):
        _check(b"not json", registry)
    # Expired (and not yet valid: a worker clock far behind).
    with pytest.raises(ExpiredDecisionError):
        _check(raw, registry, now=T0 + timedelta(hours=7))
    with pytest.raises(ExpiredDecisionError):
        _check(raw, registry, now=T0 - timedelta(hours=1))
    # Another job, another chunk, other input files.
    with pytest.raises(DecisionScopeError, match="job-1/shot"):
        _check(raw, registry, job_id="job-2")
    with pytest.raises(DecisionScopeError):
        _check(raw, registry, chunk_id="shot-2")
    with pytest.raises(DecisionScopeError, match="source"):
        _check(raw, registry, inputs={**INPUTS, "source": "f" * 64})
    with pytest.raises(DecisionScopeError, match="script"):
        _check(raw, registry, inputs={**INPUTS, "script": "e" * 64})


def test_a_chunk_token_is_good_for_its_own_frame_range_only(
        registry: Registry, performer: PrivateKey) -> None:
    decision = _allowed(registry, performer)
    raw = registry.issue_decision_token(
        _draft(decision, chunk_id="f0000000-0000029", frames=(0, 29))).to_bytes()
    token = _check(raw, registry, chunk_id="f0000000-0000029", frames=(0, 29))
    assert token.frames == (0, 29)
    # Replayed on another range, or as the whole shot: refused.
    for frames in ((30, 59), (0, 74), None):
        with pytest.raises(DecisionScopeError, match="frames 0-29"):
            _check(raw, registry, chunk_id="f0000000-0000029", frames=frames)
    # The range is signed: widened afterwards, the signature fails.
    envelope = json.loads(raw)
    envelope["signed"]["frames"] = [0, 74]
    with pytest.raises(ForgedDecisionError, match="does not verify"):
        _check(canonical_bytes(envelope), registry, chunk_id="f0000000-0000029",
               frames=(0, 74))
    # A whole-shot token asked for a range is refused too, and keeps its former bytes (no
    # ``frames`` field is signed for it).
    whole = registry.issue_decision_token(_draft(decision)).to_bytes()
    assert b'"frames"' not in whole
    with pytest.raises(DecisionScopeError, match="whole shot"):
        _check(whole, registry, frames=(0, 29))
    with pytest.raises(DocumentError):
        registry.issue_decision_token(_draft(decision, frames=(30, 10)))


def test_a_token_binds_the_digest_of_the_meshes_the_head_tracked(
        registry: Registry, performer: PrivateKey) -> None:
    decision = _allowed(registry, performer)
    meshes = {"source": hashlib.sha256(b"meshes").hexdigest()}
    raw = registry.issue_decision_token(_draft(decision, meshes=meshes)).to_bytes()
    token = _check(raw, registry)
    assert {m.name: m.sha256 for m in token.meshes or ()} == meshes
    # The digest is signed: another one written in afterwards fails the signature.
    envelope = json.loads(raw)
    envelope["signed"]["meshes"][0]["sha256"] = "f" * 64
    with pytest.raises(ForgedDecisionError, match="does not verify"):
        _check(canonical_bytes(envelope), registry)
    # A token without meshes keeps its former bytes (no ``meshes`` field is signed for it).
    plain = registry.issue_decision_token(_draft(decision)).to_bytes()
    assert b'"meshes"' not in plain
    assert _check(plain, registry).meshes is None
