"""Pure tests of :func:`consent.gate.evaluate`: every rule of CONSENT.md, allow and deny.

No database: the evidence (performer records, key bindings, grants, revocations) is built and
signed by hand here, exactly as the registry would hand it to the gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consent import gate
from consent.documents import (
    Grant,
    PerformerKey,
    PerformerRecord,
    ProductionKey,
    Revocation,
    SignedDocument,
    sign_draft,
)
from consent.keys import PrivateKey, short_id
from tests.factory import SCRIPT_SHA, SOURCE_SHA, T0, grant_draft, match, request

# --------------------------------------------------------------------------- builders

REGISTRY = PrivateKey.generate()
KEY_A = PrivateKey.generate()  # perf-a's own key
KEY_B = PrivateKey.generate()  # perf-b's own key
GUARDIAN = PrivateKey.generate()  # held by perf-a's guardian
ESTATE = PrivateKey.generate()  # held by perf-a's estate

OTHER_SHA = hashlib.sha256(b"other footage").hexdigest()

ALL_RULES = {
    "clock", "identity", "signature", "technique", "project", "language", "territory",
    "channel", "alteration", "ai_training", "script", "validity", "status", "revocation",
    "source_media",
}


def record(performer_id: str = "perf-a", *, revision: int = 1, key: PrivateKey = REGISTRY,
           **extra: Any) -> bytes:
    draft = {"performer_id": performer_id, "revision": revision,
             "legal_name": f"Performer {performer_id}",
             "recorded_at": "2025-06-01T12:00:00Z", "recorded_by": "Officer O", **extra}
    return sign_draft(PerformerRecord, draft, [key]).raw


def binding(performer_id: str = "perf-a", pk: PrivateKey = KEY_A, *, role: str = "self",
            key: PrivateKey = REGISTRY, authority_evidence: str | None = None) -> bytes:
    holder: dict[str, Any] = {"role": role, "name": f"Holder of {performer_id}"}
    if authority_evidence is not None:
        holder["authority_evidence"] = authority_evidence
    draft = {"performer_id": performer_id, "key_id": pk.key_id,
             "public_key": pk.public_key.to_base64(), "holder": holder,
             "registered_at": "2025-06-01T12:00:00Z", "registered_by": "Officer O"}
    return sign_draft(PerformerKey, draft, [key]).raw


def grant_doc(pk: PrivateKey = KEY_A, **overrides: Any) -> SignedDocument[Grant]:
    return sign_draft(Grant, grant_draft(**overrides), [pk])


def grant(pk: PrivateKey = KEY_A, **overrides: Any) -> bytes:
    return grant_doc(pk, **overrides).raw


def revocation(kind: str = "grant", target: str = "grant-1", *, performer_id: str = "perf-a",
               by: str = "performer", key: PrivateKey = KEY_A, rev_id: str = "rev-1") -> bytes:
    draft: dict[str, Any] = {
        "revocation_id": rev_id, "performer_id": performer_id,
        "target": {"kind": kind, "id": target}, "revoked_at": "2026-05-01T09:00:00Z",
        "reason": "Changed my mind", "issued_by": {"role": by, "name": "Someone"},
    }
    if by == "consent_officer":
        draft["performer_request_reference"] = "Letter of 2026-04-30"
    return sign_draft(Revocation, draft, [key]).raw


def evidence(performer_id: str = "perf-a", *, grants: Sequence[bytes] | None = None,
             keys: Sequence[bytes] | None = None, records: Sequence[bytes] | None = None,
             revocations: Sequence[bytes] = (),
             ledger_revoked: Sequence[str] = ()) -> gate.PerformerEvidence:
    """perf-a (or another performer) with a record, a self key and one grant by default."""
    own_key = {"perf-a": KEY_A, "perf-b": KEY_B}.get(performer_id, KEY_A)
    return gate.PerformerEvidence(
        performer_id,
        records=list(records) if records is not None else [record(performer_id)],
        keys=list(keys) if keys is not None else [binding(performer_id, own_key)],
        grants=list(grants) if grants is not None
        else [grant(own_key, performer_id=performer_id)],
        revocations=list(revocations),
        ledger_revoked=frozenset(ledger_revoked),
    )


def decide(req: gate.AuthorizationRequest | None = None,
           ev: gate.PerformerEvidence | dict[str, gate.PerformerEvidence] | None = None,
           matches: Sequence[gate.IdentityMatch] | None = None, now: datetime = T0,
           **kw: Any) -> gate.Decision:
    if ev is None:
        ev = evidence()
    if isinstance(ev, gate.PerformerEvidence):
        ev = {ev.performer_id: ev}
    return gate.evaluate(req or request(), ev, [match()] if matches is None else matches, now,
                         REGISTRY.public_key, **kw)


def rule(decision: gate.Decision, name: str) -> gate.RuleResult:
    """The one result of rule ``name`` (fails if the rule is absent or appears twice)."""
    found = [r for r in decision.rules if r.rule == name]
    assert len(found) == 1, (name, decision.rules)
    return found[0]


def assert_denied(decision: gate.Decision, name: str, *fragments: str) -> gate.RuleResult:
    assert not decision.allowed
    assert decision.grants_used == ()
    r = rule(decision, name)
    assert r.passed is False
    for fragment in fragments:
        assert fragment in r.detail, (fragment, r.detail)
    assert r.detail in decision.reasons
    return r


def assert_allowed(decision: gate.Decision, name: str | None = None,
                   *fragments: str) -> None:
    assert decision.allowed, decision.reasons
    assert decision.reasons == []
    assert all(r.passed for r in decision.rules)
    if name is not None:
        r = rule(decision, name)
        assert r.passed is True
        for fragment in fragments:
            assert fragment in r.detail, (fragment, r.detail)


# --------------------------------------------------------------------------- the happy path


def test_allow_lists_every_rule_passed() -> None:
    d = decide()
    assert_allowed(d)
    assert {r.rule for r in d.rules} == ALL_RULES
    assert len(d.rules) == len(ALL_RULES)
    for r in d.rules:
        if r.rule not in {"clock"}:
            assert r.performer_id == "perf-a"
            assert r.track_id == "t1"
    doc = grant_doc()
    assert d.grants_used == (gate.GrantRef("grant-1", doc.sha256, "perf-a", "lip_sync"),)
    assert d.decided_at == T0
    assert d.untouched_tracks == ()
    assert d.identities == (match(),)


@pytest.mark.parametrize("allowed", [True, False])
def test_decision_to_json_round_trips(allowed: bool) -> None:
    req = request() if allowed else request(language="de")
    d = decide(req, known_tracks=["t1", "t9"])
    assert d.allowed is allowed
    body = d.to_json()
    assert json.loads(json.dumps(body)) == body
    assert body["allowed"] is allowed
    assert body["decided_at"] == "2026-06-01T12:00:00Z"
    assert body["request_sha256"] == req.sha256
    assert len(body["rules"]) == len(d.rules)
    assert body["reasons"] == d.reasons
    assert body["untouched_tracks"] == ["t9"]
    assert body["ledger_index"] is None
    if allowed:
        assert body["grants_used"][0]["grant_id"] == "grant-1"
    else:
        assert body["grants_used"] == []
        assert any("does not cover language de" in r for r in body["reasons"])
    # content_bytes is the canonical form without the ledger index
    assert "ledger_index" not in json.loads(d.content_bytes())


# --------------------------------------------------------------------------- clock


def test_clock_naive_now_is_denied_not_crashing() -> None:
    naive = datetime(2026, 6, 1, 12, 0)
    d = decide(now=naive)
    r = assert_denied(d, "clock", "no time zone")
    assert d.rules == (r,)  # nothing else is evaluated against an untrusted clock
    json.dumps(d.to_json())


@pytest.mark.parametrize(("ledger_offset", "allowed"), [
    (timedelta(minutes=6), False),
    (timedelta(hours=3), False),
    (timedelta(minutes=5), True),  # exactly at the skew: still trusted
    (timedelta(minutes=4, seconds=59), True),
    (timedelta(0), True),
    (-timedelta(days=1), True),
    (None, True),
])
def test_clock_against_newest_ledger_event(ledger_offset: timedelta | None,
                                           allowed: bool) -> None:
    last = None if ledger_offset is None else T0 + ledger_offset
    d = decide(last_ledger_time=last)
    if allowed:
        assert_allowed(d, "clock", "decision time 2026-06-01T12:00:00Z")
    else:
        r = assert_denied(d, "clock", "clock is untrusted", "2026-06-01T12:00:00Z")
        assert d.rules == (r,)


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize(("matches", "fragments"), [
    ([], ["face t1 has no identity verdict", "perf-a"]),
    ([match(track_id="t2")], ["face t1 has no identity verdict"]),
    ([match(performer_id="perf-b")], ["face t1 matches perf-b, not perf-a"]),
    ([match(performer_id=None, distance=None)], ["face t1 matches no enrolled performer"]),
    ([match(distance=None)], ["face t1 names perf-a but gives no distance"]),
    ([match(distance=0.61, threshold=0.5)], ["0.610", "beyond the threshold 0.500"]),
    ([match(margin=0.05, min_margin=0.1)], ["only 0.050 better than another performer",
                                           "needs 0.100"]),
    ([match(), match(distance=0.2)], ["track t1 has two identity verdicts"]),
], ids=["no-verdict", "verdict-for-other-track", "other-performer", "no-performer",
        "no-distance", "beyond-threshold", "margin-too-small", "two-verdicts"])
def test_identity_deny(matches: list[gate.IdentityMatch], fragments: list[str]) -> None:
    d = decide(matches=matches)
    assert not d.allowed
    failed = [r for r in d.rules if r.rule == "identity" and not r.passed]
    assert failed, d.rules
    assert all(r.track_id == "t1" for r in failed)
    detail = " | ".join(r.detail for r in failed)
    for fragment in fragments:
        assert fragment in detail


@pytest.mark.parametrize("m", [
    match(),
    match(distance=0.1, margin=0.3, min_margin=0.1),
    match(distance=0.5, threshold=0.5),
], ids=["plain", "with-margin", "at-threshold"])
def test_identity_allow(m: gate.IdentityMatch) -> None:
    d = decide(matches=[m])
    assert_allowed(d, "identity", "face t1 matches perf-a at distance", "50 frames")


@pytest.mark.parametrize("field", ["margin", "distance", "threshold", "min_margin"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_identity_verdict_with_non_finite_numbers_is_refused(field: str, value: float) -> None:
    """Fail closed: ``margin < min_margin`` is False for NaN, and an infinite threshold would
    match anyone, so a verdict carrying such numbers never reaches the gate."""
    body = {"track_id": "t1", "performer_id": "perf-a", "distance": 0.3, "threshold": 0.5,
            "margin": 0.2, "min_margin": 0.1, field: value}
    with pytest.raises(ValidationError, match="finite"):
        gate.IdentityMatch.model_validate(body)


# --------------------------------------------------------------------------- signature


def _altered(raw: bytes, edit: Any) -> bytes:
    body = json.loads(raw)
    edit(body["signed"])
    return json.dumps(body).encode()


def _add_german(signed: dict[str, Any]) -> None:
    signed["scope"]["languages"].append("de")


def _extend(signed: dict[str, Any]) -> None:
    signed["valid_until"] = "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(("ev", "fragments"), [
    (evidence(grants=[grant(PrivateKey.generate())]),
     ["grant grant-1 is not signed by any key registered to perf-a"]),
    (evidence(grants=[grant(KEY_B)]),
     ["not signed by any key registered to perf-a"]),
    (evidence(grants=[grant(KEY_B)], keys=[binding("perf-a"), binding("perf-b", KEY_B)]),
     ["not signed by any key registered to perf-a"]),
    (evidence(grants=[_altered(grant(), _add_german)]),
     ["grant grant-1: signature by", short_id(KEY_A.key_id), "altered or forged"]),
    (evidence(grants=[_altered(grant(), _extend)]), ["altered or forged"]),
    (evidence(keys=[binding(key=KEY_A)]), ["not signed by any key registered to perf-a"]),
    (evidence(keys=[binding(key=PrivateKey.generate())]),
     ["not signed by any key registered to perf-a"]),
    (evidence(keys=[binding(role="guardian", authority_evidence="Court order 7")]),
     ["signed as self with a key registered to a guardian"]),
    (evidence(grants=[grant(performer_id="perf-b")]),
     ["grant grant-1 is for performer perf-b, not perf-a"]),
    (evidence(grants=[b'{"signed": {}, "signatures": []}']), ["unreadable"]),
    (evidence(grants=[grant()[:-5]]), ["unreadable"]),
], ids=["unregistered-key", "other-performers-key", "other-performers-binding-filed-here",
        "bytes-altered", "validity-extended", "binding-self-signed",
        "binding-signed-by-stranger", "holder-role-mismatch", "grant-for-other-performer",
        "empty-envelope", "truncated"])
def test_signature_deny(ev: gate.PerformerEvidence, fragments: list[str]) -> None:
    d = decide(ev=ev)
    r = assert_denied(d, "signature", *fragments)
    assert r.performer_id == "perf-a"
    # a grant that fails rule 1 is not examined further
    assert not any(x.rule in {"technique", "language", "validity"} for x in d.rules)


def test_altered_grant_is_denied_even_for_what_the_edit_claims() -> None:
    """Adding German to the stored grant does not let a German render through."""
    ev = evidence(grants=[_altered(grant(), _add_german)])
    d = decide(request(language="de"), ev)
    assert_denied(d, "signature", "altered or forged")
    assert not any("covers language de" in r.detail for r in d.rules if r.passed)


def _production_binding(key: PrivateKey, company: str = "Dub House Ltd",
                        signer: PrivateKey = REGISTRY) -> bytes:
    return sign_draft(ProductionKey, {
        "company": company, "key_id": key.key_id, "public_key": key.public_key.to_base64(),
        "registered_at": "2025-01-01T00:00:00Z", "registered_by": "Officer O"}, [signer]).raw


def test_signature_allow_with_countersignature() -> None:
    production = PrivateKey.generate()
    raw = sign_draft(Grant, grant_draft(), [KEY_A, production]).raw
    ev = dataclasses.replace(evidence(grants=[raw]),
                             production_keys=[_production_binding(production)])
    d = decide(ev=ev)
    assert_allowed(d, "signature", "grant grant-1 signed by", short_id(KEY_A.key_id), "(self)")


@pytest.mark.parametrize(("binding", "fragment"), [
    (None, "no registered production key"),
    ("other-company", "the grantee is Dub House Ltd"),
    ("not-by-registry", "no registered production key"),
])
def test_signature_deny_with_bad_countersignature(binding: str | None, fragment: str) -> None:
    production = PrivateKey.generate()
    raw = sign_draft(Grant, grant_draft(), [KEY_A, production]).raw
    keys = {None: [], "other-company": [_production_binding(production, "Other Films")],
            "not-by-registry": [_production_binding(production, signer=production)]}[binding]
    d = decide(ev=dataclasses.replace(evidence(grants=[raw]), production_keys=keys))
    assert_denied(d, "signature", fragment)


# --------------------------------------------------------------------------- scope

PROJECT_EP = {"grantee": {"company": "Dub House Ltd", "projects": [
    {"project_id": "proj-1", "title": "The Series", "episodes": ["ep1", "ep2"]}]}}
PROJECT_SCENE = {"grantee": {"company": "Dub House Ltd", "projects": [
    {"project_id": "proj-1", "title": "The Film", "scenes": ["sc10"]}]}}
TWO_PROJECTS = {"grantee": {"company": "Dub House Ltd", "projects": [
    {"project_id": "proj-0", "title": "The Short"},
    {"project_id": "proj-1", "title": "The Film"}]}}


def scope(**values: Any) -> dict[str, Any]:
    return {"scope": values}


SCOPE_CASES: list[Any] = [
    # rule, grant overrides, request overrides, allowed, detail fragments
    ("technique", {}, {"technique": "lip_sync"}, True, ["covers lip_sync"]),
    ("technique", {}, {"technique": "face_reenactment"}, True, ["covers face_reenactment"]),
    ("technique", {}, {"technique": "voice_synthesis"}, False,
     ["grant grant-1 does not cover technique voice_synthesis"]),
    ("technique", scope(techniques=["lip_sync"]), {"technique": "face_reenactment"}, False,
     ["does not cover technique face_reenactment"]),
    ("project", {}, {}, True, ["covers project proj-1"]),
    ("project", TWO_PROJECTS, {}, True, ["covers project proj-1"]),
    ("project", {}, {"project_id": "proj-2"}, False,
     ["grant grant-1 does not cover project proj-2"]),
    ("project", PROJECT_EP, {"episode": "ep2"}, True, ["covers project proj-1"]),
    ("project", PROJECT_EP, {"episode": "ep3"}, False,
     ["only for episodes ep1, ep2; request is for ep3"]),
    ("project", PROJECT_EP, {}, False, ["only for episodes ep1, ep2; request is for no episode"]),
    ("project", PROJECT_SCENE, {"scene": "sc10"}, True, ["covers project proj-1"]),
    ("project", PROJECT_SCENE, {"scene": "sc11"}, False,
     ["only for scenes sc10; request is for sc11"]),
    ("project", PROJECT_SCENE, {}, False, ["only for scenes sc10; request is for no scene"]),
    ("language", {}, {"language": "fr-CA"}, True, ["covers language fr-CA"]),
    ("language", {}, {"language": "fr"}, True, ["covers language fr"]),
    ("language", {}, {"language": "es-ES"}, True, ["covers language es-ES"]),
    ("language", {}, {"language": "es-MX"}, False, ["grant grant-1 does not cover language es-MX"]),
    ("language", {}, {"language": "es"}, False, ["does not cover language es"]),
    ("language", {}, {"language": "de"}, False, ["grant grant-1 does not cover language de"]),
    ("language", {}, {"language": "frr"}, False, ["does not cover language frr"]),
    ("language", scope(languages=["fr-CA"]), {"language": "fr"}, False,
     ["does not cover language fr"]),
    ("language", scope(languages=["fr-CA"]), {"language": "fr-FR"}, False,
     ["does not cover language fr-FR"]),
    ("territory", {}, {"territory": "CA"}, True, ["covers territory CA"]),
    ("territory", {}, {"territory": "CA-QC"}, True, ["covers territory CA-QC"]),
    ("territory", scope(territories=["worldwide"]), {"territory": "JP"}, True,
     ["covers territory JP"]),
    ("territory", scope(territories=["worldwide"]), {"territory": "worldwide"}, True,
     ["covers territory worldwide"]),
    ("territory", {}, {"territory": "US"}, False, ["grant grant-1 does not cover territory US"]),
    ("territory", {}, {"territory": "US-CA"}, False, ["does not cover territory US-CA"]),
    ("territory", {}, {"territory": "worldwide"}, False, ["does not cover territory worldwide"]),
    ("territory", scope(territories=["CA-QC"]), {"territory": "CA"}, False,
     ["does not cover territory CA"]),
    ("territory", scope(territories=["CA-QC"]), {"territory": "CA-ON"}, False,
     ["does not cover territory CA-ON"]),
    ("channel", {}, {"channel": "theatrical"}, True, ["covers channel theatrical"]),
    ("channel", {}, {"channel": "broadcast"}, False,
     ["grant grant-1 does not cover channel broadcast"]),
    ("alteration", {}, {"alteration": "mouth_region"}, True, ["allows mouth_region"]),
    ("alteration", {}, {"alteration": "full_face"}, False,
     ["allows only mouth_region, request needs full_face"]),
    ("alteration", scope(max_alteration="full_face"), {"alteration": "full_face"}, True,
     ["allows full_face"]),
    ("alteration", scope(max_alteration="full_face"), {"alteration": "mouth_region"}, True,
     ["allows mouth_region"]),
    ("ai_training", {}, {}, True, ["no AI training requested"]),
    ("ai_training", {}, {"ai_training": True}, False, ["grant grant-1 does not allow AI training"]),
    ("ai_training", scope(ai_training=True), {"ai_training": True}, True,
     ["grant grant-1 allows AI training"]),
    ("script", {}, {}, True, ["does not limit the script"]),
    ("script", scope(script_hash=SCRIPT_SHA), {"script_sha256": SCRIPT_SHA}, True,
     ["script matches the approved script of grant grant-1"]),
    ("script", scope(script_hash=SCRIPT_SHA), {"script_sha256": OTHER_SHA}, False,
     [f"approves only script {SCRIPT_SHA[:12]}", f"request has {OTHER_SHA[:12]}"]),
    ("script", scope(script_hash=SCRIPT_SHA), {}, False,
     [f"approves only script {SCRIPT_SHA[:12]}", "request has none"]),
    ("source_media", {}, {}, True, ["covers any footage"]),
    ("source_media", scope(source_media=[OTHER_SHA, SOURCE_SHA]), {}, True,
     ["covers this source footage"]),
    ("source_media", scope(source_media=[OTHER_SHA]), {}, False,
     [f"does not cover source footage {SOURCE_SHA[:12]}"]),
    ("source_media", scope(source_media=[SOURCE_SHA]), {"source_media_sha256": None}, False,
     ["does not cover source footage unknown"]),
]


@pytest.mark.parametrize(("name", "grant_overrides", "request_overrides", "allowed",
                          "fragments"), SCOPE_CASES,
                         ids=[f"{c[0]}-{'allow' if c[3] else 'deny'}-{i}"
                              for i, c in enumerate(SCOPE_CASES)])
def test_scope_rules(name: str, grant_overrides: dict[str, Any],
                     request_overrides: dict[str, Any], allowed: bool,
                     fragments: list[str]) -> None:
    overrides = dict(request_overrides)
    technique = overrides.pop("technique", "lip_sync")
    req = request(technique=technique, **overrides)
    d = decide(req, evidence(grants=[grant(**grant_overrides)]))
    if allowed:
        assert_allowed(d, name, *fragments)
    else:
        r = assert_denied(d, name, *fragments)
        assert r.grant_id == "grant-1"
        # only the rule under test fails
        assert [x.rule for x in d.rules if not x.passed] == [name]


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize(("now", "allowed", "fragment"), [
    (datetime.fromisoformat("2025-12-31T23:59:59Z"), False,
     "not valid before 2026-01-01T00:00:00Z"),
    (datetime.fromisoformat("2026-01-01T00:00:00Z"), True, "valid until 2027-01-01T00:00:00Z"),
    (T0, True, "valid until 2027-01-01T00:00:00Z"),
    (datetime.fromisoformat("2026-12-31T23:59:59Z"), True, "valid until"),
    (datetime.fromisoformat("2027-01-01T00:00:00Z"), False, "expired at 2027-01-01T00:00:00Z"),
    (datetime.fromisoformat("2027-01-01T01:00:00+01:00"), False, "expired at"),
    (datetime.fromisoformat("2028-01-01T00:00:00Z"), False, "expired at"),
], ids=["before-valid-from", "at-valid-from", "inside", "last-second", "at-valid-until",
        "at-valid-until-other-zone", "long-after"])
def test_validity(now: datetime, allowed: bool, fragment: str) -> None:
    d = decide(now=now)
    if allowed:
        assert_allowed(d, "validity", fragment)
    else:
        assert_denied(d, "validity", "grant grant-1", fragment)
        assert [x.rule for x in d.rules if not x.passed] == ["validity"]


# --------------------------------------------------------------------------- status

GUARDIAN_SIGNATORY = {"signatory": {"role": "guardian", "name": "Parent P",
                                    "authority_evidence": "Birth certificate 12"}}
ESTATE_SIGNATORY = {"signatory": {"role": "estate", "name": "Estate E",
                                  "authority_evidence": "Probate order 99"}}
ALL_KEYS = [
    binding(),
    binding(pk=GUARDIAN, role="guardian", authority_evidence="Birth certificate 12"),
    binding(pk=ESTATE, role="estate", authority_evidence="Probate order 99"),
]
MINOR = record(minor_until="2030-01-01")
FORMER_MINOR = record(minor_until="2026-06-01")
DECEASED = record(deceased_on="2026-03-01")
DIES_LATER = record(deceased_on="2026-06-02")


def after_death(policy: str, until: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"policy": policy}
    if until is not None:
        value["until"] = until
    return {"after_death": value}


STATUS_CASES: list[Any] = [
    # record, signing key, grant overrides, allowed, fragments
    (record(), KEY_A, {}, True, ["performer status allows the grant"]),
    (MINOR, KEY_A, {}, False,
     ["performer is a minor until 2030-01-01", "grant grant-1 needs a guardian signatory"]),
    (MINOR, GUARDIAN, GUARDIAN_SIGNATORY, True, ["minor; grant signed by a guardian"]),
    (FORMER_MINOR, KEY_A, {}, True, ["performer status allows the grant"]),
    (DECEASED, KEY_A, {}, False, ["performer deceased", "does not extend after death"]),
    (DECEASED, KEY_A, after_death("until_date", "2026-12-31"), True,
     ["performer deceased", "allows use until 2026-12-31"]),
    (DECEASED, KEY_A, after_death("until_date", "2026-06-01"), False,
     ["allowed use only until 2026-06-01"]),
    (DECEASED, KEY_A, after_death("until_date", "2026-05-01"), False,
     ["allowed use only until 2026-05-01"]),
    (DECEASED, KEY_A, after_death("estate_consent_required"), False,
     ["performer deceased", "grant grant-1 requires an estate grant"]),
    (DECEASED, ESTATE, ESTATE_SIGNATORY, True, ["grant signed by the estate"]),
    (DIES_LATER, KEY_A, {}, True, ["performer status allows the grant"]),
    (record(), ESTATE, ESTATE_SIGNATORY, False,
     ["signed by an estate but the performer is not recorded as deceased"]),
    (DIES_LATER, ESTATE, ESTATE_SIGNATORY, False, ["not recorded as deceased"]),
]


@pytest.mark.parametrize(("rec", "signer", "overrides", "allowed", "fragments"), STATUS_CASES,
                         ids=["adult", "minor-self", "minor-guardian", "minor-until-today",
                              "deceased-none", "deceased-until-later", "deceased-until-today",
                              "deceased-until-past", "deceased-estate-required",
                              "deceased-estate-grant", "deceased-tomorrow", "estate-alive",
                              "estate-before-death"])
def test_status(rec: bytes, signer: PrivateKey, overrides: dict[str, Any], allowed: bool,
                fragments: list[str]) -> None:
    ev = evidence(records=[rec], keys=ALL_KEYS, grants=[grant(signer, **overrides)])
    d = decide(ev=ev)
    if allowed:
        assert_allowed(d, "status", *fragments)
    else:
        assert_denied(d, "status", *fragments)
        assert [x.rule for x in d.rules if not x.passed] == ["status"]


def test_estate_grant_is_used_when_the_performers_own_grant_needs_one() -> None:
    own = grant(KEY_A, **after_death("estate_consent_required"))
    estate = grant(ESTATE, grant_id="grant-estate", **ESTATE_SIGNATORY)
    d = decide(ev=evidence(records=[DECEASED], keys=ALL_KEYS, grants=[own, estate]))
    assert_allowed(d, "status", "signed by the estate")
    assert [g.grant_id for g in d.grants_used] == ["grant-estate"]
    # without the estate grant, the same evidence denies
    d = decide(ev=evidence(records=[DECEASED], keys=ALL_KEYS, grants=[own]))
    assert_denied(d, "status", "requires an estate grant")


def test_status_uses_the_newest_record_revision() -> None:
    records = [record(revision=2, minor_until="2030-01-01"), record(revision=1)]
    d = decide(ev=evidence(records=records))
    assert_denied(d, "status", "minor until 2030-01-01")
    records = [record(revision=1, minor_until="2030-01-01"), record(revision=2)]
    assert_allowed(decide(ev=evidence(records=records)))


@pytest.mark.parametrize(("records", "name", "fragment"), [
    ([], "status", "no verified performer record for perf-a"),
    ([record(key=KEY_A)], "registry", "performer record for perf-a fails verification"),
    ([record(), record(revision=2, key=KEY_A)], "registry", "fails verification"),
    ([record("perf-b")], "registry", "filed under perf-a is for perf-b"),
], ids=["no-record", "record-not-by-registry", "forged-newer-revision", "record-of-other"])
def test_performer_record_must_verify(records: list[bytes], name: str, fragment: str) -> None:
    d = decide(ev=evidence(records=records))
    assert_denied(d, name, fragment)


def test_edited_record_without_minor_until_is_denied() -> None:
    """Dropping minor_until from a stored record (keeping the signature) cannot help."""
    body = json.loads(MINOR)
    del body["signed"]["minor_until"]
    d = decide(ev=evidence(records=[json.dumps(body).encode()]))
    assert_denied(d, "registry", "fails verification")


# --------------------------------------------------------------------------- revocation


@pytest.mark.parametrize(("revs", "ledger", "fragments"), [
    ([revocation()], ["grant-1"], ["grant grant-1 was revoked on 2026-05-01T09:00:00Z",
                                   "by the performer"]),
    ([revocation(by="consent_officer", key=REGISTRY)], ["grant-1"],
     ["grant grant-1 was revoked on 2026-05-01T09:00:00Z", "by the consent officer"]),
    ([revocation()], [], ["was revoked", "by the performer"]),
    ([revocation("key", KEY_A.key_id, by="consent_officer", key=REGISTRY)], [KEY_A.key_id],
     [f"the key {short_id(KEY_A.key_id)} that signed grant grant-1 was revoked on "
      "2026-05-01T09:00:00Z"]),
    ([revocation("key", KEY_A.key_id)], [], [f"the key {short_id(KEY_A.key_id)}",
                                             "was revoked"]),
    ([], ["grant-1"], ["the ledger records a revocation of grant-1",
                       "missing from the registry (tampering?)"]),
    ([], [KEY_A.key_id], [f"revocation of {KEY_A.key_id[:12]}", "tampering"]),
    ([revocation("grant", "grant-9", rev_id="rev-9")], ["grant-1", "grant-9"], ["tampering"]),
], ids=["by-performer", "by-officer", "by-performer-not-yet-ledgered", "key-by-officer",
        "key-by-performer", "ledger-only-grant", "ledger-only-key", "other-doc-only"])
def test_revocation_deny(revs: list[bytes], ledger: list[str], fragments: list[str]) -> None:
    d = decide(ev=evidence(revocations=revs, ledger_revoked=ledger))
    assert_denied(d, "revocation", *fragments)
    assert [x.rule for x in d.rules if not x.passed] == ["revocation"]


def test_revocation_of_something_else_does_not_deny() -> None:
    revs = [revocation("grant", "grant-9", rev_id="rev-9"),
            revocation("key", PrivateKey.generate().key_id, by="consent_officer",
                       key=REGISTRY, rev_id="rev-10")]
    d = decide(ev=evidence(revocations=revs, ledger_revoked=["grant-9"]))
    assert_allowed(d, "revocation", "grant grant-1 is not revoked")


def test_revoked_key_denies_every_grant_it_signed_but_not_others() -> None:
    k2 = PrivateKey.generate()
    ev = evidence(keys=[binding(), binding(pk=k2)],
                  grants=[grant(), grant(k2, grant_id="grant-2")],
                  revocations=[revocation("key", KEY_A.key_id, by="consent_officer",
                                          key=REGISTRY)],
                  ledger_revoked=[KEY_A.key_id])
    d = decide(ev=ev)
    assert_allowed(d)
    assert [g.grant_id for g in d.grants_used] == ["grant-2"]
    ev = evidence(keys=[binding(), binding(pk=k2)],
                  grants=[grant(), grant(k2, grant_id="grant-2", **scope(languages=["de"]))],
                  revocations=[revocation("key", KEY_A.key_id, by="consent_officer",
                                          key=REGISTRY)])
    d = decide(ev=ev)
    assert not d.allowed
    assert any("that signed grant grant-1 was revoked" in r for r in d.reasons)


@pytest.mark.parametrize("bad", [
    revocation(key=PrivateKey.generate()),  # performer revocation by an unknown key
    revocation(key=KEY_B),  # ... by another performer's key
    revocation(by="consent_officer", key=KEY_A),  # "officer" revocation not by the registry
    revocation(by="consent_officer", key=PrivateKey.generate()),
    _altered(revocation(), lambda s: s.update(target={"kind": "grant", "id": "grant-9"})),
    b"not json at all",
], ids=["unknown-key", "other-performer-key", "officer-by-performer-key",
        "officer-by-stranger", "altered", "garbage"])
def test_unverifiable_revocation_is_fatal(bad: bytes) -> None:
    d = decide(ev=evidence(revocations=[bad]))
    r = assert_denied(d, "registry", "a revocation on file for perf-a cannot be verified",
                      "refusing to rely on their grants")
    assert r.performer_id == "perf-a"
    # no grant is even looked at
    assert not any(x.grant_id for x in d.rules)


# --------------------------------------------------------------------------- unmatched faces


@pytest.mark.parametrize(("extra_matches", "known"), [
    ([match(track_id="t2", performer_id=None, distance=None)], []),
    ([match(track_id="t2", performer_id="perf-b")], []),
    ([], ["t1", "t2"]),
], ids=["unknown-face", "other-performers-face", "known-track"])
def test_unmatched_faces_left_untouched(extra_matches: list[gate.IdentityMatch],
                                        known: list[str]) -> None:
    d = decide(matches=[match(), *extra_matches], known_tracks=known)
    assert_allowed(d)
    assert d.untouched_tracks == ("t2",)
    r = rule(d, "unmatched_faces")
    assert r.passed and r.track_id == "t2"
    assert "face track t2 is not a consented subject; it will be left untouched" in r.detail


def test_unmatched_faces_deny_mode() -> None:
    req = request(unmatched_faces="deny")
    d = decide(req, matches=[match(), match(track_id="t2", performer_id=None, distance=None)],
               known_tracks=["t3"])
    assert not d.allowed
    failed = [r for r in d.rules if not r.passed]
    assert [r.rule for r in failed] == ["unmatched_faces", "unmatched_faces"]
    assert [r.track_id for r in failed] == ["t2", "t3"]
    assert "face track t2 is not a consented subject of this render" in failed[0].detail
    # with only the subject's face, deny mode allows
    assert_allowed(decide(req, known_tracks=["t1"]))


# --------------------------------------------------------------------------- subjects, grants


def two_subjects() -> gate.AuthorizationRequest:
    return request(subjects=[
        {"performer_id": "perf-a", "technique": "lip_sync", "track_id": "t1"},
        {"performer_id": "perf-b", "technique": "face_reenactment", "track_id": "t2"},
    ])


TWO_MATCHES = [match(), match(track_id="t2", performer_id="perf-b")]


def test_two_subjects_both_consented() -> None:
    ev = {"perf-a": evidence(), "perf-b": evidence("perf-b")}
    d = decide(two_subjects(), ev, TWO_MATCHES)
    assert_allowed(d)
    assert [(g.performer_id, g.grant_id, g.technique) for g in d.grants_used] == [
        ("perf-a", "grant-1", "lip_sync"), ("perf-b", "grant-1", "face_reenactment")]
    assert {r.performer_id for r in d.rules if r.rule == "signature"} == {"perf-a", "perf-b"}


@pytest.mark.parametrize(("ev_b", "matches", "name", "fragment"), [
    (evidence("perf-b", grants=[]), TWO_MATCHES, "grant", "perf-b has no grant on file"),
    (evidence("perf-b", grants=[grant(KEY_B, performer_id="perf-b", **scope(languages=["de"]))]),
     TWO_MATCHES, "language", "does not cover language fr-CA"),
    (evidence("perf-b"), [match(), match(track_id="t2", performer_id="perf-a")], "identity",
     "face t2 matches perf-a, not perf-b"),
    (None, TWO_MATCHES, "signature", "performer perf-b is not registered"),
], ids=["no-grant", "out-of-scope", "wrong-face", "unregistered"])
def test_two_subjects_one_not_consented(ev_b: gate.PerformerEvidence | None,
                                        matches: list[gate.IdentityMatch], name: str,
                                        fragment: str) -> None:
    ev = {"perf-a": evidence()}
    if ev_b is not None:
        ev["perf-b"] = ev_b
    d = decide(two_subjects(), ev, matches)
    assert not d.allowed
    assert d.grants_used == ()
    failed = [r for r in d.rules if not r.passed]
    assert failed and all(r.performer_id == "perf-b" for r in failed)
    assert any(r.rule == name and fragment in r.detail for r in failed), failed
    # perf-a's part was fine
    assert all(r.passed for r in d.rules if r.performer_id == "perf-a")


def test_second_grant_covers_the_request() -> None:
    first = grant(grant_id="grant-1", **scope(languages=["de"]))
    second = grant(grant_id="grant-2")
    d = decide(ev=evidence(grants=[first, second]))
    assert_allowed(d)
    assert [g.grant_id for g in d.grants_used] == ["grant-2"]
    assert d.grants_used[0].sha256 == grant_doc(grant_id="grant-2").sha256
    assert {r.grant_id for r in d.rules if r.grant_id} == {"grant-2"}


def test_no_grant_among_several_covers_the_request() -> None:
    grants = [grant(grant_id="grant-1", **scope(languages=["de"])),
              grant(grant_id="grant-2", **scope(channels=["broadcast"])),
              grant(PrivateKey.generate(), grant_id="grant-3")]
    d = decide(ev=evidence(grants=grants))
    assert not d.allowed
    r = rule(d, "grant")
    assert not r.passed
    assert "2 other grant(s) of perf-a do not cover the request either" in r.detail
    all_reasons = " | ".join(d.reasons)
    for fragment in ("does not cover language fr-CA", "does not cover channel streaming",
                     "grant grant-3 is not signed by any key registered to perf-a"):
        assert fragment in all_reasons


def test_no_grant_at_all() -> None:
    d = decide(ev=evidence(grants=[]))
    r = assert_denied(d, "grant", "perf-a has no grant on file")
    assert r.performer_id == "perf-a" and r.track_id == "t1"


def test_unregistered_performer() -> None:
    d = decide(request("perf-z"), {"perf-a": evidence()},
               [match(performer_id="perf-z")])
    assert_denied(d, "signature", "performer perf-z is not registered")


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_edit_of_the_signed_bytes_never_allows(data: st.DataObject) -> None:
    """Replacing any letter or digit of the signed payload can only turn allow into deny."""
    raw = grant()
    start = raw.index(b'"signed":') + len(b'"signed":')
    positions = [i for i in range(start, len(raw)) if chr(raw[i]).isalnum()]
    pos = data.draw(st.sampled_from(positions), label="position")
    old = chr(raw[pos])
    new = data.draw(st.sampled_from([c for c in "0123456789abcdefXYZ" if c != old]),
                    label="replacement")
    edited = raw[:pos] + new.encode() + raw[pos + 1:]
    d = decide(ev=evidence(grants=[edited]))
    assert not d.allowed
    assert not rule(d, "signature").passed


LANGS = ["fr", "fr-CA", "fr-FR", "es", "es-ES", "es-MX", "de", "de-AT", "en", "en-GB", "pt-BR"]


@settings(max_examples=80, deadline=None)
@given(granted=st.lists(st.sampled_from(LANGS), min_size=1, max_size=4, unique=True),
       requested=st.sampled_from(LANGS))
def test_language_rule_is_prefix_matching(granted: list[str], requested: str) -> None:
    d = decide(request(language=requested),
               evidence(grants=[grant(**scope(languages=granted))]))
    expected = any(requested == g or requested.startswith(g + "-") for g in granted)
    assert d.allowed is expected
    assert rule(d, "language").passed is expected


def test_identity_verdict_with_a_loose_threshold_is_denied() -> None:
    """A verdict cannot make anyone match by declaring a huge threshold."""
    d = decide(matches=[match(distance=0.9, threshold=5.0)])
    assert not d.allowed
    assert "looser than the calibrated maximum" in rule(d, "identity").detail


@pytest.mark.parametrize(("commercial", "model_allows", "allowed"), [
    (True, False, False), (True, True, True), (False, False, True)])
def test_model_licence_rule(commercial: bool, model_allows: bool, allowed: bool) -> None:
    """A commercial project may not run a model whose licence forbids commercial use."""
    use = gate.ModelUse(backend="musetalk-1.5", model="MuseTalk 1.5",
                        licence="creativeml-openrail-m" if not model_allows else "MIT",
                        commercial_use=model_allows)
    d = decide(request(commercial=commercial, models=(use,)))
    assert d.allowed is allowed
    (rule,) = [r for r in d.rules if r.rule == "model_licence"]
    assert rule.passed is allowed
    if not allowed:
        assert "does not allow commercial use" in rule.detail
