"""Request bodies: the few members the adapters read equal those of the fully decoded body.

``request_fields`` reads the wanted top-level members with the compiled
``_chunkscan.top_members`` and decodes only those; for every valid JSON body it
must return exactly ``{k: obj[k] for k in keys if k in obj}`` of ``json.loads``
(duplicate keys, escapes inside skipped strings, nesting, whitespace, unicode).
The adapters built on it give the same ``RequestInfo`` as with the whole body
decoded (the pure-Python fallback), and the full body is still there on demand.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferops.instrumentation.providers import _common
from inferops.instrumentation.providers.anthropic import AnthropicAdapter
from inferops.instrumentation.providers.base import Endpoint
from inferops.instrumentation.providers.openai import OpenAIAdapter

KEYS = _common.RequestKeys("model", "stream", "stream_options", "user", "max_tokens", "temperature", "metadata")


def _expected(body: bytes) -> dict:
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return {k: obj[k] for k in KEYS.names.values() if k in obj} if isinstance(obj, dict) else {}


def test_the_compiled_scan_is_used_in_this_install():
    from inferops.instrumentation.providers import _chunkscan

    assert _common._top_members is _chunkscan.top_members


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20) \
    | st.sampled_from(['"', "\\", '\\"', "}", "]", "{[", '","model":"x', "\u2028", "é"])
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6) | st.sampled_from(list(KEYS.names.values())),
                                             inner, max_size=4), max_leaves=12)
member_names = st.sampled_from(list(KEYS.names.values()) + ["messages", "tools", "n", "a\"b", "é", ""])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(member_names, json_values), max_size=8),
       st.sampled_from([(",", ":"), (", ", ": "), (" ,\n ", " :\t")]), st.booleans(), st.booleans())
def test_same_members_as_the_decoded_body(members, separators, ascii_only, pad):
    # Built member by member, so duplicate keys reach the wire (json.loads keeps the last one).
    item_sep, key_sep = separators
    parts = [json.dumps(k, ensure_ascii=ascii_only) + key_sep + json.dumps(v, ensure_ascii=ascii_only)
             for k, v in members]
    text = "{" + item_sep.join(parts) + "}"
    if pad:
        text = " \n\t" + text + " \r\n"
    body = text.encode("utf-8")
    assert _common.request_fields(body, KEYS) == _expected(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(body):
    out = _common.request_fields(body, KEYS)
    assert isinstance(out, dict)
    assert set(out) <= set(KEYS.names.values())


@pytest.mark.parametrize("body", [
    b"", b"null", b"[1, 2]", b'"text"', b"{", b'{"model": "x"', b'{"model": "x",}', b'{"model" "x"}',
    b'{"model": "x"} trailing', b'{"mo\\u0064el": "escaped-key"}', b'{"model": tru}', b"\xff\xfe{\x00",
    b'{"model": "x", "stream": true}', b'{"messages": [{"content": "\\"}]"}], "model": "gpt-4o"}',
])
def test_edge_bodies_match_the_decoded_body(body):
    # Escaped keys and other unusual shapes fall back to decoding the whole body: same answer.
    assert _common.request_fields(body, KEYS) == _expected(body)


def test_without_the_extension_the_whole_body_is_decoded(monkeypatch):
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    compiled = _common.request_fields(body, KEYS)
    monkeypatch.setattr(_common, "_top_members", None)
    assert _common.request_fields(body, KEYS) == compiled == {"model": "gpt-4o", "stream": True}


def _info_fields(info) -> dict:
    return {k: getattr(info, k) for k in ("provider", "operation", "request_model", "stream", "user", "service_tier",
                                          "new_body", "injected_stream_usage", "attributes", "kind")}


LONG = "Summarise the cost report. " * 2000  # ~54 KB of prompt the adapters never need to decode


@pytest.mark.parametrize("adapter, path, body", [
    (OpenAIAdapter(), "/v1/chat/completions",
     {"model": "gpt-4o", "messages": [{"role": "user", "content": LONG}], "stream": True, "max_tokens": 9,
      "temperature": 0.2, "user": "u-1", "service_tier": "flex"}),
    (OpenAIAdapter(), "/v1/chat/completions",
     {"model": "gpt-4o", "messages": [], "stream": True, "stream_options": {"foo": 1}}),
    (OpenAIAdapter(), "/v1/responses", {"model": "o3", "input": LONG, "max_output_tokens": 5, "safety_identifier": "s"}),
    (AnthropicAdapter(), "/v1/messages",
     {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": LONG}],
      "metadata": {"user_id": "u-9"}, "stream": True, "temperature": 1}),
])
def test_adapters_give_the_same_request_info_as_with_the_body_decoded(monkeypatch, adapter, path, body):
    raw = json.dumps(body).encode()
    ep = Endpoint("https", "api.example.com", None, path)
    fast = adapter.parse_request("POST", ep, {}, raw)
    monkeypatch.setattr(_common, "_top_members", None)
    slow = adapter.parse_request("POST", ep, {}, raw)
    assert _info_fields(fast) == _info_fields(slow)
    assert fast.request_model == body["model"]
    # The whole body is decoded only when asked for (estimates, capture, routing), and then equals the request.
    assert fast.body is None and fast.raw_body == raw
    assert fast.parsed_body() == body and fast.raw_body is None


@pytest.mark.parametrize("raw", [b'{"model":"m","stream":true}', b'{"model":"m","stream":true} \n'])
def test_usage_injection_splices_after_the_last_member(raw):
    info = OpenAIAdapter().parse_request("POST", Endpoint("https", "api.openai.com", None, "/v1/chat/completions"),
                                         {}, raw)
    assert info.injected_stream_usage
    assert json.loads(info.new_body) == {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    assert info.new_body.startswith(raw.rstrip()[:-1])  # the caller's bytes, untouched, then one member


def test_injection_with_existing_options_re_encodes_the_whole_body():
    body = {"model": "m", "stream": True, "stream_options": {"foo": 1}, "messages": [{"role": "user", "content": "x"}]}
    info = OpenAIAdapter().parse_request("POST", Endpoint("https", "api.openai.com", None, "/v1/chat/completions"),
                                         {}, json.dumps(body).encode())
    assert json.loads(info.new_body) == {**body, "stream_options": {"foo": 1, "include_usage": True}}
