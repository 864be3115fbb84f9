"""Tests for consent.keys: Ed25519 keys, fingerprints, passphrase-protected PEM storage."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consent.errors import DocumentError, PassphraseError, SignatureError
from consent.keys import (
    MIN_PASSPHRASE_LENGTH,
    PrivateKey,
    PublicKey,
    key_id_of,
    load_public_key,
    short_id,
)

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate()


def _raw_public(key: PrivateKey) -> bytes:
    return key.crypto_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


# --------------------------------------------------------------------------- sign / verify


def test_generate_gives_distinct_keys() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a.key_id != b.key_id
    assert a.public_key.raw != b.public_key.raw


def test_sign_and_verify(key: PrivateKey) -> None:
    message = b"I consent to lip-sync of The Film"
    sig = key.sign(message)
    assert len(sig) == 64
    key.public_key.verify(sig, message)
    # Independently, with cryptography's own API.
    Ed25519PublicKey.from_public_bytes(key.public_key.raw).verify(sig, message)


def test_signatures_are_deterministic(key: PrivateKey) -> None:
    assert key.sign(b"m") == key.sign(b"m")


def test_key_id_is_sha256_of_raw_public_key(key: PrivateKey) -> None:
    raw = _raw_public(key)
    expected = hashlib.sha256(raw).hexdigest()
    assert key.public_key.raw == raw
    assert key.key_id == expected
    assert key.public_key.key_id == expected
    assert key_id_of(raw) == expected
    assert len(key.key_id) == 64
    assert short_id(key.key_id) == "ed25519:" + expected[:12]


def test_verify_fails_on_flipped_message_bit(key: PrivateKey) -> None:
    message = b"grant-1 for perf-a"
    sig = key.sign(message)
    for bit in (0, 7, 8 * len(message) - 1):
        tampered = bytearray(message)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SignatureError, match="does not verify"):
            key.public_key.verify(sig, bytes(tampered))


def test_verify_fails_on_flipped_signature_bit(key: PrivateKey) -> None:
    message = b"grant-1 for perf-a"
    sig = key.sign(message)
    for bit in (0, 100, 511):
        tampered = bytearray(sig)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SignatureError, match="does not verify"):
            key.public_key.verify(bytes(tampered), message)


def test_verify_fails_with_other_key(key: PrivateKey) -> None:
    other = PrivateKey.generate()
    with pytest.raises(SignatureError, match=short_id(other.key_id)):
        other.public_key.verify(key.sign(b"m"), b"m")


def test_verify_fails_on_truncated_signature(key: PrivateKey) -> None:
    with pytest.raises(SignatureError):
        key.public_key.verify(key.sign(b"m")[:63], b"m")


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_public_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(DocumentError, match=f"32 bytes, got {length}"):
        PublicKey(b"\x01" * length)


# --------------------------------------------------------------------------- private key PEM


def test_encrypted_pem_round_trip(key: PrivateKey) -> None:
    pem = key.to_pem(PASSPHRASE)
    assert b"ENCRYPTED" in pem
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = PrivateKey.from_pem(pem, PASSPHRASE)
    assert loaded.key_id == key.key_id
    assert loaded.sign(b"x") == key.sign(b"x")


def test_unencrypted_pem_round_trip(key: PrivateKey) -> None:
    pem = key.to_pem(None)
    assert b"ENCRYPTED" not in pem
    assert PrivateKey.from_pem(pem, None).key_id == key.key_id


def test_wrong_passphrase(key: PrivateKey) -> None:
    pem = key.to_pem(PASSPHRASE)
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        PrivateKey.from_pem(pem, b"not the passphrase")


def test_missing_passphrase(key: PrivateKey) -> None:
    pem = key.to_pem(PASSPHRASE)
    with pytest.raises(PassphraseError, match="cannot open private key"):
        PrivateKey.from_pem(pem, None)


def test_passphrase_for_unencrypted_key(key: PrivateKey) -> None:
    with pytest.raises(PassphraseError):
        PrivateKey.from_pem(key.to_pem(None), PASSPHRASE)


@pytest.mark.parametrize("passphrase", [b"", b"a", b"1234567"])
def test_short_passphrase_refused(key: PrivateKey, passphrase: bytes) -> None:
    assert len(passphrase) < MIN_PASSPHRASE_LENGTH
    with pytest.raises(PassphraseError, match=f"at least {MIN_PASSPHRASE_LENGTH} characters"):
        key.to_pem(passphrase)


def test_passphrase_of_minimum_length_accepted(key: PrivateKey) -> None:
    passphrase = b"x" * MIN_PASSPHRASE_LENGTH
    assert PrivateKey.from_pem(key.to_pem(passphrase), passphrase).key_id == key.key_id


def test_garbage_is_not_a_private_key() -> None:
    with pytest.raises(PassphraseError, match="not a PEM private key"):
        PrivateKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                            None)


def test_non_ed25519_private_key_refused() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    with pytest.raises(DocumentError, match="expected an Ed25519 private key"):
        PrivateKey.from_pem(ec_pem, PASSPHRASE)


# --------------------------------------------------------------------------- save / load


def test_save_and_load(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "keys" / "performer.pem"
    key.save(path, PASSPHRASE)
    data = path.read_bytes()
    assert b"ENCRYPTED" in data
    assert PrivateKey.load(path, PASSPHRASE).key_id == key.key_id
    with pytest.raises(PassphraseError):
        PrivateKey.load(path, b"wrong passphrase")
    with pytest.raises(PassphraseError):
        PrivateKey.load(path, None)


def test_saved_with_owner_only_mode(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "k.pem"
    old = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        key.save(path, PASSPHRASE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_never_overwrites(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        key.save(path, PASSPHRASE)
    assert path.read_bytes() == b"precious"


def test_save_never_overwrites_an_existing_key(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "k.pem"
    key.save(path, PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        PrivateKey.generate().save(path, PASSPHRASE)
    assert path.read_bytes() == before
    assert PrivateKey.load(path, PASSPHRASE).key_id == key.key_id


def test_refused_save_leaves_no_file(tmp_path: Path, key: PrivateKey) -> None:
    path = tmp_path / "k.pem"
    with pytest.raises(PassphraseError):
        key.save(path, b"short")
    # A refused save must not leave a (empty) file behind that blocks the retry.
    assert not path.exists()
    key.save(path, PASSPHRASE)
    assert PrivateKey.load(path, PASSPHRASE).key_id == key.key_id


# --------------------------------------------------------------------------- public keys


def test_public_key_pem_round_trip(key: PrivateKey) -> None:
    pem = key.public_key.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert PublicKey.from_pem(pem) == key.public_key
    assert load_public_key(pem) == key.public_key
    assert load_public_key(b"\n  " + pem + b"\n\n") == key.public_key


def test_public_key_base64_round_trip(key: PrivateKey) -> None:
    text = key.public_key.to_base64()
    assert base64.b64decode(text) == key.public_key.raw
    assert len(text) == 44
    assert PublicKey.from_base64(text) == key.public_key
    assert load_public_key(text.encode() + b"\n") == key.public_key


def test_public_key_from_cryptography_pem(key: PrivateKey) -> None:
    pem = key.crypto_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert PublicKey.from_pem(pem).key_id == key.key_id


@pytest.mark.parametrize(
    "text",
    ["not base64!", "AAAA", "", base64.b64encode(b"\x00" * 31).decode(),
     base64.b64encode(b"\x00" * 33).decode()],
)
def test_bad_base64_public_key(text: str) -> None:
    with pytest.raises(DocumentError):
        PublicKey.from_base64(text)


def test_ec_p256_public_key_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(DocumentError, match="expected an Ed25519 public key"):
        PublicKey.from_pem(pem)
    with pytest.raises(DocumentError, match="expected an Ed25519 public key"):
        load_public_key(pem)


def test_rsa_public_key_refused() -> None:
    pem = rsa.generate_private_key(65537, 2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(DocumentError, match="expected an Ed25519 public key"):
        load_public_key(pem)


def test_garbage_pem_public_key_refused() -> None:
    with pytest.raises(DocumentError, match="not a PEM public key"):
        PublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_private_key_pem_is_not_a_public_key(key: PrivateKey) -> None:
    with pytest.raises(DocumentError):
        load_public_key(key.to_pem(None))
