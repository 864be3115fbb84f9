"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint).

Why this format: a checkpoint of the consent ledger is published as a signed note, the text
format used by Go's checksum database, Sigstore and the transparency-dev witnesses, so that
third parties can verify and cosign it with tools nobody here wrote. Only Ed25519 (signature
type 0x01) is implemented, which is all the studio needs.

A signed note is the note text (non-empty, every line ending in newline), a blank line, then
one or more lines ``"— " + key name + " " + base64(key ID || signature) + "\\n"``. The key ID
is the first four bytes of SHA-256(name || 0x0A || 0x01 || public key), big-endian.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "InvalidSignatureError",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "UnverifiedNoteError",
    "WrongOriginError",
    "cosign_note",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
]

MAX_NOTE_SIZE = 1 << 20
"""Largest signed note accepted, in UTF-8 bytes: parsing cost stays bounded."""

MAX_SIGNATURES = 100
"""Most signature lines accepted (the spec requires at least 16)."""

ED25519_ALG = 0x01
_SIG_PREFIX = "\u2014 "  # EM DASH, space
_SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
_ROOT_SIZE = 32
_ED25519_SIG_SIZE = 64
_MAX_TREE_SIZE = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


# --------------------------------------------------------------------------- errors


class NoteError(ValueError):
    """Base class: a note cannot be signed, parsed or trusted."""


class MalformedNoteError(NoteError):
    """The bytes are not a well-formed signed note (or note text, or key string)."""


class MalformedCheckpointError(MalformedNoteError):
    """The note text is not a well-formed tlog checkpoint."""


class UnverifiedNoteError(NoteError):
    """No signature from any of the given verifiers is on the note.

    ``note`` carries the parsed text and the unverified signature lines, for diagnostics
    only: its text must not be trusted.
    """

    def __init__(self, message: str, note: Note) -> None:
        super().__init__(message)
        self.note = note


class InvalidSignatureError(NoteError):
    """A signature from a known key (name and key ID both match) does not verify."""


class WrongOriginError(NoteError):
    """A validly signed checkpoint names a different log than the one expected."""


# --------------------------------------------------------------------------- keys


def _check_name(name: str) -> None:
    """Key names: non-empty, no Unicode whitespace, no '+', valid UTF-8 (spec §Format)."""
    if not isinstance(name, str) or not name:
        raise MalformedNoteError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise MalformedNoteError(f"key name {name!r} must not contain whitespace or '+'")
    if any(ord(ch) < 0x20 for ch in name):
        raise MalformedNoteError(f"key name {name!r} must not contain control characters")
    _utf8(name, "key name")


