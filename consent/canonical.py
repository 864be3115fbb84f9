"""Strict JSON parsing and RFC 8785 canonical bytes.

Signatures are computed over RFC 8785 (JSON Canonicalization Scheme) bytes, so any
whitespace, key order or escaping in a received file does not matter, and a verifier in
another language computes the same bytes. Parsing is strict because these documents come
from outside: duplicate keys, NaN, deep nesting and oversized input are refused.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from consent.errors import DocumentError, DocumentTooLargeError

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 32


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"duplicate key {key!r} in JSON object")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise DocumentError(f"JSON constant {name} is not allowed")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        raise DocumentError(f"JSON nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def parse_json(data: bytes | str, *, limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse untrusted JSON; raise :class:`DocumentError` with a precise reason."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > limit:
        raise DocumentTooLargeError(
            f"document is {len(raw):,} bytes; the limit is {limit:,} bytes"
        )
    if not raw.strip():
        raise DocumentError("document is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"document is not UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise DocumentError("document starts with a byte-order mark")
    try:
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"JSON nesting deeper than {MAX_DEPTH} levels") from None
    _depth(value)
    return value


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical serialisation of a JSON value."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise DocumentError(f"value cannot be canonicalised: {exc}") from None
