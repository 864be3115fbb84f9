"""The last consent check and the publication are one step (SQLite and PostgreSQL).

``Registry.publish_output`` decides again and appends ``output_published`` in one transaction
holding the ledger's lock, so a revocation is ordered either before the check (nothing is
published, the ledger shows the revocation and a deny) or after the publication (the
revocation report lists the output). These tests put the revocation on each side of that
line, deterministically, and one in the middle of the publication itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from consent.errors import NotFoundError
from consent.gate import Decision
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from tests.consent.test_registry_gate import OFFICER, import_grant, ledger_ok
from tests.factory import Clock, match, request

OUTPUT = "ab" * 32
MANIFEST = "urn:c2pa:test-manifest"


def _events(registry: Registry) -> list[EventType]:
    with registry.store.session() as s:
        return [Ledger.entry(s, i).event_type for i in range(Ledger.size(s))]


def _recheck(registry: Registry, performer: PrivateKey) -> Decision:
    import_grant(registry, performer)
    decision = registry.authorize(request(), [match()])
    assert decision.allowed, decision.reasons
    return decision


class Linker:
    """Stands in for the render's exclusive link: counts links and undos."""

    def __init__(self, during: Callable[[], None] | None = None,
                 fail: BaseException | None = None) -> None:
        self.during, self.fail = during, fail
        self.linked = self.undone = 0

    def __call__(self) -> Callable[[], None]:
        if self.fail is not None:
            raise self.fail
        self.linked += 1
        if self.during is not None:
            self.during()
        return self.undo

    def undo(self) -> None:
        self.undone += 1


def _revoke(registry: Registry) -> None:
    registry.revoke_grant("grant-1", reason="withdrawn", officer=OFFICER,
                          performer_request_reference="letter")


def test_an_allowed_publication_is_linked_and_ledgered(registry: Registry,
                                                       performer: PrivateKey) -> None:
    decision = _recheck(registry, performer)
    link = Linker()
    done = registry.publish_output(request(), [match()], decision, OUTPUT, MANIFEST, link)
    assert done.output_index is not None and done.final_check.allowed
    assert (link.linked, link.undone) == (1, 0)
    with registry.store.session() as s:
        entry = Ledger.entry(s, done.output_index)
    assert entry.event_type is EventType.OUTPUT_PUBLISHED
    assert entry.body["decision_id"] == decision.decision_id  # the one the manifest names
    assert [o.output_sha256 for o in registry.revocation_report("grant-1").outputs] == [OUTPUT]
    ledger_ok(registry)


def test_a_revocation_before_the_final_check_publishes_nothing(
        registry: Registry, performer: PrivateKey, clock: Clock) -> None:
    decision = _recheck(registry, performer)
    clock.advance(seconds=1)
    _revoke(registry)  # after the re-check, before the publication
    clock.advance(seconds=1)
    link = Linker()
    done = registry.publish_output(request(), [match()], decision, OUTPUT, MANIFEST, link)
    assert done.output_index is None and not done.final_check.allowed
    assert any("revoked" in r for r in done.final_check.reasons)
    assert link.linked == 0
    events = _events(registry)
    assert events[-2:] == [EventType.REVOCATION, EventType.DECISION]
    assert EventType.OUTPUT_PUBLISHED not in events
    assert registry.decision_document(done.final_check.decision_id)["allowed"] is False
    assert registry.revocation_report("grant-1").outputs == ()
    ledger_ok(registry)


def test_a_revocation_during_the_publication_waits_and_then_lists_it(
        registry: Registry, performer: PrivateKey) -> None:
    decision = _recheck(registry, performer)
    started = threading.Event()
    errors: list[BaseException] = []

    def revoke() -> None:
        started.set()
        try:
            _revoke(registry)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    revoker = threading.Thread(target=revoke)

    def during_link() -> None:
        # Inside the publication's transaction: the revocation starts now and must wait.
        revoker.start()
        assert started.wait(10)
        revoker.join(0.5)
        assert revoker.is_alive(), "the revocation was not held back by the ledger lock"

    link = Linker(during=during_link)
    done = registry.publish_output(request(), [match()], decision, OUTPUT, MANIFEST, link)
    revoker.join(60)
    assert not revoker.is_alive() and not errors, errors
    assert done.output_index is not None
    events = _events(registry)
    assert events.index(EventType.OUTPUT_PUBLISHED) < events.index(EventType.REVOCATION)
    assert [o.output_sha256 for o in registry.revocation_report("grant-1").outputs] == [OUTPUT]
    ledger_ok(registry)


def test_a_refused_link_is_never_ledgered(registry: Registry, performer: PrivateKey) -> None:
    decision = _recheck(registry, performer)
    before = _events(registry)
    with pytest.raises(FileExistsError):
        registry.publish_output(request(), [match()], decision, OUTPUT, MANIFEST,
                                Linker(fail=FileExistsError("taken")))
    assert _events(registry) == before
    assert registry.revocation_report("grant-1").outputs == ()


def test_a_failed_append_undoes_the_link(registry: Registry, performer: PrivateKey) -> None:
    decision = _recheck(registry, performer)
    forged = replace(decision, decision_id="dec-forged")  # no such decision on record
    link = Linker()
    with pytest.raises(NotFoundError):
        registry.publish_output(request(), [match()], forged, OUTPUT, MANIFEST, link)
    assert (link.linked, link.undone) == (1, 1)
    assert EventType.OUTPUT_PUBLISHED not in _events(registry)