def _utf8(text: str, what: str) -> bytes:
    """Encode strictly: a lone surrogate in a str is not valid UTF-8 and cannot be signed."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedNoteError(f"{what} is not valid UTF-8: {exc.reason}") from exc


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding the key ID and key strings are defined over."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, public_key: Ed25519PublicKey) -> int:
    """Key ID = big-endian uint32 of SHA-256(name || 0x0A || 0x01 || raw public key)[:4]."""
    _check_name(name)
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + _raw_public(public_key)
    ).digest()
    value: int = struct.unpack(">I", digest[:4])[0]
    return value


def _b64decode(text: str, what: str) -> bytes:
    """Standard, padded base64 (RFC 4648 §4) and nothing else.

    Python's decoder tolerates surplus padding, so the shape is checked first; this matches
    what Go's base64.StdEncoding accepts for the same strings.
    """
    if not _BASE64.fullmatch(text):
        raise MalformedNoteError(f"{what} is not valid base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedNoteError(f"{what} is not valid base64") from exc


class NoteVerifier:
    """An Ed25519 public key under a name: checks signatures made by the matching signer."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_name(name)
        self.name = name
        self.public_key = public_key
        self.key_hash = key_hash(name, public_key)

    def __repr__(self) -> str:
        return f"NoteVerifier({self.verifier_key()!r})"

    def verifier_key(self) -> str:
        """``name+hex8(key ID)+base64(0x01 || public key)``, as golang.org/x/mod/sumdb/note."""
        encoded = base64.b64encode(bytes([ED25519_ALG]) + _raw_public(self.public_key))
        return f"{self.name}+{self.key_hash:08x}+{encoded.decode('ascii')}"

    @classmethod
    def from_verifier_key(cls, key: str) -> NoteVerifier:
        """Parse a verifier key string; the embedded key ID must match the key."""
        name, hex8, b64 = _split_key_string(key, "verifier key")
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[0] != ED25519_ALG:
            raise MalformedNoteError("verifier key is not an Ed25519 (type 0x01) public key")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError as exc:
            raise MalformedNoteError("verifier key is not a valid Ed25519 public key") from exc
        verifier = cls(name, public_key)
        if verifier.key_hash != int(hex8, 16):
            raise MalformedNoteError(f"verifier key for {name!r} has a mismatched key ID")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature over ``message``."""
        if len(signature) != _ED25519_SIG_SIZE:
            return False
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """An Ed25519 private key under a name: produces signature lines for notes."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.key_hash = key_hash(name, self.public_key)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_hash={self.key_hash:08x})"

    def verifier(self) -> NoteVerifier:
        """The verifier for this signer's public key."""
        return NoteVerifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature over the exact note text bytes."""
        return self.private_key.sign(message)

    def signer_key(self) -> str:
        """``PRIVATE+KEY+name+hex8+base64(0x01 || seed)``, as golang.org/x/mod/sumdb/note."""
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        encoded = base64.b64encode(bytes([ED25519_ALG]) + seed).decode("ascii")
        return f"{_SIGNER_KEY_PREFIX}{self.name}+{self.key_hash:08x}+{encoded}"

    @classmethod
    def from_signer_key(cls, key: str) -> NoteSigner:
        """Parse a signer key string; the embedded key ID must match the derived public key."""
        if not key.startswith(_SIGNER_KEY_PREFIX):
            raise MalformedNoteError("signer key must start with PRIVATE+KEY+")
        name, hex8, b64 = _split_key_string(key[len(_SIGNER_KEY_PREFIX) :], "signer key")
        raw = _b64decode(b64, "signer key")
        if len(raw) != 33 or raw[0] != ED25519_ALG:
            raise MalformedNoteError("signer key is not an Ed25519 (type 0x01) private key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_hash != int(hex8, 16):
            raise MalformedNoteError(f"signer key for {name!r} has a mismatched key ID")
        return signer


def _split_key_string(key: str, what: str) -> tuple[str, str, str]:
    """Split ``name+hex8+base64`` at the first two pluses (base64 itself may contain +)."""
    parts = key.split("+", 2)
    if len(parts) != 3:
        raise MalformedNoteError(f"{what} must have the form name+keyid+key")
    name, hex8, b64 = parts
    _check_name(name)
    if not _HEX8.fullmatch(hex8):
        raise MalformedNoteError(f"{what} key ID must be 8 hexadecimal digits")
    return name, hex8, b64


# --------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID, and the base64 of (key ID || signature)."""

    name: str
    key_hash: int
    base64: str

    @property
    def line(self) -> str:
        """The signature line as it appears in the note, newline included."""
        return f"{_SIG_PREFIX}{self.name} {self.base64}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified, and those from unknown keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified_signatures: tuple[Signature, ...] = ()

    @property
    def verified_names(self) -> tuple[str, ...]:
        """Names of the keys whose signatures verified, in note order."""
        return tuple(sig.name for sig in self.signatures)


def _check_text(text: str) -> bytes:
    """Note text: non-empty, ends in newline, valid UTF-8, no control chars but newline."""
    if not isinstance(text, str) or not text:
        raise MalformedNoteError("note text must be a non-empty string")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    _check_controls(text, "note text")
    return _utf8(text, "note text")


def _check_controls(text: str, what: str) -> None:
    """The spec forbids every ASCII control character except newline."""
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise MalformedNoteError(f"{what} contains control character {ch!r}")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign ``text`` with every signer; returns text, blank line, one line per signer."""
    message = _check_text(text)
    if not signers:
        raise NoteError("at least one signer is required")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signers")
    seen: set[tuple[str, int]] = set()
    lines = []
    for signer in signers:
        ident = (signer.name, signer.key_hash)
        if ident in seen:
            raise NoteError(f"duplicate signer {signer.name!r} ({signer.key_hash:08x})")
        seen.add(ident)
        payload = struct.pack(">I", signer.key_hash) + signer.sign(message)
        lines.append(Signature(signer.name, signer.key_hash, _b64(payload)).line)
    signed = text + "\n" + "".join(lines)
    if len(signed.encode("utf-8")) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"signed note would exceed {MAX_NOTE_SIZE} bytes")
    return signed


def _b64(data: bytes) -> str:
    """Standard padded base64 as text."""
    return base64.b64encode(data).decode("ascii")


def _decode_note(signed: str | bytes) -> str:
    """Accept str or bytes; enforce size, UTF-8 and the control-character rule up front."""
    if isinstance(signed, bytes):
        if len(signed) > MAX_NOTE_SIZE:
            raise MalformedNoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
        try:
            signed = signed.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("note is not valid UTF-8") from exc
    elif not isinstance(signed, str):
        raise MalformedNoteError("note must be str or bytes")
    if len(signed) > MAX_NOTE_SIZE or len(_utf8(signed, "note")) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    _check_controls(signed, "note")
    return signed


def _split_note(signed: str) -> tuple[str, list[str]]:
    """Split at the last blank line: text keeps its final newline, then signature lines."""
    split = signed.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = signed[: split + 1], signed[split + 2 :]
    if not block:
        raise MalformedNoteError("note has no signature lines")
    if not block.endswith("\n"):
        raise MalformedNoteError("signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signature lines")
    return text, lines


def _parse_signature_line(line: str) -> tuple[Signature, bytes]:
    """``— name base64(keyid || sig)``; returns the parsed line and the raw signature."""
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(f"signature line does not start with an em dash: {line[:40]!r}")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not b64:
        raise MalformedNoteError("signature line must be '— name signature'")
    _check_name(name)
    raw = _b64decode(b64, f"signature of {name!r}")
    if len(raw) < 5:
        raise MalformedNoteError(f"signature of {name!r} is too short")
    hash_value: int = struct.unpack(">I", raw[:4])[0]
    return Signature(name, hash_value, b64), raw[4:]


def _index_verifiers(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    """Verifiers by (name, key ID); two keys under one identity would be ambiguous."""
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_hash)
        if ident in known:
            raise NoteError(f"ambiguous verifiers for {verifier.name!r} ({verifier.key_hash:08x})")
        known[ident] = verifier
    return known


def open_note(signed: str | bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse a signed note and verify it against the given keys.

    Following the spec: signatures whose (name, key ID) matches no verifier are kept as
    unverified and otherwise ignored; a signature from a known key that fails raises
    InvalidSignatureError; if none verifies, UnverifiedNoteError. Repeated identical
    signatures are counted once.
    """
    known = _index_verifiers(verifiers)
    text, lines = _split_note(_decode_note(signed))
    message = text.encode("utf-8")
    verified: dict[tuple[str, int], Signature] = {}
    unverified: dict[str, Signature] = {}
    for line in lines:
        sig, raw = _parse_signature_line(line)
        verifier = known.get((sig.name, sig.key_hash))
        if verifier is None:
            unverified.setdefault(line, sig)
            continue
        if (sig.name, sig.key_hash) in verified:
            continue
        if not verifier.verify(message, raw):
            raise InvalidSignatureError(
                f"signature by {sig.name!r} ({sig.key_hash:08x}) does not verify"
            )
        verified[(sig.name, sig.key_hash)] = sig
    note = Note(text, tuple(verified.values()), tuple(unverified.values()))
    if not note.signatures:
        raise UnverifiedNoteError("note has no signature from a known key", note)
    return note


