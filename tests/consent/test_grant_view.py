"""The gate's parsed-grant views (consent.grant_view): reused only for the very bytes they
were parsed from (keyed by those bytes' SHA-256), their signature checks only for the very
bytes, signature and key checked; edited, forged and re-keyed grants are parsed and checked
afresh and refused, and refusals are never remembered."""

from __future__ import annotations

import base64
import json

import pytest

from consent import grant_view
from consent.documents import SignedDocument, clear_verified_cache
from consent.errors import DocumentError, SignatureError
from consent.keys import PrivateKey, PublicKey
from tests.factory import signed_grant


@pytest.fixture(autouse=True)
def _cold() -> None:
    clear_verified_cache()


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = SignedDocument._parse

    def spy(raw: bytes, payload_type: type) -> SignedDocument:  # type: ignore[type-arg]
        calls.append(raw)
        return real(raw, payload_type)

    monkeypatch.setattr(SignedDocument, "_parse", staticmethod(spy))
    from consent import documents
    documents._parse_cached.cache_clear()
    return calls


def _count_verifies(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = PublicKey.verify

    def spy(self: PublicKey, signature: bytes, data: bytes) -> None:
        calls.append(data)
        real(self, signature, data)

    monkeypatch.setattr(PublicKey, "verify", spy)
    return calls


def test_same_bytes_are_parsed_and_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    key = PrivateKey.generate()
    doc = signed_grant(key)
    parses, verifies = _count_parses(monkeypatch), _count_verifies(monkeypatch)
    first = grant_view.parse(doc.raw)
    assert grant_view.parse(bytes(doc.raw)) is first
    assert grant_view.verify(first, doc.raw, key.public_key) == doc.sha256
    assert grant_view.verify(first, doc.raw, key.public_key) == doc.sha256
    assert (len(parses), len(verifies)) == (1, 1)
    assert first.grant_id == doc.payload.grant_id
    assert first.languages == doc.payload.scope.languages


def test_edited_bytes_miss_the_cache_and_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row rewritten under the same grant id (same signature) is a new byte string: parsed
    afresh, and its signature check fails, every time."""
    key = PrivateKey.generate()
    doc = signed_grant(key)
    view = grant_view.parse(doc.raw)
    grant_view.verify(view, doc.raw, key.public_key)
    envelope = json.loads(doc.raw)
    envelope["signed"]["scope"]["languages"] = ["fr", "de"]
    edited = json.dumps(envelope).encode()
    verifies = _count_verifies(monkeypatch)
    other = grant_view.parse(edited)
    assert other is not view and other.languages == ("fr", "de")
    for _ in range(2):  # a failure is not remembered as a pass
        with pytest.raises(SignatureError):
            grant_view.verify(other, edited, key.public_key)
    assert len(verifies) == 2


def test_a_view_is_never_checked_against_other_bytes() -> None:
    """Whatever a caller passes, the bytes checked are the view's own: a view of a good grant
    cannot vouch for other bytes, nor other bytes for it."""
    key = PrivateKey.generate()
    good, other = signed_grant(key), signed_grant(key, grant_id="grant-other")
    view = grant_view.parse(good.raw)
    grant_view.verify(view, good.raw, key.public_key)
    with pytest.raises(SignatureError):
        grant_view.verify(view, other.raw, key.public_key)


def test_the_last_parsed_slot_serves_only_its_own_bytes() -> None:
    """The one-slot keep of the last parsed grant (for the check that follows a cold parse)
    never lends its document to another view: an edited copy parsed after the good grant
    does not make the good one's check use it, nor the good one's parse vouch for it."""
    key = PrivateKey.generate()
    good = signed_grant(key)
    envelope = json.loads(good.raw)
    envelope["signed"]["scope"]["territories"] = ["worldwide"]
    edited = json.dumps(envelope).encode()
    good_view = grant_view.parse(good.raw)
    edited_view = grant_view.parse(edited)  # the slot now holds the edited document
    assert grant_view.verify(good_view, good.raw, key.public_key) == good.sha256
    grant_view.parse(good.raw)  # cached view: the slot still holds the edited document
    for raw in (edited, good.raw):
        with pytest.raises(SignatureError):
            grant_view.verify(edited_view, raw, key.public_key)


def test_spliced_and_forged_signatures_are_refused() -> None:
    real, forger = PrivateKey.generate(), PrivateKey.generate()
    doc = signed_grant(real)
    grant_view.verify(grant_view.parse(doc.raw), doc.raw, real.public_key)
    envelope = json.loads(doc.raw)
    envelope["signatures"] = [{"keyid": forger.key_id,
                               "sig": envelope["signatures"][0]["sig"]}]
    spliced = json.dumps(envelope).encode()
    with pytest.raises(SignatureError):
        grant_view.verify(grant_view.parse(spliced), spliced, forger.public_key)
    envelope = json.loads(doc.raw)
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    forged = json.dumps(envelope).encode()
    with pytest.raises(SignatureError):
        grant_view.verify(grant_view.parse(forged), forged, real.public_key)
    with pytest.raises(SignatureError):  # no signature by that key at all
        grant_view.verify(grant_view.parse(doc.raw), doc.raw, forger.public_key)


def test_unreadable_grants_are_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    key = PrivateKey.generate()
    envelope = json.loads(signed_grant(key).raw)
    envelope["signed"]["grant_id"] = 5
    bad = json.dumps(envelope).encode()
    parses = _count_parses(monkeypatch)
    for _ in range(2):
        with pytest.raises(DocumentError, match="grant_id: expected a string, got int"):
            grant_view.parse(bad)
    assert len(parses) == 2


def test_views_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grant_view, "VIEW_CACHE_SIZE", 2)
    key = PrivateKey.generate()
    docs = [signed_grant(key, grant_id=f"grant-{i}") for i in range(3)]
    for d in docs:
        grant_view.verify(grant_view.parse(d.raw), d.raw, key.public_key)
    assert len(grant_view._VIEWS) == 2 and len(grant_view._VERIFIED) == 2
    parses = _count_parses(monkeypatch)
    grant_view.parse(docs[0].raw)  # the oldest left first: parsed again
    assert len(parses) == 1
