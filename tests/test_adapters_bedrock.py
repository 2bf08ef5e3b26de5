"""Bedrock adapter: Converse (cache reads/writes added to inputTokens), event streams, InvokeModel."""

from __future__ import annotations

import base64
import functools
import json

import httpx2
from hypothesis import given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import BedrockAdapter
from inferops.mock_providers import MockProviderServer, encode_event_stream_message
from test_adapters_common import feed_all, fixture, request, usage_tuple

HOST = "https://bedrock-runtime.us-east-1.amazonaws.com"
MSG = [{"role": "user", "content": [{"text": "Say hello to the mock server"}]}]


def test_converse_cache_arithmetic_and_ttl():
    a = BedrockAdapter()
    info = request(a, f"{HOST}/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
                   {"messages": MSG, "inferenceConfig": {"maxTokens": 50}})
    assert info.request_model == "anthropic.claude-3-7-sonnet-20250219-v1:0" and not info.stream
    res = a.parse_response(info, 200, {}, fixture("bedrock_converse.json"))
    # inputTokens 12 excludes 2000 read + 500 written (200 for 1h, 300 for 5m).
    assert usage_tuple(res) == (2512, 2000, 300, 200, 30, 0)
    assert sum(res.usage.token_buckets().values()) == 2542  # == totalTokens
    assert res.output_text == "Bonjour" and res.finish_reasons == ["end_turn"]


def _mock(path: str, body: dict, headers: dict | None = None) -> httpx2.Response:
    with MockProviderServer() as srv:
        return httpx2.post(f"{srv.base_url}/bedrock{path}", json=body, headers=headers or {})


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), max_size=40))
def test_converse_stream_event_stream_split_anywhere(cuts):
    r = _converse_stream()
    a = BedrockAdapter()
    info = request(a, f"{HOST}/model/amazon.nova-pro-v1:0/converse-stream", {"messages": MSG})
    assert info.stream
    p = a.stream_parser(info, r.headers)
    assert feed_all(p, r.content, cuts) == r.content
    res = p.finish()
    assert usage_tuple(res) == (10 + 9 + 4, 9, 4, 0, 16, 0)
    assert res.output_text == " ".join(f"w{i}" for i in range(16)) and p.first_content_seen()


@functools.lru_cache(maxsize=1)
def _converse_stream() -> httpx2.Response:
    return _mock("/model/amazon.nova-pro-v1:0/converse-stream", {"messages": MSG},
                 {"x-mock-cached-tokens": "9", "x-mock-cache-write-tokens": "4"})


def test_invoke_anthropic_body_and_stream():
    a = BedrockAdapter()
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 6,
            "messages": [{"role": "user", "content": "Say hello to the mock server"}]}
    model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    r = _mock(f"/model/{model}/invoke", body, {"x-mock-cached-tokens": "50"})
    info = request(a, f"{HOST}/model/{model}/invoke", body)
    assert info.kind == "invoke-anthropic"
    res = a.parse_response(info, 200, r.headers, r.content)
    assert usage_tuple(res) == (60, 50, 0, 0, 6, 0)
    r = _mock(f"/model/{model}/invoke-with-response-stream", body, {"x-mock-cached-tokens": "50"})
    info = request(a, f"{HOST}/model/{model}/invoke-with-response-stream", body)
    p = a.stream_parser(info, r.headers)
    feed_all(p, r.content)
    res = p.finish()
    assert usage_tuple(res) == (60, 50, 0, 0, 6, 0) and res.output_text == "w0 w1 w2 w3 w4 w5"


def test_invoke_other_family_uses_token_headers():
    a = BedrockAdapter()
    info = request(a, f"{HOST}/model/meta.llama3-70b-instruct-v1:0/invoke", {"prompt": "x"})
    res = a.parse_response(info, 200, {"X-Amzn-Bedrock-Input-Token-Count": "17",
                                       "X-Amzn-Bedrock-Output-Token-Count": "3"},
                           b'{"generation":"abc","prompt_token_count":99,"generation_token_count":99,"stop_reason":"stop"}')
    assert usage_tuple(res) == (17, 0, 0, 0, 3, 0)  # headers are authoritative
    assert res.output_text == "abc" and res.finish_reasons == ["stop"]
    res = a.parse_response(info, 200, {}, b'{"generation":"abc","prompt_token_count":9,"generation_token_count":2}')
    assert usage_tuple(res) == (9, 0, 0, 0, 2, 0)
    emb = request(a, f"{HOST}/model/amazon.titan-embed-text-v2:0/invoke", {"inputText": "x"})
    assert emb.operation == "embeddings"
    res = a.parse_response(emb, 200, {}, b'{"embedding":[0.1],"inputTextTokenCount":4}')
    assert usage_tuple(res) == (4, 0, 0, 0, 0, 0)


def test_invoke_stream_invocation_metrics_and_exception():
    a = BedrockAdapter()
    info = request(a, f"{HOST}/model/meta.llama3-70b-instruct-v1:0/invoke-with-response-stream", {"prompt": "x"})
    ev = {"generation": "hi", "stop_reason": "stop",
          "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11, "outputTokenCount": 2}}
    data = encode_event_stream_message({":event-type": "chunk", ":message-type": "event"},
                                       json.dumps({"bytes": base64.b64encode(json.dumps(ev).encode()).decode()}).encode())
    p = a.stream_parser(info, {})
    feed_all(p, data)
    assert usage_tuple(p.finish()) == (11, 0, 0, 0, 2, 0)
    p = a.stream_parser(info, {})
    feed_all(p, encode_event_stream_message({":exception-type": "throttlingException", ":message-type": "exception"},
                                            b'{"message":"slow down"}'))
    res = p.finish()
    assert res.error_type == "throttlingException" and res.usage is None


def test_http_error_type_from_header():
    a = BedrockAdapter()
    info = request(a, f"{HOST}/model/amazon.nova-pro-v1:0/converse", {"messages": MSG})
    r = _mock("/model/amazon.nova-pro-v1:0/converse", {"messages": MSG}, {"x-mock-status": "429"})
    res = a.parse_response(info, r.status_code, r.headers, r.content)
    assert res.error_type == "ThrottlingException" and res.usage is None
