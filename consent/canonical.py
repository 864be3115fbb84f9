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


MAX_INTEGER_DIGITS = 20


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise DocumentError(f"number {text[:40]} is out of range")
    return value


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise DocumentError(f"integer with {len(text)} digits is out of range")
    return int(text)


def _check_depth(value: Any, level: int = 0) -> None:
    """Containers count as levels: 32 nested arrays pass, 33 do not, empty or not."""
    if isinstance(value, dict | list):
        if level + 1 > MAX_DEPTH:
            raise DocumentError(f"JSON nesting deeper than {MAX_DEPTH} levels")
        for item in value.values() if isinstance(value, dict) else value:
            _check_depth(item, level + 1)


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
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"JSON nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. the interpreter's own limit on integer digits
        raise DocumentError(f"malformed JSON number: {exc}") from None
    # Nesting needs at least MAX_DEPTH brackets; most documents have far fewer.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_depth(value)
    return value


_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    """True when RFC 8785 and ``json.dumps(sort_keys=True)`` agree on ``value``.

    They differ only for floats (number formatting), integers beyond 2**53 (refused by
    RFC 8785) and keys outside ASCII (RFC 8785 sorts by UTF-16 code units). String *values*
    escape identically: the JSON short escapes, \\u00xx for other controls, all else as is.
    """
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical serialisation of a JSON value.

    Documents without floats take the standard library's C encoder (same bytes, checked
    against ``rfc8785`` by a property test); everything else goes through ``rfc8785``.
    """
    if _plain(value):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: let rfc8785 report them
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise DocumentError(f"value cannot be canonicalised: {exc}") from None
