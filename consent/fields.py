"""Validated field types shared by the signed documents.

Each type refuses what a forger or a careless tool could slip in: naive datetimes, numbers
where strings belong, invalid language tags or territories, identifiers with SQL or shell
metacharacters, and names carrying invisible or direction-changing characters.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StringConstraints

# The enums live in a module of their own that needs none of the above (CLI start-up).
from consent.enums import AfterDeathPolicy as AfterDeathPolicy
from consent.enums import Alteration as Alteration
from consent.enums import ApprovalDecision as ApprovalDecision
from consent.enums import ApprovalRequirement as ApprovalRequirement
from consent.enums import Channel as Channel
from consent.enums import SignatoryRole as SignatoryRole
from consent.enums import Technique as Technique

WORLDWIDE = "worldwide"

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
# Characters that change how text displays without being visible: bidi controls, zero-width
# joiners and the like (Unicode category Cf), plus every control character except newline.
# Line and paragraph separators (Zl, Zp) break lines like a newline does.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            "an identifier is 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter "
            f"or digit; got {value[:80]!r}"
        )
    return value


def _sha256_hex(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError(f"expected 64 lowercase hex digits (SHA-256), got {value[:80]!r}")
    return value


_ASCII_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


# A pure function of (value, multiline): remembered for the values that pass (a refusal raises,
# and lru_cache does not store exceptions). The gate validates every stored document at every
# decision, and their names, titles and texts repeat across documents.
@lru_cache(maxsize=8192)
def _clean_text(value: str, multiline: bool) -> str:
    if not unicodedata.is_normalized("NFC", value):
        raise ValueError("text must be in Unicode normalisation form NFC")
    # Fast path: in ASCII the only forbidden characters are the controls.
    scan = not value.isascii() or _ASCII_CONTROL.search(value) or (
        not multiline and "\n" in value)
    for position, char in enumerate(value if scan else ""):
        if char == "\n" and multiline:
            continue
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise ValueError(
                f"invisible or control character {name} (U+{ord(char):04X}) at position "
                f"{position} is not allowed"
            )
    if value != value.strip():
        raise ValueError("text must not start or end with whitespace")
    if not value:
        raise ValueError("text must not be empty")
    return value


def _name(value: str) -> str:
    # Only exact str goes to the cache: a str subclass (an enum member) with the same text
    # would come back as the first one seen.
    return _clean_text(value, False) if type(value) is str else _clean_text.__wrapped__(
        value, False)


def _long_text(value: str) -> str:
    return _clean_text(value, True) if type(value) is str else _clean_text.__wrapped__(
        value, True)


# langcodes and pycountry (~0.15 s to import, with their tables) are imported on the first
# tag or territory checked: reading a grant's status or a file's provenance often checks none.
@lru_cache(maxsize=4096)
def _valid_language(tag: str) -> bool:
    import langcodes

    return bool(langcodes.tag_is_valid(tag))


_LANGUAGE_SHAPE = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_TERRITORY_SHAPE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _language(value: str) -> str:
    # langcodes reads "_" as "-"; BCP-47 does not.
    if not _LANGUAGE_SHAPE.fullmatch(value) or not _valid_language(value):
        raise ValueError(f"{value!r} is not a valid BCP-47 language tag")
    return value


@lru_cache(maxsize=4096)
def _known_territory(code: str) -> bool:
    import pycountry

    if len(code) == 2:
        return pycountry.countries.get(alpha_2=code) is not None
    return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]


def _territory(value: str) -> str:
    if value == WORLDWIDE:
        return value
    if not _TERRITORY_SHAPE.fullmatch(value) or not _known_territory(value):
        raise ValueError(
            f"{value!r} is not an ISO 3166-1 alpha-2 country, an ISO 3166-2 subdivision "
            f"or {WORLDWIDE!r}"
        )
    return value


def _require_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _parse_timestamp(value: Any) -> datetime:
    if type(value) is str:
        return _timestamp_text(value)
    if isinstance(value, datetime):
        parsed = value
    else:
        return _timestamp_text.__wrapped__(_require_str(value))
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no time zone; naive datetimes are not accepted")
    return parsed


# A pure function of the text (datetimes are immutable): remembered for texts that parse;
# refusals raise and are not stored. Documents share few distinct timestamps.
@lru_cache(maxsize=8192)
def _timestamp_text(text: str) -> datetime:
    if not _RFC3339.fullmatch(text):
        raise ValueError(
            f"expected an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z; "
            f"got {text[:40]!r}"
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {text!r}: {exc}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no time zone; naive datetimes are not accepted")
    return parsed


def format_timestamp(value: datetime) -> str:
    """One canonical textual form: UTC, seconds precision unless sub-seconds exist, 'Z'."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def _parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = _require_str(value)
    if not _DATE_SHAPE.fullmatch(text):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {text[:40]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid date {text!r}: {exc}") from None


def _require_true(value: Any) -> Any:
    if value is not True:
        raise ValueError(f"must be the JSON value true, got {value!r}")
    return value


def _text(max_length: int | None = None) -> Any:
    """A string checked by pydantic's own core, with no Python call: strict (a number, a list
    or bytes is refused, never converted; str subclasses such as enum members pass, as
    plain str) and, when given, no longer than ``max_length``. Why not a Python type check
    before the str schema: the gate validates every stored document at every decision, and
    that check plus the length check it pushed out of the core (pydantic cannot apply a
    length constraint after a Python validator) were ~34 Python calls per grant. The
    refusal reads "expected a string, got <type>" (documents.format_validation_error)."""
    return StringConstraints(strict=True, max_length=max_length)


AlwaysTrue = Annotated[Literal[True], BeforeValidator(_require_true)]
Identifier = Annotated[str, _text(), AfterValidator(_identifier)]
Sha256Hex = Annotated[str, _text(), AfterValidator(_sha256_hex)]
HumanName = Annotated[str, _text(200), AfterValidator(_name)]
LongText = Annotated[str, _text(8000), AfterValidator(_long_text)]
LanguageTag = Annotated[str, _text(64), AfterValidator(_language)]
Territory = Annotated[str, _text(16), AfterValidator(_territory)]
Timestamp = Annotated[
    datetime, BeforeValidator(_parse_timestamp), PlainSerializer(format_timestamp, return_type=str)
]
Day = Annotated[
    date, BeforeValidator(_parse_date), PlainSerializer(date.isoformat, return_type=str)
]


@lru_cache(maxsize=4096)  # a pure function of two tags; the gate asks it per grant per decision
def language_covers(granted: str, requested: str) -> bool:
    """RFC 4647 basic filtering: ``fr`` covers ``fr-CA``; ``fr-FR`` does not cover ``fr-CA``."""
    import langcodes

    g = langcodes.standardize_tag(granted).lower().split("-")
    r = langcodes.standardize_tag(requested).lower().split("-")
    return r[: len(g)] == g


def territory_covers(granted: str, requested: str) -> bool:
    """``worldwide`` covers all; a country covers itself and its ISO 3166-2 subdivisions."""
    if granted == WORLDWIDE:
        return True
    return requested == granted or requested.startswith(granted + "-")
