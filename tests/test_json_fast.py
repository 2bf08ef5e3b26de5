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


# -- the orjson path (taken for bytes without a run of 19 digits) ------------------------------------------------

@pytest.mark.parametrize("data", [
    # integers at and beyond 64 bits: orjson would make the last ones floats; json.loads keeps ints
    b'{"n":9223372036854775807}', b'{"n":-9223372036854775808}', b'{"n":18446744073709551615}',
    b'{"n":18446744073709551616}', b'{"n":-9223372036854775809}', b'{"n":123456789012345678901234567890}',
    b'{"n":[1,123456789012345678901234567890]}', b'{"x":1.2345678901234567890123e5}',
    # what orjson rejects and json.loads accepts: json.loads decides
    b'{"a":1.7976931348623157e309}', b'{"a":Infinity}', b'\xef\xbb\xbf{"a":1}', b'{"a":"\\udc00x"}',
    # number forms, escapes, whitespace, duplicates
    b'{"a":-0,"b":-0.0,"c":0e0,"d":1E+2,"e":5e-324,"f":2.2250738585072011e-308}', b'{"a":01}', b'{"a":1.}',
    b'{"a":.5}', b'{"a":+1}', b'{"a":1,"a":2}', b'{"\\u00e9\\ud83d\\ude00":"\\/\\b\\f\\n\\r\\t"}', b'\t\n\r {}\n',
    b'{"a":"\x7f"}', b'{"a":true,"b":false,"c":null}', b'{"a":tru}', b'{"a":1}}',
])
def test_the_orjson_path_gives_the_stdlib_answer(data):
    same(data)


def test_orjson_takes_ordinary_bodies_and_skips_long_digit_runs(monkeypatch):
    from inferops.instrumentation.providers import _json as mod

    if not mod._ORJSON:
        pytest.fail("orjson and the compiled digit scan are dependencies: the fast path must be on")
    seen = []
    real = mod._orjson_loads
    monkeypatch.setattr(mod, "_orjson_loads", lambda data: seen.append(data) or real(data))
    body = b'{"id":"msg_1","usage":{"input_tokens":1234567890123456789}}'  # 19 digits: may not fit 64 bits
    assert mod.loads(body) == json.loads(body) and seen == []
    body = b'{"id":"msg_1","usage":{"input_tokens":123456789012345678}}'  # 18 digits: always fits
    assert mod.loads(body) == {"id": "msg_1", "usage": {"input_tokens": 123456789012345678}}
    assert seen == [body]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=25))
def test_digit_run_finds_runs_of_n_digits(raw, n):
    from inferops.instrumentation.providers._chunkscan import digit_run

    longest = max((len(m) for m in __import__("re").findall(rb"[0-9]+", raw)), default=0)
    assert digit_run(raw, n) == (longest >= n)
