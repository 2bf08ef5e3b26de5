"""Gemini / Vertex AI adapter: cached inside the prompt count, thoughts billed as output."""

from __future__ import annotations

import json

from hypothesis import given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import GeminiAdapter
from inferops.mock_providers import MockProviderServer
from test_adapters_common import feed_all, fixture, request, usage_tuple

URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"


def test_generate_content_arithmetic():
    a = GeminiAdapter()
    info = request(a, URL, {"contents": [], "generationConfig": {"maxOutputTokens": 100}})
    assert info.request_model == "gemini-2.5-pro" and info.operation == "generate_content" and not info.stream
    res = a.parse_response(info, 200, {}, fixture("gemini_generate.json"))
    # prompt 1200 (includes 1024 cached) + 50 tool-use prompt; output 40 candidates + 360 thoughts.
    assert usage_tuple(res) == (1250, 1024, 0, 0, 400, 360)
    assert sum(res.usage.token_buckets().values()) == 1650  # == totalTokenCount
    assert res.usage.model == "gemini-2.5-pro" and res.response_id == "abc123" and res.finish_reasons == ["STOP"]
    assert res.output_text == "Four."  # thought parts are not output text


@hsettings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=480), max_size=40))
def test_sse_stream_crlf_last_usage_wins(cuts):
    a = GeminiAdapter()
    info = request(a, URL.replace(":generateContent", ":streamGenerateContent") + "?alt=sse", {"contents": []})
    assert info.stream
    p = a.stream_parser(info, {"content-type": "text/event-stream"})
    data = fixture("gemini_stream.sse")
    assert feed_all(p, data, cuts) == data
    res = p.finish()
    assert usage_tuple(res) == (9, 0, 0, 0, 22, 20)
    assert res.output_text == "The end" and p.first_content_seen()


def test_json_array_stream_from_mock_server_every_byte():
    with MockProviderServer() as srv:
        import httpx2
        r = httpx2.post(f"{srv.base_url}/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                        json={"contents": [{"parts": [{"text": "Say hello to the mock server"}]}]},
                        headers={"x-mock-cached-tokens": "6", "x-mock-chunks": "5"})
    a = GeminiAdapter()
    info = request(a, URL.replace(":generateContent", ":streamGenerateContent"), {"contents": []})
    p = a.stream_parser(info, r.headers)
    feed_all(p, r.content)
    res = p.finish()
    assert usage_tuple(res) == (16, 6, 0, 0, 16, 0)
    assert res.output_text == " ".join(f"w{i}" for i in range(16))


def test_vertex_gemini_and_error():
    a = GeminiAdapter("gcp.vertex_ai")
    url = ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/"
           "models/gemini-2.5-flash:generateContent")
    info = request(a, url, {"contents": []})
    assert info.provider == "gcp.vertex_ai" and info.request_model == "gemini-2.5-flash"
    res = a.parse_response(info, 429, {}, json.dumps({"error": {"code": 429, "message": "x",
                                                                "status": "RESOURCE_EXHAUSTED"}}).encode())
    assert res.error_type == "RESOURCE_EXHAUSTED" and res.usage is None
    res = a.parse_response(info, 200, {}, b'{"candidates": []}')
    assert res.usage is None and res.parse_error == "no usage"


COMPAT = "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"


def test_openai_compatible_endpoint_is_priced_as_gemini():
    """Google AI's OpenAI-compatible endpoint: OpenAI shapes, provider gcp.gemini, no usage injection."""
    a = GeminiAdapter()
    info = request(a, COMPAT, {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],
                               "max_tokens": 20})
    assert info.provider == "gcp.gemini" and info.request_model == "gemini-2.5-flash"
    assert info.operation == "chat" and info.new_body is None
    body = json.dumps({"id": "x1", "object": "chat.completion", "created": 1, "model": "gemini-2.5-flash",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}).encode()
    res = a.parse_response(info, 200, {}, body)
    assert usage_tuple(res) == (12, 0, 0, 0, 7, 0) and res.usage.provider == "gcp.gemini"
    assert res.finish_reasons == ["stop"] and res.output_text == "Hello"
    # Streams: the OpenAI parser, nothing injected or filtered; parsing does not change the info.
    sinfo = request(a, COMPAT, {"model": "gemini-2.5-flash", "messages": [], "stream": True})
    assert not sinfo.injected_stream_usage and sinfo.new_body is None
    p = a.stream_parser(sinfo, {})
    chunk = {"id": "x2", "object": "chat.completion.chunk", "created": 1, "model": "gemini-2.5-flash",
             "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    data = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    assert feed_all(p, data) == data
    out = p.finish()
    assert usage_tuple(out) == (5, 0, 0, 0, 2, 0) and sinfo.kind.startswith("openai-compat:")
    # The native API on the same host still goes to the Gemini parsing.
    assert request(a, URL, {"contents": []}).kind == "gemini"
