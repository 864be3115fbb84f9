"""Tests for consent.documents and consent.fields: signed envelopes and validated payloads.

Documents that the model should refuse are built here by hand (a JSON body signed over its
RFC 8785 bytes), bypassing ``sign_draft``, so that each refusal is the parser's own.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.canonical import canonical_bytes, parse_json
from consent.documents import (
    MAX_SIGNATURES,
    SCHEMA_VERSION,
    Grant,
    PerformerKey,
    PerformerRecord,
    Revocation,
    SignedDocument,
    sign_draft,
)
from consent.errors import DocumentError, SignatureError, UnsupportedSchemaError
from consent.keys import PrivateKey, short_id
from tests.factory import grant_draft

KEY = PrivateKey.generate()
OTHER = PrivateKey.generate()


# --------------------------------------------------------------------------- helpers


def grant_body(**overrides: Any) -> dict[str, Any]:
    return {"type": "consent_grant", "schema_version": SCHEMA_VERSION, **grant_draft(**overrides)}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope(body: Any, keys: list[PrivateKey] | None = None, **json_kwargs: Any) -> bytes:
    """A signed envelope over ``body`` exactly as given (no validation)."""
    signed = canonical_bytes(body)
    sigs = [{"keyid": k.key_id, "sig": b64(k.sign(signed))} for k in (keys or [KEY])]
    return json.dumps({"signed": body, "signatures": sigs}, **json_kwargs).encode()


def with_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at the dotted ``path`` (list indices as numbers)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def without_path(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return out


def parse(body: Any, keys: list[PrivateKey] | None = None) -> SignedDocument[Grant]:
    return SignedDocument.from_bytes(envelope(body, keys), Grant)


def refused(body: Any) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        parse(body)
    return info.value


# --------------------------------------------------------------------------- round trip


def test_grant_round_trip() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    assert doc.signed_bytes == canonical_bytes(parse_json(doc.raw)["signed"])
    assert doc.sha256 == hashlib.sha256(doc.signed_bytes).hexdigest()
    again = SignedDocument.from_bytes(doc.raw, Grant)
    again.verify(KEY.public_key)
    assert again.payload == doc.payload
    assert again.signed_bytes == doc.signed_bytes
    assert again.sha256 == doc.sha256
    assert again.raw == doc.raw
    assert again.to_bytes() == doc.raw == doc.to_bytes()
    assert again.payload.grant_id == "grant-1"
    assert again.payload.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert again.signatures[0].keyid == KEY.key_id


def test_grant_with_every_optional_part_round_trips() -> None:
    draft = grant_draft(
        performer={"professional_name": "The Performer"},
        signatory={"role": "guardian", "name": "Parent P", "authority_evidence": "Court order 7"},
        grantee={"projects": [{"project_id": "proj-1", "title": "The Film",
                               "episodes": ["ep-1", "ep-2"], "scenes": ["sc-9"]}]},
        representation={"kind": "none"},
        scope={"description_of_use": "Mouth region only, French dub, reels 1-3.",
               "source_media": [hashlib.sha256(b"a").hexdigest()],
               "script_hash": hashlib.sha256(b"s").hexdigest(),
               "territories": ["worldwide"], "ai_training": True},
        after_death={"policy": "until_date", "until": "2030-12-31"},
    )
    doc = sign_draft(Grant, draft, [KEY])
    again = SignedDocument.from_bytes(doc.raw, Grant)
    again.verify(KEY.public_key)
    assert again.payload == doc.payload


def test_countersigned_grant_verifies_with_each_key() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY, OTHER])
    again = SignedDocument.from_bytes(doc.raw, Grant)
    again.verify(KEY.public_key)
    again.verify(OTHER.public_key)
    assert again.signature_by(OTHER.key_id) is not None


def test_maximum_number_of_signatures_accepted() -> None:
    keys = [PrivateKey.generate() for _ in range(MAX_SIGNATURES)]
    doc = parse(grant_body(), keys)
    for k in keys:
        doc.verify(k.public_key)


def test_reformatted_envelope_still_verifies() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    data = json.loads(doc.raw)

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(v) for k, v in reversed(list(value.items()))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    text = "\r\n\t " + json.dumps(reverse(data), indent=7, ensure_ascii=True) + "\n\n"
    raw = text.encode()
    assert raw != doc.raw
    again = SignedDocument.from_bytes(raw, Grant)
    again.verify(KEY.public_key)
    assert again.raw == raw
    assert again.sha256 == doc.sha256
    assert again.signed_bytes == doc.signed_bytes
    assert again.to_bytes() == doc.raw


def test_escaped_and_raw_unicode_are_the_same_document() -> None:
    body = grant_body(performer={"legal_name": "Zo\u00eb Salda\u00f1a"})
    raw_utf8 = envelope(body, ensure_ascii=False)
    escaped = envelope(body, ensure_ascii=True)
    assert raw_utf8 != escaped
    a = SignedDocument.from_bytes(raw_utf8, Grant)
    b = SignedDocument.from_bytes(escaped, Grant)
    a.verify(KEY.public_key)
    b.verify(KEY.public_key)
    assert a.sha256 == b.sha256


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("grant_id", "grant-2"),
        ("performer.performer_id", "perf-b"),
        ("performer.legal_name", "Someone Else"),
        ("signatory.name", "Someone Else"),
        ("grantee.company", "Other House Ltd"),
        ("grantee.projects.0.project_id", "proj-2"),
        ("representation.reference", "Other rider"),
        ("scope.techniques", ["lip_sync", "face_reenactment", "voice_synthesis"]),
        ("scope.purpose", "Anything at all."),
        ("scope.languages", ["fr", "es-ES", "de"]),
        ("scope.territories", ["worldwide"]),
        ("scope.channels", ["theatrical", "streaming", "promotional"]),
        ("scope.max_alteration", "full_face"),
        ("scope.ai_training", True),
        ("valid_until", "2099-01-01T00:00:00Z"),
        ("valid_from", "2025-01-01T00:00:00Z"),
        ("signed_at", "2025-12-15T10:00:01Z"),
        ("compensation_reference", "CONTRACT-43"),
        ("evidence.text_shown_sha256", "0" * 64),
        ("disclosure.credit_text", "Nothing to see"),
    ],
)
def test_changed_field_fails_verification(path: str, value: Any) -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    data = json.loads(doc.raw)
    data["signed"] = with_path(data["signed"], path, value)
    tampered = SignedDocument.from_bytes(json.dumps(data).encode(), Grant)  # still well-formed
    assert tampered.sha256 != doc.sha256
    with pytest.raises(SignatureError, match="does not verify"):
        tampered.verify(KEY.public_key)


def test_added_optional_field_fails_verification() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    data = json.loads(doc.raw)
    data["signed"]["scope"]["script_hash"] = "1" * 64
    tampered = SignedDocument.from_bytes(json.dumps(data).encode(), Grant)
    with pytest.raises(SignatureError):
        tampered.verify(KEY.public_key)


def test_signature_over_other_bytes_fails() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    data = json.loads(doc.raw)
    for other in (
        b"something else",
        json.dumps(data["signed"]).encode(),  # the payload, but not its canonical bytes
        canonical_bytes(data),  # the whole envelope
        canonical_bytes(grant_body(grant_id="grant-2")),  # another grant
    ):
        data["signatures"][0]["sig"] = b64(KEY.sign(other))
        forged = SignedDocument.from_bytes(json.dumps(data).encode(), Grant)
        with pytest.raises(SignatureError, match="does not verify"):
            forged.verify(KEY.public_key)


def test_signature_moved_to_other_keyid_fails() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    data = json.loads(doc.raw)
    data["signatures"][0]["keyid"] = OTHER.key_id
    moved = SignedDocument.from_bytes(json.dumps(data).encode(), Grant)
    with pytest.raises(SignatureError):
        moved.verify(OTHER.public_key)


def test_verify_with_key_that_did_not_sign() -> None:
    doc = sign_draft(Grant, grant_draft(), [KEY])
    with pytest.raises(SignatureError, match=f"no signature by key {short_id(OTHER.key_id)}"):
        doc.verify(OTHER.public_key)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_bytes_give_only_document_or_signature_errors(data: st.DataObject) -> None:
    raw = bytearray(sign_draft(Grant, grant_draft(), [KEY]).raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        doc = SignedDocument.from_bytes(bytes(raw), Grant)
    except DocumentError:
        return
    try:
        doc.verify(KEY.public_key)
    except SignatureError:
        return


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("grant_id", 5, "grant_id: expected a string, got int"),
        ("performer.legal_name", 12, "performer.legal_name: expected a string, got int"),
        ("performer.performer_id", None, "performer.performer_id"),
        ("scope.purpose", ["Lip-sync"], "scope.purpose: expected a string, got list"),
        ("compensation_reference", 42.0, "compensation_reference: expected a string, got float"),
        ("grantee.company", True, "grantee.company: expected a string, got bool"),
        ("scope.ai_training", "true", "scope.ai_training"),
        ("scope.ai_training", 1, "scope.ai_training"),
        ("scope.ai_training", 0, "scope.ai_training"),
        ("scope.ai_training", None, "scope.ai_training"),
        ("revocable", "true", "revocable"),
        ("revocable", 1, "revocable"),
        ("disclosure.machine_readable_marking", "true", "disclosure.machine_readable_marking"),
        ("disclosure.machine_readable_marking", 1, "disclosure.machine_readable_marking"),
        ("valid_from", 1767225600, "valid_from: expected a string, got int"),
        ("valid_until", 1798761600.0, "valid_until: expected a string, got float"),
        ("signed_at", True, "signed_at: expected a string, got bool"),
        ("scope.languages", "fr", "scope.languages"),
        ("scope.techniques", "lip_sync", "scope.techniques"),
        ("scope.techniques", [1], "scope.techniques.0"),
        ("scope.max_alteration", True, "scope.max_alteration"),
        ("grantee.projects", {"project_id": "proj-1", "title": "The Film"}, "grantee.projects"),
        ("performer", "perf-a", "performer"),
        ("evidence.identity_template_sha256", "0" * 64, "evidence.identity_template_sha256"),
    ],
)
def test_wrong_types_refused_naming_the_field(path: str, value: Any, message: str) -> None:
    err = refused(with_path(grant_body(), path, value))
    assert "invalid consent_grant" in str(err)
    assert message in str(err)


def test_day_must_be_a_string() -> None:
    body = grant_body(after_death={"policy": "until_date", "until": 20301231})
    assert "after_death.until: expected a string, got int" in str(refused(body))


@pytest.mark.parametrize(
    "path",
    ["grant_id", "performer", "performer.legal_name", "signatory", "scope", "scope.purpose",
     "valid_until", "evidence", "disclosure", "revocable", "grantee.projects.0.title"],
)
def test_missing_required_field(path: str) -> None:
    err = refused(without_path(grant_body(), path))
    assert f"{path}: Field required" in str(err)


# --------------------------------------------------------------------------- unknown fields


@pytest.mark.parametrize(
    "parent",
    ["", "performer", "signatory", "grantee", "grantee.projects.0", "representation", "scope",
     "after_death", "evidence", "disclosure"],
)
def test_unknown_field_refused_at_every_level(parent: str) -> None:
    path = f"{parent}.sneaky_extra" if parent else "sneaky_extra"
    err = refused(with_path(grant_body(), path, "x"))
    assert f"{path}: unknown field" in str(err)


def test_unknown_field_in_draft_refused() -> None:
    with pytest.raises(DocumentError, match=r"scope\.royalty: unknown field"):
        sign_draft(Grant, grant_draft(scope={"royalty": "5%"}), [KEY])


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "value",
    ["2026-01-01T00:00:00", "2026-01-01T00:00:00.123", "2026-01-01", "2026-01-01 00:00:00Z",
     "2026-01-01T00:00Z", "20260101T000000Z", "tomorrow", "", "2026-02-30T00:00:00Z",
     "2026-01-01T25:00:00Z"],
)
def test_bad_or_naive_timestamps_refused(value: str) -> None:
    err = refused(with_path(grant_body(), "valid_from", value))
    assert "valid_from:" in str(err)


def test_naive_timestamp_message() -> None:
    err = refused(with_path(grant_body(), "signed_at", "2025-12-15T10:00:00"))
    assert "with a time zone" in str(err)


def test_naive_datetime_object_in_draft_refused() -> None:
    # Drafts come from YAML, which produces datetime objects.
    draft = grant_draft(valid_from=datetime(2026, 1, 1))
    with pytest.raises(DocumentError, match="naive datetimes are not accepted"):
        sign_draft(Grant, draft, [KEY])


def test_aware_datetime_object_in_draft_accepted_and_normalised() -> None:
    paris = timezone(timedelta(hours=1))
    draft = grant_draft(valid_from=datetime(2026, 1, 1, 1, 0, tzinfo=paris))
    doc = sign_draft(Grant, draft, [KEY])
    assert parse_json(doc.signed_bytes)["valid_from"] == "2026-01-01T00:00:00Z"
    SignedDocument.from_bytes(doc.raw, Grant).verify(KEY.public_key)


@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00Z", "2026-01-01T05:30:00+05:30", "2025-12-31T19:00:00-05:00",
              "2026-01-01T00:00:00.123456Z"],
)
def test_timestamps_with_zone_accepted(value: str) -> None:
    doc = parse(with_path(grant_body(), "valid_from", value))
    assert doc.payload.valid_from.utcoffset() is not None


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"),  # the same instant
        ("2026-01-01T00:00:00Z", "2026-01-01T00:30:00+01:00"),  # earlier, written later
    ],
)
def test_valid_until_must_be_after_valid_from(valid_from: str, valid_until: str) -> None:
    err = refused(grant_body(valid_from=valid_from, valid_until=valid_until))
    assert "valid_until must be later than valid_from" in str(err)


def test_valid_until_just_after_valid_from_accepted() -> None:
    parse(grant_body(valid_from="2026-01-01T00:00:00Z", valid_until="2026-01-01T00:00:00.000001Z"))


# --------------------------------------------------------------------------- coherence rules


def test_representation_none_needs_description_of_use() -> None:
    err = refused(grant_body() | {"representation": {"kind": "none"}})
    assert "description_of_use is mandatory" in str(err)


def test_representation_none_with_description_of_use_accepted() -> None:
    parse(grant_body(representation={"kind": "none"},
                     scope={"description_of_use": "French dub, mouth region, reels 1-3."}))


def test_representation_by_counsel_needs_reference() -> None:
    err = refused(grant_body() | {"representation": {"kind": "counsel"}})
    assert "representation by counsel needs a reference" in str(err)


@pytest.mark.parametrize("role", ["guardian", "estate", "union_designee"])
def test_non_self_signatory_needs_authority_evidence(role: str) -> None:
    err = refused(grant_body(signatory={"role": role, "name": "Parent P"}))
    assert f"a {role} signatory needs authority_evidence" in str(err)


def test_guardian_with_authority_evidence_accepted() -> None:
    doc = parse(grant_body(signatory={"role": "guardian", "name": "Parent P",
                                      "authority_evidence": "Birth certificate ref 123"}))
    assert doc.payload.signatory.role.value == "guardian"


@pytest.mark.parametrize("field", ["techniques", "languages", "territories", "channels"])
def test_duplicate_scope_values_refused(field: str) -> None:
    body = grant_body()
    values = body["scope"][field]
    err = refused(with_path(body, f"scope.{field}", [*values, values[0]]))
    assert f"{field} lists a value twice" in str(err)


@pytest.mark.parametrize(
    ("path", "value"),
    [("revocable", False), ("disclosure.machine_readable_marking", False),
     ("scope.techniques", []), ("scope.languages", []), ("grantee.projects", []),
     ("scope.source_media", []), ("scope.source_media", "all"),
     ("evidence.identity_template_sha256", [])],
)
def test_values_outside_the_contract_refused(path: str, value: Any) -> None:
    assert path.split(".")[-1] in str(refused(with_path(grant_body(), path, value)))


@pytest.mark.parametrize("value", ["A" * 64, "0" * 63, "0" * 65, "g" * 64, ""])
def test_sha256_fields_need_64_lowercase_hex(value: str) -> None:
    err = refused(with_path(grant_body(), "evidence.consent_recording_sha256", value))
    assert "evidence.consent_recording_sha256: expected 64 lowercase hex digits" in str(err)


def test_after_death_until_only_with_until_date() -> None:
    assert "after_death" in str(refused(grant_body(after_death={"policy": "until_date"})))
    assert "after_death" in str(refused(grant_body(after_death={"policy": "none",
                                                                "until": "2030-01-01"})))


# --------------------------------------------------------------------------- languages


@pytest.mark.parametrize("tag", ["english", "fr_FR", "x", "", "fr-", "en--US", "123", "fr CA"])
def test_invalid_language_tags_refused(tag: str) -> None:
    err = refused(with_path(grant_body(), "scope.languages", [tag]))
    assert "scope.languages.0" in str(err)


def test_invalid_language_tag_message() -> None:
    err = refused(with_path(grant_body(), "scope.languages", ["english"]))
    assert "'english' is not a valid BCP-47 language tag" in str(err)


@pytest.mark.parametrize("tag", ["fr-CA", "zh-Hant-TW", "sr-Latn", "en", "es-419", "de-CH-1996"])
def test_valid_language_tags_accepted(tag: str) -> None:
    doc = parse(with_path(grant_body(), "scope.languages", [tag]))
    assert doc.payload.scope.languages == (tag,)


# --------------------------------------------------------------------------- territories


@pytest.mark.parametrize(
    "territory", ["XX", "France", "fr", "", "USA", "US-XX", "us-CA", "Worldwide", "WORLDWIDE",
                  "EU", "FR "],
)
def test_invalid_territories_refused(territory: str) -> None:
    err = refused(with_path(grant_body(), "scope.territories", [territory]))
    assert "scope.territories.0" in str(err)


def test_invalid_territory_message() -> None:
    err = refused(with_path(grant_body(), "scope.territories", ["XX"]))
    assert "'XX' is not an ISO 3166-1 alpha-2 country" in str(err)


@pytest.mark.parametrize("territory", ["FR", "US-CA", "worldwide", "GB", "JP", "CA-QC"])
def test_valid_territories_accepted(territory: str) -> None:
    doc = parse(with_path(grant_body(), "scope.territories", [territory]))
    assert doc.payload.scope.territories == (territory,)


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    "value",
    ["a'; DROP TABLE grants;--", "", "-leading-dash", "a b", "a/b", "../etc/passwd", "x" * 65,
     "grant\n", "$(rm -rf ~)", "grant-\u00e9", "grant;1", 'a"b', "\u0661\u0662"],
)
@pytest.mark.parametrize("path", ["grant_id", "performer.performer_id",
                                  "grantee.projects.0.project_id"])
def test_identifiers_with_metacharacters_refused(path: str, value: str) -> None:
    err = refused(with_path(grant_body(), path, value))
    assert f"{path}: an identifier is 1-64 characters" in str(err)


@pytest.mark.parametrize("value", ["grant-1", "g.1:2_3", "X" * 64, "0", "7f3a"])
def test_plain_identifiers_accepted(value: str) -> None:
    assert parse(with_path(grant_body(), "grant_id", value)).payload.grant_id == value


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Ann\u202eeeL", "RIGHT-TO-LEFT OVERRIDE (U+202E)"),
        ("\u202eAnn Lee", "RIGHT-TO-LEFT OVERRIDE (U+202E)"),
        ("Ann\u200bLee", "ZERO WIDTH SPACE (U+200B)"),
        ("Ann\u200dLee", "ZERO WIDTH JOINER (U+200D)"),
        ("Ann\u2066Lee", "LEFT-TO-RIGHT ISOLATE (U+2066)"),
        ("Ann\ufeffLee", "ZERO WIDTH NO-BREAK SPACE (U+FEFF)"),
        ("Ann\u0000Lee", "(U+0000)"),
        ("Ann\tLee", "(U+0009)"),
        ("Ann\nLee", "(U+000A)"),
        ("Ann\x7fLee", "(U+007F)"),
        ("Ann\ue000Lee", "(U+E000)"),  # private use
        ("Rene\u0301", "normalisation form NFC"),
        (" Ann Lee", "must not start or end with whitespace"),
        ("Ann Lee ", "must not start or end with whitespace"),
        ("", "must not be empty"),
    ],
)
@pytest.mark.parametrize("path", ["performer.legal_name", "signatory.name",
                                  "disclosure.credit_text"])
def test_names_with_unicode_tricks_refused(path: str, name: str, message: str) -> None:
    err = refused(with_path(grant_body(), path, name))
    assert f"{path}: " in str(err)
    assert message in str(err)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_line_and_paragraph_separators_refused_in_names(separator: str) -> None:
    # A single-line name refuses "\n"; the Unicode line/paragraph separators break a line the
    # same way when displayed and must be refused too.
    err = refused(with_path(grant_body(), "performer.legal_name", f"Ann{separator}Lee"))
    assert "performer.legal_name" in str(err)


def test_name_length_limit() -> None:
    assert "performer.legal_name" in str(
        refused(with_path(grant_body(), "performer.legal_name", "A" * 201)))
    parse(with_path(grant_body(), "performer.legal_name", "A" * 200))


@pytest.mark.parametrize(
    "name",
    ["Zo\u00eb Salda\u00f1a", "\u0110or\u0111e Bala\u0161evi\u0107", "O'Brien-Smith",
     "\u5c71\u7530\u592a\u90ce", "Nguy\u1ec5n V\u0103n An", "Bj\u00f6rk Gu\u00f0mundsd\u00f3ttir",
     "\u0645\u062d\u0645\u062f \u0639\u0644\u064a", "\u0410\u043d\u043d\u0430 \u041f.",
     "Jean-Luc Picard Jr.", "\uae40\ubbfc\uc9c0"],
)
def test_international_names_accepted(name: str) -> None:
    body = with_path(grant_body(), "performer.legal_name", name)
    body = with_path(body, "signatory.name", name)
    doc = parse(body)
    doc.verify(KEY.public_key)
    assert doc.payload.performer.legal_name == name


def test_multiline_text_allows_newlines_only() -> None:
    parse(with_path(grant_body(), "scope.purpose", "Line one.\nLine two."))
    err = refused(with_path(grant_body(), "scope.purpose", "Line one.\r\nLine two."))
    assert "scope.purpose" in str(err)
    assert "(U+000D)" in str(err)


# --------------------------------------------------------------------------- schema and type


@pytest.mark.parametrize("version", [3, "1", True, 0, -1, None, [1]])
def test_unsupported_schema_version(version: Any) -> None:
    with pytest.raises(UnsupportedSchemaError, match="unsupported schema_version"):
        parse(grant_body() | {"schema_version": version})


def test_missing_schema_version() -> None:
    body = grant_body()
    del body["schema_version"]
    with pytest.raises(UnsupportedSchemaError):
        parse(body)


@pytest.mark.parametrize("version", [3, "1", True])
def test_unsupported_schema_version_in_draft(version: Any) -> None:
    with pytest.raises(UnsupportedSchemaError):
        sign_draft(Grant, {**grant_draft(), "schema_version": version}, [KEY])


@pytest.mark.parametrize("kind", ["consent_revocation", "performer", "CONSENT_GRANT", "", None, 1])
def test_wrong_type_refused(kind: Any) -> None:
    with pytest.raises(DocumentError, match="expected a consent_grant document") as info:
        parse(grant_body() | {"type": kind})
    assert not isinstance(info.value, UnsupportedSchemaError)


def test_missing_type_refused() -> None:
    body = grant_body()
    del body["type"]
    with pytest.raises(DocumentError, match="expected a consent_grant document, got type None"):
        parse(body)


def test_grant_is_not_a_revocation() -> None:
    raw = sign_draft(Grant, grant_draft(), [KEY]).raw
    with pytest.raises(DocumentError, match="expected a consent_revocation document"):
        SignedDocument.from_bytes(raw, Revocation)


def test_draft_with_wrong_type_refused() -> None:
    with pytest.raises(DocumentError, match="draft has type 'performer'"):
        sign_draft(Grant, {**grant_draft(), "type": "performer"}, [KEY])


# --------------------------------------------------------------------------- envelope


def _good_envelope() -> dict[str, Any]:
    return json.loads(sign_draft(Grant, grant_draft(), [KEY]).raw)


def _raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_missing_signatures() -> None:
    data = _good_envelope()
    del data["signatures"]
    with pytest.raises(DocumentError, match="exactly 'signed' and 'signatures'"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_missing_signed() -> None:
    data = _good_envelope()
    del data["signed"]
    with pytest.raises(DocumentError, match="exactly 'signed' and 'signatures'"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_extra_top_level_key() -> None:
    data = _good_envelope() | {"comment": "hello"}
    with pytest.raises(DocumentError, match="exactly 'signed' and 'signatures'"):
        SignedDocument.from_bytes(_raw(data), Grant)


@pytest.mark.parametrize("top", [[], "grant", 1, None])
def test_envelope_not_an_object(top: Any) -> None:
    with pytest.raises(DocumentError):
        SignedDocument.from_bytes(_raw(top), Grant)


@pytest.mark.parametrize("signed", [[], "x", None, 1])
def test_signed_not_an_object(signed: Any) -> None:
    data = _good_envelope() | {"signed": signed}
    with pytest.raises(DocumentError, match="'signed' must be an object"):
        SignedDocument.from_bytes(_raw(data), Grant)


@pytest.mark.parametrize("sigs", [[], {}, None, "sig"])
def test_signatures_not_a_non_empty_list(sigs: Any) -> None:
    data = _good_envelope() | {"signatures": sigs}
    with pytest.raises(DocumentError, match=f"list of 1 to {MAX_SIGNATURES} signatures"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_five_signatures_refused() -> None:
    keys = [PrivateKey.generate() for _ in range(MAX_SIGNATURES + 1)]
    with pytest.raises(DocumentError, match=f"list of 1 to {MAX_SIGNATURES} signatures"):
        SignedDocument.from_bytes(envelope(grant_body(), keys), Grant)


@pytest.mark.parametrize("sig", ["not base64!", "AAA", "QUJD\n", " " + b64(b"\x00" * 64)])
def test_sig_not_base64(sig: str) -> None:
    data = _good_envelope()
    data["signatures"][0]["sig"] = sig
    with pytest.raises(DocumentError, match="signature 0: sig is not valid base64"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_sig_not_a_string() -> None:
    data = _good_envelope()
    data["signatures"][0]["sig"] = 12345
    with pytest.raises(DocumentError, match="signature 0: sig must be a base64 string"):
        SignedDocument.from_bytes(_raw(data), Grant)


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_sig_wrong_length(length: int) -> None:
    data = _good_envelope()
    data["signatures"][0]["sig"] = b64(b"\x01" * length)
    with pytest.raises(DocumentError, match=f"64 bytes, got {length}"):
        SignedDocument.from_bytes(_raw(data), Grant)


@pytest.mark.parametrize("keyid", ["", "ab", "a" * 63, "a" * 65, 7, None])
def test_keyid_wrong_length_or_type(keyid: Any) -> None:
    data = _good_envelope()
    data["signatures"][0]["keyid"] = keyid
    with pytest.raises(DocumentError, match="signature 0: keyid must be a 64-character"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_same_key_twice() -> None:
    data = _good_envelope()
    data["signatures"].append(dict(data["signatures"][0]))
    with pytest.raises(DocumentError, match=r"signature 1: key .* signs twice"):
        SignedDocument.from_bytes(_raw(data), Grant)


@pytest.mark.parametrize(
    "item",
    [{"keyid": KEY.key_id}, {"sig": b64(b"\x00" * 64)},
     {"keyid": KEY.key_id, "sig": b64(b"\x00" * 64), "method": "ed25519"}, "sig", None],
)
def test_signature_entry_shape(item: Any) -> None:
    data = _good_envelope() | {"signatures": [item]}
    with pytest.raises(DocumentError, match="signature 0 must be an object with exactly"):
        SignedDocument.from_bytes(_raw(data), Grant)


def test_duplicate_keys_in_envelope_refused() -> None:
    raw = sign_draft(Grant, grant_draft(), [KEY]).raw
    doctored = raw.replace(b'"grant_id":"grant-1"', b'"grant_id":"grant-1","grant_id":"grant-2"')
    assert doctored != raw
    with pytest.raises(DocumentError, match="duplicate key 'grant_id'"):
        SignedDocument.from_bytes(doctored, Grant)


def test_huge_integer_in_document_is_a_document_error() -> None:
    raw = sign_draft(Grant, grant_draft(), [KEY]).raw
    doctored = raw.replace(b'"schema_version":1', b'"schema_version":1' + b"0" * 5000)
    with pytest.raises(DocumentError):
        SignedDocument.from_bytes(doctored, Grant)


# --------------------------------------------------------------------------- other payloads


def _revocation(**overrides: Any) -> dict[str, Any]:
    body = {
        "revocation_id": "rev-1", "performer_id": "perf-a",
        "target": {"kind": "grant", "id": "grant-1"}, "revoked_at": "2026-06-01T12:00:00Z",
        "reason": "Changed my mind.", "issued_by": {"role": "performer", "name": "Ann Lee"},
    }
    return body | overrides


def test_revocation_round_trip() -> None:
    doc = sign_draft(Revocation, _revocation(), [KEY])
    again = SignedDocument.from_bytes(doc.raw, Revocation)
    again.verify(KEY.public_key)
    assert again.payload.target.id == "grant-1"


def test_officer_revocation_needs_performer_request_reference() -> None:
    draft = _revocation(issued_by={"role": "consent_officer", "name": "Officer O"})
    with pytest.raises(DocumentError, match="performer_request_reference is required"):
        sign_draft(Revocation, draft, [KEY])


def test_performer_key_binding_checks_key_id() -> None:
    draft = {
        "performer_id": "perf-a", "key_id": OTHER.key_id,
        "public_key": KEY.public_key.to_base64(),
        "holder": {"role": "self", "name": "Ann Lee"},
        "registered_at": "2026-01-01T00:00:00Z", "registered_by": "Officer O",
    }
    with pytest.raises(DocumentError, match="key_id is not the SHA-256 of public_key"):
        sign_draft(PerformerKey, draft, [KEY])
    doc = sign_draft(PerformerKey, draft | {"key_id": KEY.key_id}, [OTHER])
    again = SignedDocument.from_bytes(doc.raw, PerformerKey)
    again.verify(OTHER.public_key)
    assert again.payload.key == KEY.public_key


def test_performer_record_revision_is_a_strict_positive_int() -> None:
    draft = {"performer_id": "perf-a", "revision": 1, "legal_name": "Ann Lee",
             "recorded_at": "2026-01-01T00:00:00Z", "recorded_by": "Officer O"}
    sign_draft(PerformerRecord, draft, [KEY])
    for bad in ("1", 0, 1.5, True):
        with pytest.raises(DocumentError, match="revision"):
            sign_draft(PerformerRecord, draft | {"revision": bad}, [KEY])
