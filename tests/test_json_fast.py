"""``inferops.instrumentation.providers._json.loads`` is ``json.loads``: same value, or same exception.

The fast path skips ``json.loads``' Python preamble; these tests hold it to
the standard library's answer on valid JSON, on near-JSON, on arbitrary bytes
and strings, and on the encodings ``json.detect_encoding`` recognises.
"""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferops.instrumentation.providers._json import loads


def outcome(fn, data):
    """('ok', repr of the value) or ('err', exception type, message): NaN-safe, order-sensitive."""
    try:
        return ("ok", repr(fn(data)))
    except Exception as exc:  # noqa: BLE001 - the exception *is* the outcome compared
        return ("err", type(exc), str(exc))


def same(data) -> None:
    assert outcome(loads, data) == outcome(json.loads, data), data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from([None, (",", ":")]), st.booleans(), st.sampled_from(["", " ", "\n", "\t\r\n "]))
def test_valid_json_decodes_like_the_stdlib(value, separators, ascii_only, trailing):
    text = json.dumps({"v": value}, separators=separators, ensure_ascii=ascii_only) + trailing
    same(text)
    same(text.encode())


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_behave_like_the_stdlib(raw):
    same(raw)
    same(b"{" + raw)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=48))
def test_arbitrary_strings_behave_like_the_stdlib(text):
    same(text)
    same("{" + text)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=40))
def test_truncated_and_extended_objects_behave_like_the_stdlib(value, cut):
    text = json.dumps({"type": "message_delta", "v": value}, separators=(",", ":"))
    for variant in (text[:cut], text + "}", text + " x", text + ",", text + "\x0b", text + "\u00a0", " " + text):
        same(variant)
        same(variant.encode())


@pytest.mark.parametrize("data", [
    b"", b"{", b"{}", b"{} ", b"{}\x00", b"{ }", b'{"a":1}{"b":2}', b'{"a":NaN}', b'{"a":-Infinity}',
    b'{"a":1e400}', b'{"a":"\\ud800"}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xff"}', b'{"a":"\x01"}',
    b'{"a" :\n 1 }', b"[1]", b"  {}", b"1", b"null", "{}", "{\ufeff}", "\ufeff{}", b'{"' + b"[" * 5000 + b'"}',
])
def test_edge_cases_behave_like_the_stdlib(data):
    same(data)


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                                   "utf-32-be"])
@pytest.mark.parametrize("text", ["é", "plain ascii"])  # ASCII in UTF-16-LE is also valid UTF-8: "{\x00..."
def test_every_encoding_json_detects_decodes_like_the_stdlib(codec, text):
    data = json.dumps({"type": "message_start", "n": text}, ensure_ascii=False).encode(codec)
    same(data)
    assert loads(data) == {"type": "message_start", "n": text}


def test_deep_nesting_raises_recursion_error_like_the_stdlib():
    deep = b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert outcome(loads, deep)[:2] == outcome(json.loads, deep)[:2] == ("err", RecursionError)


def test_non_text_input_is_handed_to_the_stdlib():
    same(bytearray(b'{"a":1}'))
    same(memoryview(b'{"a":1}'))
    same(None)
    assert codecs.BOM_UTF8 + b"{}" and loads(codecs.BOM_UTF8 + b"{}") == {}