# --------------------------------------------------------------------------- checkpoints


def _check_line(value: str, what: str) -> None:
    """A checkpoint line: non-empty, single line, no control characters."""
    if not isinstance(value, str) or not value:
        raise MalformedCheckpointError(f"checkpoint {what} must be a non-empty string")
    if any(ord(ch) < 0x20 for ch in value):
        raise MalformedCheckpointError(f"checkpoint {what} contains a newline or control char")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint: origin, tree size, RFC 6962 root hash, optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse to construct anything that would not round-trip through to_text/from_text."""
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise MalformedCheckpointError("checkpoint size must be an int")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise MalformedCheckpointError(f"checkpoint size {self.size} is out of range")
        if not isinstance(self.root, bytes) or len(self.root) != _ROOT_SIZE:
            raise MalformedCheckpointError(f"checkpoint root must be {_ROOT_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedCheckpointError("checkpoint extensions must be a tuple")
        for extension in self.extensions:
            _check_line(extension, "extension line")

    def to_text(self) -> str:
        """The note text: origin, decimal size, base64 root, extension lines; each + newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Strictly parse checkpoint note text (c2sp.org/tlog-checkpoint)."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedCheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("checkpoint needs origin, size and root lines")
        if any(not line for line in lines):
            raise MalformedCheckpointError("checkpoint lines must not be empty")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise MalformedCheckpointError(f"checkpoint size {size_text!r} is not canonical")
        root = _checkpoint_root(root_text)
        return cls(origin, int(size_text), root, tuple(extensions))


def _checkpoint_root(text: str) -> bytes:
    """Base64 of exactly 32 bytes, in its one canonical encoding."""
    try:
        root = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedCheckpointError("checkpoint root is not valid base64") from exc
    if len(root) != _ROOT_SIZE or _b64(root) != text:
        raise MalformedCheckpointError(f"checkpoint root must be {_ROOT_SIZE} bytes of base64")
    return root


def cosign_note(signed: str, signer: NoteSigner) -> str:
    """Add ``signer``'s signature line to an already signed note (a witness cosigning).

    The note's text and its existing lines are kept as they are; verify the note with the
    original signer's key first, this only adds a line.
    """
    text, lines = _split_note(_decode_note(signed))
    if len(lines) >= MAX_SIGNATURES:
        raise MalformedNoteError(f"note already has {MAX_SIGNATURES} signature lines")
    payload = struct.pack(">I", signer.key_hash) + signer.sign(text.encode("utf-8"))
    line = Signature(signer.name, signer.key_hash, _b64(payload)).line
    kept = [ln + "\n" for ln in lines if _parse_signature_line(ln)[0].name != signer.name]
    return text + "\n" + "".join(kept) + line


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed note for a checkpoint."""
    return sign_note(checkpoint.to_text(), [signer])


def open_checkpoint(
    signed: str | bytes, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with ``verifier`` and parse its text.

    ``origin``, when given, must equal the checkpoint's origin line: a valid signature by
    the right key on a checkpoint for another log is still the wrong checkpoint.
    """
    note = open_note(signed, [verifier])
    checkpoint = Checkpoint.from_text(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise WrongOriginError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint
