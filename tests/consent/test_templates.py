"""Identity templates: encrypted at rest, bound to their performer, used only while a grant
names them, and deleted when no grant is active any more."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from sqlalchemy import select, update

from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import IdentityTemplateRow, Store
from consent.templates import TemplateKeyError, template_hash
from tests.consent.helpers import drop_guards
from tests.factory import Clock, signed_grant

REFERENCE = hashlib.sha256(b"reference clip of perf-a").hexdigest()


@pytest.fixture
def reg(store: Store, registry_key: PrivateKey, clock: Clock,
        performer_key: PrivateKey) -> Registry:
    registry = Registry(store, registry_key, "test.local/ledger", clock=clock,
                        template_key=os.urandom(32))
    registry.register_performer("perf-a", "Performer perf-a", officer="O",
                                now=clock.now.replace(year=2025))
    registry.add_key("perf-a", performer_key.public_key, officer="O",
                     now=clock.now.replace(year=2025))
    return registry


def vectors(n: int, seed: int = 0) -> list[tuple[np.ndarray, dict[str, float]]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=128).astype(np.float32), {"yaw": 1.0}) for _ in range(n)]


def test_templates_are_encrypted_and_round_trip(reg: Registry) -> None:
    vecs = vectors(3)
    stored = reg.enroll_templates("perf-a", "dlib-resnet-v1", vecs, REFERENCE, officer="O")
    assert [t.template_sha256 for t in stored] == [template_hash(v) for v, _ in vecs]
    with reg.store.session() as s:
        blobs = list(s.scalars(select(IdentityTemplateRow.ciphertext)))
    for blob, (vec, _) in zip(blobs, vecs, strict=True):
        assert vec.tobytes() not in blob
    with reg.store.session() as s:
        loaded = reg._template_store().load(s)
    assert all(np.array_equal(t.vector, v) for t, (v, _) in zip(loaded, vecs, strict=True))


def test_a_template_moved_to_another_performer_matches_nobody(reg: Registry) -> None:
    reg.register_performer("perf-b", "Performer perf-b", officer="O")
    reg.enroll_templates("perf-a", "dlib-resnet-v1", vectors(1), REFERENCE, officer="O")
    drop_guards(reg.store)  # the attacker holds the database file
    with reg.store.session() as s:
        s.execute(update(IdentityTemplateRow).values(performer_id="perf-b"))
    with reg.store.session() as s:
        assert reg._template_store().load(s) == []


def test_only_templates_named_by_an_active_grant_are_used(reg: Registry,
                                                          performer_key: PrivateKey) -> None:
    reg.enroll_templates("perf-a", "dlib-resnet-v1", vectors(2), REFERENCE, officer="O")
    assert reg.consented_templates("dlib-resnet-v1") == {}  # no grant yet
    other = hashlib.sha256(b"unrelated").hexdigest()
    reg.import_grant(signed_grant(performer_key, evidence={
        "identity_template_sha256": [other]}).raw, officer="O")
    assert reg.consented_templates("dlib-resnet-v1") == {}  # grant names other media
    reg.import_grant(signed_grant(performer_key, grant_id="grant-2", evidence={
        "identity_template_sha256": [REFERENCE]}).raw, officer="O")
    usable = reg.consented_templates("dlib-resnet-v1")
    assert len(usable["perf-a"]) == 2
    assert reg.consented_templates("another-embedder") == {}


def test_templates_are_deleted_when_the_last_grant_is_revoked(reg: Registry,
                                                               performer_key: PrivateKey,
                                                               clock: Clock) -> None:
    reg.import_grant(signed_grant(performer_key, evidence={
        "identity_template_sha256": [REFERENCE]}).raw, officer="O")
    reg.enroll_templates("perf-a", "dlib-resnet-v1", vectors(2), REFERENCE, officer="O")
    assert reg.purge_templates() == {}
    reg.revoke_grant("grant-1", reason="withdrawn", officer="O",
                     performer_request_reference="letter")
    with reg.store.session() as s:
        assert list(s.scalars(select(IdentityTemplateRow))) == []
        assert reg.ledger.verify(s).ok
        last = reg.ledger.entry(s, reg.ledger.size(s) - 1).body
    assert last["type"] == "templates_deleted"
    assert len(last["template_sha256"]) == 2


def test_templates_need_a_key(store: Store, registry_key: PrivateKey, clock: Clock) -> None:
    registry = Registry(store, registry_key, "test.local/ledger", clock=clock)
    with pytest.raises(TemplateKeyError):
        registry.consented_templates("dlib-resnet-v1")


def test_non_finite_vectors_are_refused(reg: Registry) -> None:
    bad = np.full(128, np.nan, dtype=np.float32)
    with pytest.raises(Exception, match="non-finite"):
        reg.enroll_templates("perf-a", "dlib-resnet-v1", [(bad, {})], REFERENCE, officer="O")
