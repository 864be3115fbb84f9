"""Registry.import_grant: every refusal has its precise error and stores nothing.

Runs on SQLite and PostgreSQL (the ``registry`` fixture is parametrised over both).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from consent.documents import Grant, sign_draft
from consent.errors import (
    ClockError,
    ConsentError,
    DocumentError,
    DocumentTooLargeError,
    DuplicateError,
    ExpiredError,
    KeyUnusableError,
    NotFoundError,
    SignatureError,
    UnknownKeyError,
)
from consent.fields import format_timestamp
from consent.keys import PrivateKey, short_id
from consent.registry import Registry
from consent.store import GrantRow, LedgerEntryRow
from tests.factory import T0, grant_draft, signed_grant

OFFICER = "Officer O"


# --------------------------------------------------------------------------- helpers


def snapshot(registry: Registry) -> tuple[Any, ...]:
    grants = [(g.grant_id, g.sha256, g.status) for g in registry.grants()]
    with registry.store.session() as s:
        size = registry.ledger.size(s)
        rows = s.scalar(select(func.count()).select_from(GrantRow))
        entries = s.scalar(select(func.count()).select_from(LedgerEntryRow))
    return grants, size, rows, entries


def assert_refused(registry: Registry, raw: bytes, error: type[ConsentError], match: str = "",
                   **kwargs: Any) -> ConsentError:
    """Import ``raw``; it must raise exactly ``error`` and leave the registry unchanged."""
    before = snapshot(registry)
    with pytest.raises(error, match=match) as info:
        registry.import_grant(raw, officer=OFFICER, **kwargs)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert snapshot(registry) == before
    return info.value


def stored_document(registry: Registry, grant_id: str) -> bytes:
    with registry.store.session() as s:
        row = s.get(GrantRow, grant_id)
        assert row is not None
        return bytes(row.document)


def register(registry: Registry, performer_id: str, key: PrivateKey) -> None:
    registry.register_performer(performer_id, f"Performer {performer_id}", officer=OFFICER,
                                now=T0.replace(year=2025))
    registry.add_key(performer_id, key.public_key, officer=OFFICER, now=T0.replace(year=2025))


# --------------------------------------------------------------------------- success


def test_import_stores_raw_bytes_exactly(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer)
    data = json.loads(doc.raw)
    odd = (
        "\n\t  {\r\n   \"signatures\" :\t"
        + json.dumps(data["signatures"], indent=5)
        + " ,\n\n\"signed\":"
        + json.dumps(data["signed"], indent="\t", ensure_ascii=True, sort_keys=False)
        + "\r\n}\n   \n"
    ).encode()
    assert odd != doc.raw
    before = snapshot(registry)
    status = registry.import_grant(odd, officer=OFFICER)
    assert status.status == "active", status.detail
    assert status.grant_id == "grant-1"
    assert status.performer_id == "perf-a"
    assert status.signer_key_id == performer.key_id
    assert status.sha256 == doc.sha256
    assert stored_document(registry, "grant-1") == odd
    assert registry.grant("grant-1").status == "active"
    assert [g.grant_id for g in registry.grants()] == ["grant-1"]
    with registry.store.session() as s:
        assert registry.ledger.size(s) == before[1] + 1
    assert status.ledger_index == before[1]


def test_import_canonical_file_stores_it_exactly(registry: Registry,
                                                 performer: PrivateKey) -> None:
    doc = signed_grant(performer, performer={"legal_name": "Zo\u00eb Salda\u00f1a"})
    raw = json.dumps(json.loads(doc.raw), ensure_ascii=False, indent=2).encode("utf-8")
    assert registry.import_grant(raw, officer=OFFICER).status == "active"
    assert stored_document(registry, "grant-1") == raw


def test_import_with_aware_non_utc_now(registry: Registry, performer: PrivateKey) -> None:
    tokyo = timezone(timedelta(hours=9))
    status = registry.import_grant(signed_grant(performer).raw, officer=OFFICER,
                                   now=T0.astimezone(tokyo))
    assert status.status == "active"


def test_countersigned_grant_imports(registry: Registry, performer: PrivateKey) -> None:
    production = PrivateKey.generate()
    registry.add_production_key("Dub House Ltd", production.public_key, officer=OFFICER)
    doc = sign_draft(Grant, grant_draft(), [production, performer])
    status = registry.import_grant(doc.raw, officer=OFFICER)
    assert status.status == "active"
    assert status.signer_key_id == performer.key_id


def test_not_yet_valid_grant_imports(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, valid_from="2026-09-01T00:00:00Z")
    assert registry.import_grant(doc.raw, officer=OFFICER).status == "not_yet_valid"


def test_signed_at_within_clock_skew_accepted(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, signed_at=format_timestamp(T0 + timedelta(minutes=4)))
    assert registry.import_grant(doc.raw, officer=OFFICER).status == "active"


# --------------------------------------------------------------------------- refusals


def test_malformed_json(registry: Registry, performer: PrivateKey) -> None:
    raw = signed_grant(performer).raw
    assert_refused(registry, raw[:-1], DocumentError, "malformed JSON")
    assert_refused(registry, b"", DocumentError, "empty")
    assert_refused(registry, b"\xff\xfe{}", DocumentError, "not UTF-8")


def test_invalid_payload(registry: Registry, performer: PrivateKey) -> None:
    data = json.loads(signed_grant(performer).raw)
    data["signed"]["extra"] = 1
    assert_refused(registry, json.dumps(data).encode(), DocumentError, "extra: unknown field")


def test_ten_megabyte_document(registry: Registry, performer: PrivateKey) -> None:
    data = json.loads(signed_grant(performer).raw)
    data["signed"]["scope"]["purpose"] = "x" * (10 * 1024 * 1024)
    assert_refused(registry, json.dumps(data).encode(), DocumentTooLargeError, "limit")


def test_unknown_performer(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, performer_id="perf-zzz")
    assert_refused(registry, doc.raw, NotFoundError, "perf-zzz is not registered")


def test_signed_by_unknown_key(registry: Registry, performer: PrivateKey) -> None:
    stranger = PrivateKey.generate()
    doc = signed_grant(stranger)
    err = assert_refused(registry, doc.raw, UnknownKeyError, "not a key registered to perf-a")
    assert short_id(stranger.key_id) in str(err)


def test_signed_with_another_performers_key(registry: Registry, performer: PrivateKey) -> None:
    key_b = PrivateKey.generate()
    register(registry, "perf-b", key_b)
    doc = signed_grant(key_b)  # a grant for perf-a, signed by perf-b's key
    err = assert_refused(registry, doc.raw, UnknownKeyError, "of performer perf-b")
    assert short_id(key_b.key_id) in str(err)


def test_bad_signature(registry: Registry, performer: PrivateKey) -> None:
    data = json.loads(signed_grant(performer).raw)
    data["signed"]["scope"]["territories"] = ["worldwide"]
    assert_refused(registry, json.dumps(data).encode(), SignatureError, "does not verify")


def test_signature_over_other_bytes(registry: Registry, performer: PrivateKey) -> None:
    data = json.loads(signed_grant(performer).raw)
    data["signatures"][0]["sig"] = base64.b64encode(performer.sign(b"other")).decode()
    assert_refused(registry, json.dumps(data).encode(), SignatureError, "does not verify")


def test_signatory_role_must_match_key_holder(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, signatory={"role": "guardian", "name": "Parent P",
                                             "authority_evidence": "Court order 7"})
    assert_refused(registry, doc.raw, SignatureError, "belongs to a self")


def test_revoked_key(registry: Registry, performer: PrivateKey) -> None:
    registry.revoke_key(performer.key_id, reason="Laptop stolen.", officer=OFFICER,
                        performer_request_reference="email 2026-05-30")
    assert_refused(registry, signed_grant(performer).raw, KeyUnusableError, "has been revoked")


def test_retired_key_after_rotation(registry: Registry, performer: PrivateKey) -> None:
    new_key = PrivateKey.generate()
    registry.rotate_key("perf-a", performer.key_id, new_key.public_key, officer=OFFICER)
    err = assert_refused(registry, signed_grant(performer).raw, KeyUnusableError, "retired")
    assert short_id(new_key.key_id) in str(err)
    # The current key still works.
    assert registry.import_grant(signed_grant(new_key).raw, officer=OFFICER).status == "active"


def test_duplicate_import(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer)
    registry.import_grant(doc.raw, officer=OFFICER)
    assert_refused(registry, doc.raw, DuplicateError, "grant-1 is already imported")
    # The same document in other formatting is the same document.
    pretty = json.dumps(json.loads(doc.raw), indent=2).encode()
    err = assert_refused(registry, pretty, DuplicateError, "already imported")
    assert "different content" not in str(err)
    assert stored_document(registry, "grant-1") == doc.raw


def test_reimport_with_changed_field(registry: Registry, performer: PrivateKey) -> None:
    registry.import_grant(signed_grant(performer).raw, officer=OFFICER)
    changed = signed_grant(performer, scope={"territories": ["worldwide"]})
    assert_refused(registry, changed.raw, DuplicateError, "different content")


def test_already_expired(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, valid_until="2026-05-01T00:00:00Z")
    assert_refused(registry, doc.raw, ExpiredError, "expired at 2026-05-01T00:00:00Z")


def test_expiring_exactly_now(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, valid_until=format_timestamp(T0))
    assert_refused(registry, doc.raw, ExpiredError, "expired")


def test_expired_relative_to_explicit_now(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer)
    later = datetime(2027, 6, 1, tzinfo=T0.tzinfo)
    assert_refused(registry, doc.raw, ExpiredError, "expired", now=later)


def test_signed_in_the_future(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer, signed_at=format_timestamp(T0 + timedelta(days=1)))
    assert_refused(registry, doc.raw, DocumentError, "in the future")


def test_naive_now(registry: Registry, performer: PrivateKey) -> None:
    doc = signed_grant(performer)
    assert_refused(registry, doc.raw, ClockError, "naive", now=datetime(2026, 6, 1, 12))


def test_naive_clock(registry: Registry, performer: PrivateKey) -> None:
    registry.clock = lambda: datetime(2026, 6, 1, 12)
    with pytest.raises(ClockError):
        registry.import_grant(signed_grant(performer).raw, officer=OFFICER)
