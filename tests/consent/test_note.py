"""Tests for consent.note: C2SP signed notes and tlog checkpoints.

The interop vector is the example from the golang.org/x/mod/sumdb/note documentation
(Ed25519 is deterministic, so signing the same text with the same key must reproduce the
published signature byte for byte).
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent.merkle import EMPTY_ROOT
from consent.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    InvalidSignatureError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    WrongOriginError,
    key_hash,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

EM = "\u2014"

GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNED = (
    GO_TEXT + "\n" + EM + " PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
    "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ROOT = hashlib.sha256(b"some root").digest()


def make_signer(name: str, seed_byte: int) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32))


LOG = make_signer("studio.example/consent-log", 1)
WITNESS = make_signer("witness.example/w1", 2)
OTHER = make_signer("studio.example/consent-log", 3)  # same name, different key


def raw_public(signer: NoteSigner) -> bytes:
    return signer.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


# --------------------------------------------------------------------------- keys


def test_key_hash_independent_computation() -> None:
    digest = hashlib.sha256(LOG.name.encode() + b"\n" + b"\x01" + raw_public(LOG)).digest()
    expected = int.from_bytes(digest[:4], "big")
    assert LOG.key_hash == expected
    assert LOG.verifier().key_hash == expected
    assert key_hash(LOG.name, LOG.public_key) == expected


def test_go_interop_vector() -> None:
    signer = NoteSigner.from_signer_key(GO_SIGNER_KEY)
    assert signer.signer_key() == GO_SIGNER_KEY
    assert signer.verifier().verifier_key() == GO_VERIFIER_KEY
    assert sign_note(GO_TEXT, [signer]) == GO_SIGNED
    verifier = NoteVerifier.from_verifier_key(GO_VERIFIER_KEY)
    assert verifier.key_hash == 0xC74F20A3
    note = open_note(GO_SIGNED, [verifier])
    assert note.text == GO_TEXT
    assert note.verified_names == ("PeterNeumann",)


def test_verifier_key_round_trip() -> None:
    key = LOG.verifier().verifier_key()
    name, hex8, b64 = key.split("+", 2)
    assert name == LOG.name
    assert hex8 == f"{LOG.key_hash:08x}"
    assert base64.b64decode(b64) == b"\x01" + raw_public(LOG)
    parsed = NoteVerifier.from_verifier_key(key)
    assert parsed.key_hash == LOG.key_hash
    assert raw_public(LOG) == parsed.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


@pytest.mark.parametrize(
    "key",
    [
        "",
        "name+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong ID
        "PeterNeumann+c74f20a3+AhpjZAcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_verifier_keys(key: str) -> None:
    with pytest.raises(MalformedNoteError):
        NoteVerifier.from_verifier_key(key)


def test_bad_signer_keys() -> None:
    with pytest.raises(MalformedNoteError, match="PRIVATE"):
        NoteSigner.from_signer_key(GO_VERIFIER_KEY)
    with pytest.raises(MalformedNoteError, match="mismatched key ID"):
        NoteSigner.from_signer_key(GO_SIGNER_KEY.replace("c74f20a3", "c74f20a4"))


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x", "x\u2003y"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(MalformedNoteError, match="key name"):
        NoteSigner(name, Ed25519PrivateKey.generate())


# --------------------------------------------------------------------------- notes


def test_round_trip_and_exact_layout() -> None:
    text = "hello\nworld\n"
    signed = sign_note(text, [LOG])
    head, sig_line = signed.split("\n\n")
    assert head + "\n" == text
    assert sig_line.startswith(f"{EM} {LOG.name} ")
    assert signed.endswith("\n")
    payload = base64.b64decode(sig_line.split(" ")[2])
    assert len(payload) == 4 + 64
    assert int.from_bytes(payload[:4], "big") == LOG.key_hash
    LOG.public_key.verify(payload[4:], text.encode())  # the signature is over the text only
    note = open_note(signed, [LOG.verifier()])
    assert note.text == text
    assert note.verified_names == (LOG.name,)
    assert note.unverified_signatures == ()
    assert note.signatures[0].line == sig_line


def test_open_accepts_bytes() -> None:
    signed = sign_note("bytes\n", [LOG])
    assert open_note(signed.encode(), [LOG.verifier()]).text == "bytes\n"


def test_text_may_contain_blank_lines() -> None:
    text = "stanza one\n\nstanza two\n\n"
    note = open_note(sign_note(text, [LOG]), [LOG.verifier()])
    assert note.text == text


def test_cosigned_note_unknown_signatures_kept() -> None:
    signed = sign_note("cosign me\n", [LOG, WITNESS])
    note = open_note(signed, [LOG.verifier()])
    assert note.verified_names == (LOG.name,)
    assert [s.name for s in note.unverified_signatures] == [WITNESS.name]
    both = open_note(signed, [WITNESS.verifier(), LOG.verifier()])
    assert both.verified_names == (LOG.name, WITNESS.name)


def test_duplicate_signature_lines_counted_once() -> None:
    signed = sign_note("dup\n", [LOG, WITNESS])
    lines = signed.split("\n\n")[1]
    doubled = signed + lines
    note = open_note(doubled, [LOG.verifier()])
    assert len(note.signatures) == 1
    assert len(note.unverified_signatures) == 1


def test_tampered_text() -> None:
    signed = sign_note("size 10\n", [LOG])
    with pytest.raises(InvalidSignatureError, match=LOG.name):
        open_note(signed.replace("size 10", "size 11"), [LOG.verifier()])


def test_tampered_signature() -> None:
    signed = sign_note("payload\n", [LOG])
    text, line = signed.split("\n\n")
    prefix, b64 = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    bad = f"{text}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_note(bad, [LOG.verifier()])


def test_truncated_signature_from_known_key() -> None:
    signed = sign_note("payload\n", [LOG])
    text, line = signed.split("\n\n")
    prefix, b64 = line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(b64)[:-1]
    bad = f"{text}\n\n{prefix} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(InvalidSignatureError):
        open_note(bad, [LOG.verifier()])


def test_unknown_key() -> None:
    signed = sign_note("payload\n", [WITNESS])
    with pytest.raises(UnverifiedNoteError) as info:
        open_note(signed, [LOG.verifier()])
    assert [s.name for s in info.value.note.unverified_signatures] == [WITNESS.name]


def test_same_name_different_key_is_unknown_not_invalid() -> None:
    """The spec: signatures sharing a name (but not the key ID) with a known key are ignored."""
    signed = sign_note("payload\n", [OTHER])
    with pytest.raises(UnverifiedNoteError):
        open_note(signed, [LOG.verifier()])


def test_wrong_name_same_key_is_unknown() -> None:
    renamed = NoteSigner("someone-else", LOG.private_key)
    signed = sign_note("payload\n", [renamed])
    with pytest.raises(UnverifiedNoteError):
        open_note(signed, [LOG.verifier()])


def test_relabelled_signature_line() -> None:
    """Swap the name on the line but keep the key ID: unknown identity, so unverified."""
    signed = sign_note("payload\n", [LOG])
    relabelled = signed.replace(f"{EM} {LOG.name} ", f"{EM} impostor.example ")
    with pytest.raises(UnverifiedNoteError):
        open_note(relabelled, [LOG.verifier()])


def test_known_bad_signature_rejects_note_even_with_a_good_one() -> None:
    good = sign_note("payload\n", [LOG])
    forged_line = sign_note("other\n", [WITNESS]).split("\n\n")[1]
    with pytest.raises(InvalidSignatureError, match=WITNESS.name):
        open_note(good + forged_line, [LOG.verifier(), WITNESS.verifier()])


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        ("no signatures\n", "no blank line"),
        ("text\n\n", "no signature lines"),
        (f"text\n\n{EM} name c2lnbmF0dXJl", "end with a newline"),  # missing final newline
        ("text\n\n- name c2lnbmF0dXJl\n", "em dash"),  # hyphen, not em dash
        (f"text\n\n{EM}name c2lnbmF0dXJl\n", "em dash"),
        (f"text\n\n{EM} name\n", "'— name signature'"),
        (f"text\n\n{EM} name \n", "'— name signature'"),
        (f"text\n\n{EM} na+me c2lnbmF0dXJl\n", "key name"),
        (f"text\n\n{EM} name not*base64\n", "base64"),
        (f"text\n\n{EM} name c2lnbmF0dXJl=\n", "base64"),  # bad padding
        (f"text\n\n{EM} name AAAA\n", "too short"),
        (f"text\r\n\n{EM} name c2lnbmF0dXJl\n", "control character"),
        (f"te\x00xt\n\n{EM} name c2lnbmF0dXJl\n", "control character"),
    ],
)
def test_malformed_notes(signed: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        open_note(signed, [LOG.verifier()])


def test_extra_blank_line_after_signatures() -> None:
    signed = sign_note("payload\n", [LOG])
    with pytest.raises(MalformedNoteError, match="no signature lines"):
        open_note(signed + "\n", [LOG.verifier()])


def test_extra_blank_line_before_signatures_changes_text() -> None:
    """An extra blank line moves into the text, which then no longer matches the signature."""
    signed = sign_note("payload\n", [LOG])
    with pytest.raises(InvalidSignatureError):
        open_note(signed.replace("\n\n", "\n\n\n", 1), [LOG.verifier()])


def test_blank_line_between_signatures() -> None:
    signed = sign_note("payload\n", [LOG, WITNESS])
    text, lines = signed.split("\n\n")
    first, second = lines.split("\n")[:2]
    broken = f"{text}\n\n{first}\n\n{second}\n"
    # The last blank line now separates the text, so the first signature line becomes text
    # and the remaining signature (by the log) no longer covers that text.
    with pytest.raises(UnverifiedNoteError):
        open_note(broken, [LOG.verifier()])
    with pytest.raises(InvalidSignatureError):
        open_note(broken, [WITNESS.verifier()])


def test_invalid_utf8_bytes() -> None:
    with pytest.raises(MalformedNoteError, match="UTF-8"):
        open_note(b"caf\xc3(\n\n" + f"{EM} n c2lnbmF0dXJl\n".encode(), [LOG.verifier()])


def test_oversized_note() -> None:
    text = "x" * (MAX_NOTE_SIZE - 10) + "\n"
    with pytest.raises(MalformedNoteError, match="exceed"):
        sign_note(text, [LOG])
    big = "x" * MAX_NOTE_SIZE + "\n\n" + f"{EM} n c2lnbmF0dXJl\n"
    with pytest.raises(MalformedNoteError, match="larger than"):
        open_note(big, [LOG.verifier()])
    with pytest.raises(MalformedNoteError, match="larger than"):
        open_note(big.encode(), [LOG.verifier()])
    multibyte = "\u00e9" * (MAX_NOTE_SIZE // 2) + "\n\n" + f"{EM} n c2lnbmF0dXJl\n"
    assert len(multibyte) < MAX_NOTE_SIZE < len(multibyte.encode())
    with pytest.raises(MalformedNoteError, match="larger than"):
        open_note(multibyte, [LOG.verifier()])


def test_note_just_under_the_limit_opens() -> None:
    overhead = len(sign_note("\n", [LOG]).encode()) - 1  # the em dash is 3 bytes
    text = "x" * (MAX_NOTE_SIZE - overhead - 1) + "\n"
    signed = sign_note(text, [LOG])
    assert len(signed.encode()) == MAX_NOTE_SIZE
    assert open_note(signed, [LOG.verifier()]).text == text


def test_too_many_signature_lines() -> None:
    signed = sign_note("payload\n", [LOG])
    line = signed.split("\n\n")[1]
    at_limit = signed + line * (MAX_SIGNATURES - 1)
    assert len(open_note(at_limit, [LOG.verifier()]).signatures) == 1
    with pytest.raises(MalformedNoteError, match="more than 100"):
        open_note(at_limit + line, [LOG.verifier()])


@pytest.mark.parametrize("text", ["", "no newline", "a\rb\n", "tab\tb\n", "nul\x00\n", "\ud800\n"])
def test_sign_rejects_bad_text(text: str) -> None:
    with pytest.raises(MalformedNoteError):
        sign_note(text, [LOG])


def test_sign_needs_distinct_signers() -> None:
    with pytest.raises(NoteError, match="at least one"):
        sign_note("x\n", [])
    with pytest.raises(NoteError, match="duplicate signer"):
        sign_note("x\n", [LOG, make_signer(LOG.name, 1)])


def test_ambiguous_verifiers() -> None:
    with pytest.raises(NoteError, match="ambiguous"):
        open_note(sign_note("x\n", [LOG]), [LOG.verifier(), LOG.verifier()])


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_text_exact_format() -> None:
    cp = Checkpoint("studio.example/consent-log", 20852163, ROOT)
    b64 = base64.b64encode(ROOT).decode()
    assert cp.to_text() == f"studio.example/consent-log\n20852163\n{b64}\n"
    with_ext = Checkpoint("o", 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert with_ext.to_text() == (
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\next two\n"
    )
    assert Checkpoint.from_text(with_ext.to_text()) == with_ext
    assert Checkpoint.from_text(cp.to_text()) == cp


def test_spec_example_checkpoint_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.from_text(text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert len(cp.root) == 32
    assert cp.to_text() == text


def test_sign_and_open_checkpoint() -> None:
    cp = Checkpoint(LOG.name, 42, ROOT)
    signed = sign_checkpoint(cp, LOG)
    assert signed.startswith(cp.to_text() + "\n" + EM + " " + LOG.name + " ")
    assert open_checkpoint(signed, LOG.verifier()) == cp
    assert open_checkpoint(signed, LOG.verifier(), origin=LOG.name) == cp
    with pytest.raises(WrongOriginError):
        open_checkpoint(signed, LOG.verifier(), origin="another.example/log")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(signed, OTHER.verifier())
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(signed.replace("\n42\n", "\n43\n"), LOG.verifier())


def test_cosigned_checkpoint_opens_with_either_key() -> None:
    cp = Checkpoint(LOG.name, 7, ROOT)
    signed = sign_note(cp.to_text(), [LOG, WITNESS])
    assert open_checkpoint(signed, WITNESS.verifier()) == cp


def b64root() -> str:
    return base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "end with a newline"),
        ("o\n1\n{root}", "end with a newline"),
        ("o\n1\n", "origin, size and root"),
        ("\n1\n{root}\n", "must not be empty"),
        ("o\n\n{root}\n", "must not be empty"),
        ("o\n1\n{root}\n\n", "must not be empty"),  # extra blank line
        ("o\n1\n{root}\next\n\n", "must not be empty"),
        ("o\n01\n{root}\n", "not canonical"),
        ("o\n00\n{root}\n", "not canonical"),
        ("o\n-1\n{root}\n", "not canonical"),
        ("o\n+1\n{root}\n", "not canonical"),
        ("o\n 1\n{root}\n", "not canonical"),
        ("o\n1.0\n{root}\n", "not canonical"),
        ("o\n\u0661\n{root}\n", "not canonical"),  # Arabic-Indic digit one
        ("o\n18446744073709551616\n{root}\n", "out of range"),
        ("o\n1\nAAAA\n", "32 bytes"),
        ("o\n1\n{root}AAAA\n", "base64"),
        ("o\n1\n{long}\n", "32 bytes"),
        ("o\n1\nnot base64!\n", "base64"),
        ("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "32 bytes"),  # non-canonical
        ("o\r\n1\n{root}\n", "control"),
    ],
)
def test_malformed_checkpoints(text: str, message: str) -> None:
    long_root = base64.b64encode(ROOT + b"abcd").decode()
    text = text.replace("{root}", b64root()).replace("{long}", long_root)
    with pytest.raises(MalformedCheckpointError, match=message):
        Checkpoint.from_text(text)


def test_checkpoint_max_size_accepted() -> None:
    text = f"o\n18446744073709551615\n{b64root()}\n"
    assert Checkpoint.from_text(text).size == 2**64 - 1


def test_malformed_checkpoint_inside_valid_note() -> None:
    signed = sign_note("origin\n1\nnot a root\n", [LOG])
    with pytest.raises(MalformedCheckpointError):
        open_checkpoint(signed, LOG.verifier())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root": ROOT},
        {"origin": "a\nb", "size": 1, "root": ROOT},
        {"origin": "o", "size": -1, "root": ROOT},
        {"origin": "o", "size": True, "root": ROOT},
        {"origin": "o", "size": 1, "root": ROOT[:31]},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("",)},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("a\nb",)},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ["x"]},
    ],
)
def test_checkpoint_constructor_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]
