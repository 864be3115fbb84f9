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
    # Built in C; a key given twice leaves fewer entries than pairs (every stored document
    # is parsed at every decision, so the common case must not loop in Python).
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DocumentError(f"duplicate key {key!r} in JSON object")
            seen.add(key)
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


#: One decoder for every document (json.loads with hooks builds a new one per call); it
#: holds no state between calls.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_constant=_reject_constant,
    parse_float=_parse_float,
    parse_int=_parse_int,
)


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
        value = _DECODER.decode(text)
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


class _Unusual(Exception):
    """A value :func:`_write` leaves to ``rfc8785`` (which serialises it or says why not)."""


#: Stands in for a float while the C encoder writes the rest (see :func:`_swap_floats`).
_MARK = "\x00"
#: How json.dumps writes a string that starts with _MARK: no genuine string can produce it,
#: because a string that holds _MARK anywhere is refused by _swap_floats.
_MARK_TEXT = '"\\u0000'


def _swap_floats(value: Any, floats: list[float]) -> Any:
    """``value`` with each float replaced by the string ``_MARK + index`` (copied only where
    something changed), for values on which RFC 8785 and ``json.dumps(sort_keys=True,
    ensure_ascii=False)`` then agree; raise :class:`_Unusual` for the others.

    They differ only for floats (number formatting, hence the swap), integers beyond
    I-JSON's 2**53 (refused by RFC 8785) and keys outside ASCII (RFC 8785 sorts by UTF-16
    code units, json.dumps by code points). Strings escape identically: the JSON short
    escapes, \\u00xx for other controls, all else as is (RFC 8785 section 3.2.2.2).
    """
    if isinstance(value, str):
        if _MARK in value:
            raise _Unusual
        return value
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        if not -_SAFE_INT <= value <= _SAFE_INT:
            raise _Unusual
        return value
    if isinstance(value, float):
        floats.append(value)
        return f"{_MARK}{len(floats) - 1}"
    if isinstance(value, dict):
        copy: dict[str, Any] | None = None
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii() or _MARK in key:
                raise _Unusual
            kind = type(item)  # the common leaves without a call (as in the branches above)
            if kind is str:
                if _MARK in item:
                    raise _Unusual
                continue
            if kind is bool or item is None or (kind is int and -_SAFE_INT <= item <= _SAFE_INT):
                continue
            swapped = _swap_floats(item, floats)
            if swapped is not item:
                if copy is None:
                    copy = dict(value)
                copy[key] = swapped
        return value if copy is None else copy
    if isinstance(value, list | tuple):
        items: list[Any] | None = None
        for n, item in enumerate(value):
            kind = type(item)  # the common leaves without a call (as in the branches above)
            if kind is str:
                if _MARK in item:
                    raise _Unusual
                continue
            if kind is bool or item is None or (kind is int and -_SAFE_INT <= item <= _SAFE_INT):
                continue
            swapped = _swap_floats(item, floats)
            if swapped is not item:
                if items is None:
                    items = list(value)
                items[n] = swapped
        return value if items is None else items
    raise _Unusual


def _plain(value: Any) -> bool:
    """Whether ``json.dumps(sort_keys=True, ensure_ascii=False)`` writes ``value`` exactly
    as RFC 8785 does, with nothing to swap: only dicts with ASCII str keys, lists, tuples,
    str, None, bool and I-JSON-safe int, each of exactly that type (subclasses, floats and
    anything else: False, for :func:`_swap_floats`).

    Why: every grant a decision verifies, every decision and every ledger leaf is
    canonicalised, and none of them holds a float; walking them through _swap_floats (a
    Python call per value, ~50 per grant) cost as much as the C encoder's whole work. This
    walk makes no call per value and reads keys in C."""
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if -_SAFE_INT <= item <= _SAFE_INT:
                continue
            return False
        if kind is dict:
            try:
                ascii_keys = "".join(item).isascii()  # TypeError: a key that is no str
            except TypeError:
                return False
            if not ascii_keys:
                return False
            push(item.values())
        elif kind is list or kind is tuple:
            push(item)
        else:
            return False
    return True


def _c_encoded(value: Any) -> bytes:
    """RFC 8785 bytes by the standard library's C encoder, floats written by ``rfc8785``."""
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    floats: list[float] = []
    swapped = _swap_floats(value, floats)
    text = json.dumps(swapped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if floats:
        head, *rest = text.split(_MARK_TEXT)
        parts = [head]
        for part in rest:  # part = '<index>"<what follows>'
            index, tail = part.split('"', 1)
            parts.append(bytes(rfc8785.dumps(floats[int(index)])).decode("ascii"))
            parts.append(tail)
        text = "".join(parts)
    return text.encode("utf-8")


# The C string encoder json.dumps(ensure_ascii=False) uses: the JSON short escapes, \u00xx
# for other controls, everything else as is, which is exactly RFC 8785 section 3.2.2.2.
_encode_str: Any = json.encoder.encode_basestring


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")  # big-endian: bytewise order is code-unit order


def _write(value: Any, out: list[str]) -> None:
    """Append the RFC 8785 text of ``value``; floats alone go through ``rfc8785``.

    For values the C encoder cannot take as a whole (a decision carries match distances, so
    one float sends the whole document down rfc8785's pure-Python path, ~40x slower)."""
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -_SAFE_INT <= value <= _SAFE_INT:
            raise _Unusual
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(bytes(rfc8785.dumps(value)).decode("ascii"))
    elif isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unusual
        out.append("{")
        for n, key in enumerate(sorted(value, key=_utf16_key)):
            if n:
                out.append(",")
            out.append(_encode_str(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise _Unusual


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical serialisation of a JSON value.

    Documents with ASCII keys take the standard library's C encoder, with any floats
    written by ``rfc8785`` (:func:`_c_encoded`); others are written by :func:`_write`, which
    also hands only the floats to ``rfc8785`` (both give the very bytes ``rfc8785`` gives,
    checked by property tests). What neither takes (integers beyond
    I-JSON's range, lone surrogates, non-JSON types) goes to ``rfc8785`` whole, which
    serialises it or raises :class:`DocumentError` with its reason.
    """
    try:
        return _c_encoded(value)
    except (_Unusual, UnicodeEncodeError, rfc8785.CanonicalizationError, ValueError):
        pass  # non-ASCII keys (or worse): the Python writer, then rfc8785
    try:
        out: list[str] = []
        _write(value, out)
        return "".join(out).encode("utf-8")
    except (_Unusual, UnicodeEncodeError, rfc8785.CanonicalizationError, ValueError):
        pass  # let rfc8785 serialise it or say why it cannot
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise DocumentError(f"value cannot be canonicalised: {exc}") from None
