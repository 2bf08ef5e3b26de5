"""Anthropic adapter: cache reads and writes added back into the input, cumulative stream usage."""

from __future__ import annotations

import json

from hypothesis import given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import AnthropicAdapter, GeminiAdapter
from test_adapters_common import feed_all, fixture, request, usage_tuple

URL = "https://api.anthropic.com/v1/messages"
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "user-7"}}


def test_message_cache_arithmetic_and_ttl_split():
    a = AnthropicAdapter()
    info = request(a, URL, BODY)
    assert info.user == "user-7" and info.request_model == "claude-sonnet-4-5" and not info.stream
    res = a.parse_response(info, 200, {}, fixture("anthropic_message.json"))
    # input 21 excludes 10000 read + 2500 written (500 for 5m, 2000 for 1h): whole input 12521.
    assert usage_tuple(res) == (12521, 10000, 500, 2000, 393, 0)
    assert res.usage.token_buckets() == {"input": 21, "cache_read": 10000, "cache_write": 2500,
                                         "output": 393, "reasoning": 0}
    assert res.usage.service_tier == "priority"
    assert res.usage.model == "claude-sonnet-4-5-20250929" and res.finish_reasons == ["end_turn"]
    assert res.output_text == "Hello!"  # text blocks only, not thinking


def test_cache_creation_without_split_is_5m():
    a = AnthropicAdapter()
    info = request(a, URL, BODY)
    res = a.parse_response(info, 200, {}, json.dumps({"model": "claude-3-5-haiku-20241022", "content": [],
                                                      "usage": {"input_tokens": 10, "cache_creation_input_tokens": 90,
                                                                "cache_read_input_tokens": 0,
                                                                "output_tokens": 5}}).encode())
    assert usage_tuple(res) == (100, 0, 90, 0, 5, 0)


@hsettings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1300), max_size=50))
def test_stream_cumulative_message_delta_overwrites(cuts):
    a = AnthropicAdapter()
    info = request(a, URL, {**BODY, "stream": True})
    p = a.stream_parser(info, {})
    data = fixture("anthropic_stream.sse")
    assert feed_all(p, data, cuts) == data  # never filtered
    res = p.finish()
    # message_delta repeats input/cache counts (cumulative) and output 10 then 15: nothing doubled, last wins.
    assert usage_tuple(res) == (4025, 3000, 1000, 0, 15, 0)
    assert res.output_text == "Hello!" and res.finish_reasons == ["end_turn"] and p.first_content_seen()


def test_stream_interrupted_keeps_input_usage():
    a = AnthropicAdapter()
    info = request(a, URL, {**BODY, "stream": True})
    p = a.stream_parser(info, {})
    data = fixture("anthropic_stream.sse")
    feed_all(p, data[: data.index(b"event: content_block_stop")])
    res = p.finish()
    assert usage_tuple(res) == (4025, 3000, 1000, 0, 1, 0)  # message_start's output placeholder


def test_stream_error_event():
    a = AnthropicAdapter()
    info = request(a, URL, {**BODY, "stream": True})
    p = a.stream_parser(info, {})
    feed_all(p, b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')
    res = p.finish()
    assert res.error_type == "overloaded_error" and res.usage is None and res.parse_error


def test_http_error_body():
    a = AnthropicAdapter()
    info = request(a, URL, BODY)
    res = a.parse_response(info, 429, {}, b'{"type":"error","error":{"type":"rate_limit_error","message":"x"}}')
    assert res.error_type == "rate_limit_error" and res.usage is None


def test_vertex_raw_predict_model_from_path():
    a = GeminiAdapter("gcp.vertex_ai")
    url = ("https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/"
           "models/claude-sonnet-4-5@20250929:streamRawPredict")
    info = request(a, url, {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": []})
    assert info.request_model == "claude-sonnet-4-5@20250929" and info.stream and info.provider == "gcp.vertex_ai"
    p = a.stream_parser(info, {"content-type": "text/event-stream"})
    feed_all(p, fixture("anthropic_stream.sse"))
    assert usage_tuple(p.finish()) == (4025, 3000, 1000, 0, 15, 0)
    info = request(a, url.replace("streamRawPredict", "rawPredict"), {"max_tokens": 5, "messages": []})
    assert not info.stream
    assert usage_tuple(a.parse_response(info, 200, {}, fixture("anthropic_message.json")))[0] == 12521
