"""The memo of signature checks (consent.documents._VERIFIED): reused only for the very
bytes, signature and key it checked; tampered, forged and re-keyed documents are checked
afresh and refused, and failures are never remembered."""

from __future__ import annotations

import base64
import json

import pytest

from consent import documents
from consent.documents import Grant, SignedDocument, clear_verified_cache
from consent.errors import SignatureError
from consent.keys import PrivateKey, PublicKey
from tests.factory import signed_grant


@pytest.fixture(autouse=True)
def _cold() -> None:
    clear_verified_cache()


def _count_verifies(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = PublicKey.verify

    def spy(self: PublicKey, signature: bytes, data: bytes) -> None:
        calls.append(data)
        real(self, signature, data)

    monkeypatch.setattr(PublicKey, "verify", spy)
    return calls


def test_second_check_of_the_same_bytes_reuses_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    key = PrivateKey.generate()
    raw = signed_grant(key).raw
    calls = _count_verifies(monkeypatch)
    SignedDocument.from_bytes(raw, Grant).verify(key.public_key)
    # Reformatted bytes of the same document: same signed (canonical) bytes, same answer.
    pretty = json.dumps(json.loads(raw), indent=2).encode()
    SignedDocument.from_bytes(pretty, Grant).verify(key.public_key)
    assert len(calls) == 1


def test_tampered_body_is_checked_afresh_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    key = PrivateKey.generate()
    doc = signed_grant(key)
    doc.verify(key.public_key)
    envelope = json.loads(doc.raw)
    envelope["signed"]["compensation_reference"] = "CONTRACT-43"  # same signature, new bytes
    tampered = SignedDocument.from_bytes(json.dumps(envelope).encode(), Grant)
    calls = _count_verifies(monkeypatch)
    with pytest.raises(SignatureError):
        tampered.verify(key.public_key)
    with pytest.raises(SignatureError):  # and again: a failure is not remembered as a pass
        tampered.verify(key.public_key)
    assert len(calls) == 2


def test_other_key_with_the_same_bytes_is_not_trusted() -> None:
    """An attacker's binding claims the key id of the real signer: the memo is keyed by the
    public key's bytes, so the attacker's key is checked and refused."""
    real, forger = PrivateKey.generate(), PrivateKey.generate()
    doc = signed_grant(real)
    doc.verify(real.public_key)
    envelope = json.loads(doc.raw)
    envelope["signatures"] = [{"keyid": forger.key_id,
                               "sig": envelope["signatures"][0]["sig"]}]
    spliced = SignedDocument.from_bytes(json.dumps(envelope).encode(), Grant)
    with pytest.raises(SignatureError):
        spliced.verify(forger.public_key)


def test_forged_signature_over_known_bytes_is_refused() -> None:
    key = PrivateKey.generate()
    doc = signed_grant(key)
    doc.verify(key.public_key)
    envelope = json.loads(doc.raw)
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    forged = SignedDocument.from_bytes(json.dumps(envelope).encode(), Grant)
    with pytest.raises(SignatureError):
        forged.verify(key.public_key)


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "VERIFIED_CACHE_SIZE", 2)
    key = PrivateKey.generate()
    docs = [signed_grant(key, grant_id=f"grant-{i}") for i in range(3)]
    for d in docs:
        d.verify(key.public_key)
    assert len(documents._VERIFIED) == 2
    calls = _count_verifies(monkeypatch)
    docs[0].verify(key.public_key)  # the oldest left first: checked again
    assert len(calls) == 1
