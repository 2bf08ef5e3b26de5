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
