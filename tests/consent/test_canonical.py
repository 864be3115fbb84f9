"""Tests for consent.canonical: RFC 8785 canonical bytes and the strict JSON parser.

The expected canonical bytes below are written out by hand from RFC 8785 (§3.2.2 for
strings, §3.2.3 for property sorting by UTF-16 code units, ECMAScript number formatting for
integers), not produced by the library under test.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.canonical import MAX_DEPTH, MAX_DOCUMENT_BYTES, canonical_bytes, parse_json
from consent.errors import DocumentError, DocumentTooLargeError

# --------------------------------------------------------------------------- RFC 8785 vectors


def test_keys_sorted_by_utf16_code_units() -> None:
    value = {"\u20ac": 1, "\r": 2, "1": 3, "\U0001F600": 4}
    # "\r" (0x000D) < "1" (0x0031) < "€" (0x20AC) < "😀" (0xD83D 0xDE00 in UTF-16)
    expected = b'{"\\r":2,"1":3,"\xe2\x82\xac":1,"\xf0\x9f\x98\x80":4}'
    assert canonical_bytes(value) == expected


def test_supplementary_plane_key_sorts_before_high_bmp_key() -> None:
    # By code point U+FB33 < U+1F600, but in UTF-16 0xD83D (high surrogate) < 0xFB33.
    value = {"\ufb33": "dalet", "\U0001F600": "grin"}
    expected = (b'{"\xf0\x9f\x98\x80":"grin","\xef\xac\xb3":"dalet"}')
    assert canonical_bytes(value) == expected


def test_rfc8785_section_3_2_3_sorting_example() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001F600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        b'{"\\r":"Carriage Return",'
        b'"1":"One",'
        b'"\xc2\x80":"Control",'
        b'"\xc3\xb6":"Latin Small Letter O With Diaeresis",'
        b'"\xe2\x82\xac":"Euro Sign",'
        b'"\xf0\x9f\x98\x80":"Emoji: Grinning Face",'
        b'"\xef\xac\xb3":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_bytes(value) == expected


def test_string_escaping() -> None:
    value = "\u0000\u0001\u0008\u0009\u000a\u000b\u000c\u000d\u001f \"\\/\u007f\u2028\u00e9"
    expected = (
        b'"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\/'
        b'\x7f\xe2\x80\xa8\xc3\xa9"'
    )
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"0"),
        (1, b"1"),
        (-1, b"-1"),
        (1000000, b"1000000"),
        (2**53 - 1, b"9007199254740991"),
        (-(2**53 - 1), b"-9007199254740991"),
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
        ("", b'""'),
        ([], b"[]"),
        ({}, b"{}"),
    ],
)
def test_scalars_and_empty_containers(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


def test_integer_outside_ieee754_safe_range_refused() -> None:
    with pytest.raises(DocumentError, match="cannot be canonicalised"):
        canonical_bytes(2**53 + 1)


def test_nested_structure() -> None:
    value = {"b": [1, {"d": True, "c": None}, "x"], "a": {}, "aa": {"z": [], "y": -5}}
    expected = b'{"a":{},"aa":{"y":-5,"z":[]},"b":[1,{"c":null,"d":true},"x"]}'
    assert canonical_bytes(value) == expected


def test_array_order_preserved() -> None:
    assert canonical_bytes([3, 1, 2]) == b"[3,1,2]"


def test_differs_from_json_dumps_sort_keys() -> None:
    value = {"\ufb33": 1, "\U0001F600": 2, "caf\u00e9": [1, 2]}
    naive = json.dumps(value, sort_keys=True).encode()
    compact_naive = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    canonical = canonical_bytes(value)
    assert canonical != naive
    # Even with compact separators and raw UTF-8, Python sorts by code point, RFC 8785 by
    # UTF-16 code units: the emoji comes before U+FB33 only in the canonical form.
    assert canonical != compact_naive
    assert canonical == b'{"caf\xc3\xa9":[1,2],"\xf0\x9f\x98\x80":2,"\xef\xac\xb3":1}'


def test_canonical_bytes_ignore_input_formatting() -> None:
    a = parse_json(b'{ "b" : [1, 2],\n  "a": "\\u00e9" }')
    b = parse_json('{"a":"\u00e9","b":[1,2]}')
    assert canonical_bytes(a) == canonical_bytes(b) == b'{"a":"\xc3\xa9","b":[1,2]}'


# --------------------------------------------------------------------------- round trip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_round_trip_and_idempotence(value: Any) -> None:
    once = canonical_bytes(value)
    parsed = parse_json(once)
    assert parsed == value
    assert _same_types(parsed, value)
    assert canonical_bytes(parsed) == once


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_formatting_gives_same_canonical_bytes(value: Any) -> None:
    pretty = json.dumps(value, indent=3, ensure_ascii=True)
    assert canonical_bytes(parse_json(pretty)) == canonical_bytes(value)


# --------------------------------------------------------------------------- parse_json refusals


def test_duplicate_keys_refused() -> None:
    with pytest.raises(DocumentError, match="duplicate key 'a'"):
        parse_json(b'{"a": 1, "b": 2, "a": 3}')


def test_duplicate_keys_refused_when_nested() -> None:
    with pytest.raises(DocumentError, match="duplicate key 'x'"):
        parse_json(b'{"outer": [{"x": 1, "x": 1}]}')


def test_duplicate_keys_refused_after_unescaping() -> None:
    with pytest.raises(DocumentError, match="duplicate key 'a'"):
        parse_json(b'{"a": 1, "\\u0061": 2}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_refused(constant: str) -> None:
    with pytest.raises(DocumentError, match=f"JSON constant {constant} is not allowed"):
        parse_json(f'{{"a": {constant}}}')


@pytest.mark.parametrize("literal", ["1e400", "-1e400"])
def test_number_overflowing_to_infinity_refused(literal: str) -> None:
    # Python's float() turns 1e400 into inf without calling parse_constant; an infinity
    # must not slip in this way.
    with pytest.raises(DocumentError):
        parse_json(f'{{"a": {literal}}}')


def test_integer_with_too_many_digits_is_a_document_error() -> None:
    # CPython refuses to convert integers of more than 4300 digits with a plain ValueError;
    # a hostile document must still give a DocumentError, not an unexpected exception.
    with pytest.raises(DocumentError):
        parse_json(b'{"a": ' + b"1" * 5000 + b"}")


def test_byte_order_mark_refused() -> None:
    with pytest.raises(DocumentError, match="byte-order mark"):
        parse_json(b'\xef\xbb\xbf{"a": 1}')


def test_byte_order_mark_in_text_refused() -> None:
    with pytest.raises(DocumentError, match="byte-order mark"):
        parse_json('\ufeff{"a": 1}')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "\xff"}',
        b'{"a": "\xc3"}',
        b'{"a": "\xed\xa0\x80"}',  # UTF-8-encoded surrogate
        '{"a": "\u00e9"}'.encode("latin-1"),
        '{"a": 1}'.encode("utf-16"),
    ],
)
def test_non_utf8_refused(raw: bytes) -> None:
    with pytest.raises(DocumentError, match="not UTF-8"):
        parse_json(raw)


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


def test_depth_at_limit_accepted() -> None:
    assert parse_json(_nested(MAX_DEPTH, "1")) is not None
    assert parse_json(_nested_objects(MAX_DEPTH)) is not None


@pytest.mark.parametrize(
    "doc",
    [
        _nested(MAX_DEPTH + 1, "1"),
        _nested(MAX_DEPTH + 1, ""),  # the innermost array empty
        _nested_objects(MAX_DEPTH + 1),
        '{"k":' * MAX_DEPTH + "{}" + "}" * MAX_DEPTH,  # 33 objects, the innermost empty
        _nested(200, "1"),
        _nested(100_000, "1"),  # deep enough to exhaust Python's recursion
    ],
    ids=["arrays", "arrays-empty-leaf", "objects", "objects-empty-leaf", "200", "100000"],
)
def test_depth_over_limit_refused(doc: str) -> None:
    with pytest.raises(DocumentError, match=f"deeper than {MAX_DEPTH} levels"):
        parse_json(doc)


def test_depth_refusal_for_unclosed_deep_document() -> None:
    with pytest.raises(DocumentError):
        parse_json("[" * 100_000)


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t\r ", ""])
def test_empty_refused(raw: bytes | str) -> None:
    with pytest.raises(DocumentError, match="document is empty"):
        parse_json(raw)


def test_over_limit_refused_quickly() -> None:
    raw = b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    start = time.perf_counter()
    with pytest.raises(DocumentTooLargeError, match="limit is 262,144 bytes"):
        parse_json(raw)
    assert time.perf_counter() - start < 0.5


def test_limit_is_inclusive_and_counts_bytes() -> None:
    filler = MAX_DOCUMENT_BYTES - len(b'{"a":""}')
    exact = b'{"a":"' + b"x" * filler + b'"}'
    assert len(exact) == MAX_DOCUMENT_BYTES
    assert parse_json(exact) == {"a": "x" * filler}
    with pytest.raises(DocumentTooLargeError):
        parse_json(exact + b" ")


def test_limit_counts_utf8_bytes_of_text_input() -> None:
    # 100,000 characters of three UTF-8 bytes each: under the limit in characters, over in bytes.
    text = '"' + "\u20ac" * 100_000 + '"'
    with pytest.raises(DocumentTooLargeError):
        parse_json(text)


def test_custom_limit() -> None:
    with pytest.raises(DocumentTooLargeError):
        parse_json(b"[1, 2, 3]", limit=4)


@pytest.mark.parametrize(
    "raw", [b'{"a": 1} x', b'{"a": 1}{"b": 2}', b"[1] ]", b'{"a": 1},', b"1 2"]
)
def test_trailing_garbage_refused(raw: bytes) -> None:
    with pytest.raises(DocumentError, match=r"malformed JSON.*Extra data"):
        parse_json(raw)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a": }', b"{'a': 1}", b'{"a": 1,}', b"[1,]", b"tru", b'{"a" 1}', b"01"],
)
def test_malformed_json_refused_with_position(raw: bytes) -> None:
    with pytest.raises(DocumentError, match=r"malformed JSON at line \d+ column \d+"):
        parse_json(raw)


def test_surrounding_whitespace_accepted() -> None:
    assert parse_json(b' \n {"a": [1, true, null, "x"]} \n ') == {"a": [1, True, None, "x"]}


_any_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_any_values)
def test_fast_path_gives_exactly_the_rfc8785_bytes(value: Any) -> None:
    """canonical_bytes takes the stdlib encoder for float-free, ASCII-key values: it must
    produce the very bytes the rfc8785 library produces, for any input."""
    import rfc8785

    try:
        expected = bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError:
        with pytest.raises(DocumentError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize("text", ["\x00\x1f\x7f", "\u2028\u2029", "é😀", '"\\/', "\b\f\n\r\t"])
def test_fast_path_escaping_matches_rfc8785(text: str) -> None:
    import rfc8785

    assert canonical_bytes({"k": text, "list": [text]}) == bytes(rfc8785.dumps(
        {"k": text, "list": [text]}))


_keys_and_floats = st.recursive(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x1F600,
                                            exclude_categories=["Cs"]),
                              max_size=4), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400)
@given(_keys_and_floats)
def test_mixed_path_gives_exactly_the_rfc8785_bytes(value: Any) -> None:
    """Documents with floats or non-ASCII keys (sorted by UTF-16 code units, so astral
    characters sort before U+E000-U+FFFF) take the mixed writer: same bytes as rfc8785."""
    import rfc8785

    assert canonical_bytes({"k": value, "\uffff": 0.5, "\U0001f600": [value]}) == bytes(
        rfc8785.dumps({"k": value, "\uffff": 0.5, "\U0001f600": [value]}))


def test_only_floats_reach_rfc8785(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision carries match distances: the floats, not the whole document, go through
    rfc8785's pure-Python encoder."""
    import rfc8785

    real = rfc8785.dumps
    seen: list[Any] = []

    def spy(value: Any) -> bytes:
        seen.append(value)
        return bytes(real(value))

    monkeypatch.setattr(rfc8785, "dumps", spy)
    doc: dict[str, Any] = {"identities": [{"distance": 0.31, "threshold": 0.6, "track_id": "t1"}],
           "operator": "Zoë", "ñ": [1, 2.5e-7, None, True], "n": 2**53 - 1}
    assert canonical_bytes(doc) == bytes(real(doc))
    assert seen and all(type(v) is float for v in seen)


@pytest.mark.parametrize("value", [{"a": 2**53, "b": 0.5}, {"\ud800": 0.5}, {"a": [float("nan")]},
                                   {1: 0.5}, {"a": {1, 2}}])
def test_mixed_path_refuses_what_rfc8785_refuses(value: Any) -> None:
    with pytest.raises(DocumentError):
        canonical_bytes(value)


@settings(max_examples=400)
@given(st.dictionaries(st.text("\x00\\\"u01 ", max_size=8),
                       st.text("\x00\\\"u01 ", max_size=8) | st.floats(allow_nan=False,
                                                                      allow_infinity=False),
                       max_size=6))
def test_float_markers_cannot_be_forged_by_strings(value: dict[str, Any]) -> None:
    """Floats stand in as marker strings while the C encoder runs; strings made of the
    marker's own characters (NUL, backslash, quote, u, digits) must not be taken for one."""
    import rfc8785

    doc: dict[str, Any] = {"x": 0.25, "v": value, "w": list(value.values())}
    assert canonical_bytes(doc) == bytes(rfc8785.dumps(doc))
