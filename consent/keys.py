"""Ed25519 keys: generation, fingerprints, passphrase-protected storage, sign and verify.

All cryptography comes from ``cryptography``; nothing here is hand-rolled. A key id is the
SHA-256 of the raw 32-byte public key, in hex, as in TUF: stable, self-certifying and the
same whatever file format carried the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.errors import DocumentError, PassphraseError, SignatureError

MIN_PASSPHRASE_LENGTH = 8


def key_id_of(raw_public_key: bytes) -> str:
    """The key id (fingerprint): hex SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key).hexdigest()


def short_id(key_id: str) -> str:
    """A short form for people: ``ed25519:1a2b3c4d5e6f``."""
    return f"ed25519:{key_id[:12]}"


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key and its fingerprint."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise DocumentError(f"an Ed25519 public key is 32 bytes, got {len(self.raw)}")

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    def to_base64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    @classmethod
    def from_base64(cls, text: str) -> PublicKey:
        try:
            return cls(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise DocumentError("public key is not valid base64") from None

    def to_pem(self) -> bytes:
        return self.crypto_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise DocumentError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise DocumentError(f"expected an Ed25519 public key, got {type(key).__name__}")
        return cls(key.public_bytes_raw())

    @property
    def crypto_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is this key's over ``data``."""
        try:
            self.crypto_key.verify(signature, data)
        except InvalidSignature:
            raise SignatureError(
                f"signature does not verify with key {short_id(self.key_id)}"
            ) from None


class PrivateKey:
    """An Ed25519 private key. Stored only as PKCS#8 PEM, encrypted when a passphrase is given."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = PublicKey(key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    @property
    def crypto_key(self) -> Ed25519PrivateKey:
        """The underlying ``cryptography`` key, for APIs that need it (signed notes)."""
        return self._key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def to_pem(self, passphrase: bytes | None) -> bytes:
        if passphrase is not None and len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise PassphraseError(
                f"passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError as exc:
            # cryptography raises TypeError when a passphrase is missing or superfluous.
            raise PassphraseError(f"cannot open private key: {exc}") from None
        except ValueError:
            raise PassphraseError(
                "cannot open private key: wrong passphrase or not a PEM private key"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise DocumentError(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def save(self, path: Path, passphrase: bytes | None) -> None:
        """Write the key with owner-only permissions, never overwriting an existing file."""
        pem = self.to_pem(passphrase)  # refuse a bad passphrase before creating the file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None) -> PrivateKey:
        return cls.from_pem(path.read_bytes(), passphrase)


def load_public_key(data: bytes) -> PublicKey:
    """Read a public key from PEM or from a bare base64 string of the 32 raw bytes."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        return PublicKey.from_pem(text)
    return PublicKey.from_base64(text.decode("ascii", errors="replace"))
