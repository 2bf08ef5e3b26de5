"""OpenAI-format adapter: arithmetic per FACTS.md, usage injection and exact filtering, SDK parity."""

from __future__ import annotations

import json
import random
import re

import httpx2
import openai
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import AdapterRouter, AzureOpenAIAdapter, OpenAIAdapter
from inferops.mock_providers import MockProviderServer
from inferops.settings import Settings
from test_adapters_common import feed_all, fixture, request, usage_tuple

CHAT = "https://api.openai.com/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]


def test_chat_cached_and_reasoning_are_subsets():
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "o3-mini", "messages": MSG, "service_tier": "flex", "user": "u-42"})
    assert info.user == "u-42" and info.service_tier == "flex"
    res = a.parse_response(info, 200, {}, fixture("openai_chat.json"))
    # prompt 1117 includes 1024 cached; completion 946 includes 704 reasoning.
    assert usage_tuple(res) == (1117, 1024, 0, 0, 946, 704)
    b = res.usage.token_buckets()
    assert b == {"input": 93, "cache_read": 1024, "cache_write": 0, "output": 242, "reasoning": 704}
    assert sum(b.values()) == 1117 + 946
    assert res.usage.model == "o3-mini-2025-01-31" and res.response_id.startswith("chatcmpl-")
    assert res.usage.service_tier == "flex" and res.finish_reasons == ["stop"]
    assert res.output_text == "The answer is 4."


def test_stream_usage_chunk_and_tier():
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG, "stream": True,
                             "stream_options": {"include_usage": True}})
    assert info.new_body is None and not info.injected_stream_usage  # caller asked itself
    data = fixture("openai_chat_stream_usage.sse")
    p = a.stream_parser(info, {})
    assert feed_all(p, data) == data  # not filtering: feed() returns its input, flush() nothing more
    assert p.first_content_seen()
    res = p.finish()
    assert usage_tuple(res) == (2006, 1920, 0, 0, 300, 0)
    assert res.output_text == "Hello world \u00e9\u4e16" and res.finish_reasons == ["stop"]
    assert res.usage.service_tier == "standard" and res.response_model == "gpt-4o-2024-08-06"


def test_feed_returns_input_unchanged_without_injection():
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG, "stream": True,
                             "stream_options": {"include_usage": True}})
    p = a.stream_parser(info, {})
    data = fixture("openai_chat_stream_usage.sse")
    assert b"".join(p.feed(data[i:i + 5]) for i in range(0, len(data), 5)) == data


def test_injection_rewrites_body_and_keeps_other_options():
    a = OpenAIAdapter()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "h\u00e9llo \u4e16"}], "stream": True,
            "stream_options": {"include_obfuscation": False}}
    info = request(a, CHAT, body)
    assert info.injected_stream_usage
    new = json.loads(info.new_body)
    assert new["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert {k: v for k, v in new.items() if k != "stream_options"} == {k: v for k, v in body.items()
                                                                        if k != "stream_options"}
    # Explicit include_usage: false is the caller's choice: no injection.
    info = request(a, CHAT, {**body, "stream_options": {"include_usage": False}})
    assert not info.injected_stream_usage and info.new_body is None
    # Non-streaming, embeddings, Responses API: never.
    for url, b in ((CHAT, {"model": "m"}), ("https://api.openai.com/v1/responses", {"model": "m", "stream": True}),
                   ("https://api.openai.com/v1/embeddings", {"model": "m", "input": "x"})):
        assert not request(a, url, b).injected_stream_usage
    # Legacy completions accept stream_options too.
    assert request(a, "https://api.openai.com/v1/completions", {"model": "m", "stream": True}).injected_stream_usage


def test_injection_switches():
    body = {"model": "m", "messages": MSG, "stream": True}
    r = AdapterRouter(Settings(stream_usage_injection=False))
    assert not request(r.route("https", "api.openai.com", None, "/v1/chat/completions"), CHAT, body).injected_stream_usage
    r = AdapterRouter(Settings(stream_usage_injection_disabled_hosts=("api.groq.com", "vllm:8000"),
                               self_hosted={"http://vllm:8000/v1": "vllm", "http://tgi:80/v1": "tgi"}))
    groq = r.route("https", "api.groq.com", None, "/openai/v1/chat/completions")
    assert not request(groq, "https://api.groq.com/openai/v1/chat/completions", body).injected_stream_usage
    vllm = r.route("http", "vllm", 8000, "/v1/chat/completions")
    assert not request(vllm, "http://vllm:8000/v1/chat/completions", body).injected_stream_usage
    tgi = r.route("http", "tgi", None, "/v1/chat/completions")
    assert request(tgi, "http://tgi/v1/chat/completions", body).injected_stream_usage
    mistral = r.route("https", "api.mistral.ai", None, "/v1/chat/completions")
    assert not request(mistral, "https://api.mistral.ai/v1/chat/completions", body).injected_stream_usage


def _usage_event_removed(data: bytes) -> bytes:
    events = re.split(rb"(?<=\n\n)", data)
    return b"".join(e for e in events if b'"choices":[]' not in e)


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1500), max_size=60))
def test_filter_mode_exact_bytes_minus_usage_event(cuts):
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG, "stream": True})
    assert info.injected_stream_usage
    data = fixture("openai_chat_stream_usage.sse")
    p = a.stream_parser(info, {})
    out = feed_all(p, data, cuts)
    assert out == _usage_event_removed(data)
    assert out.count(b"data: ") == data.count(b"data: ") - 1
    assert usage_tuple(p.finish()) == (2006, 1920, 0, 0, 300, 0)


def test_filter_mode_every_byte():
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG, "stream": True})
    data = fixture("openai_chat_stream_usage.sse")
    p = a.stream_parser(info, {})
    out = feed_all(p, data)  # one byte at a time
    assert out == _usage_event_removed(data)
    assert p.finish().usage.output_tokens == 300


def _sdk_chunks(raw: bytes) -> list[dict]:
    """What the openai SDK yields for these raw SSE bytes (ids/timestamps normalised)."""
    def handler(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = openai.OpenAI(api_key="k", base_url="http://sdk.test/v1",
                           http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    out = []
    for c in client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True):
        d = c.model_dump()
        d["id"] = d["created"] = None
        out.append(d)
    return out


def test_openai_sdk_sees_the_same_chunks_with_injection_filtered():
    """Real server round trip: the injected, filtered stream parses exactly like the un-injected one."""
    with MockProviderServer() as srv:
        base = f"{srv.base_url}/openai/v1/chat/completions"
        a = OpenAIAdapter()
        body = {"model": "gpt-4o", "messages": MSG, "stream": True}
        plain = httpx2.post(base, json=body, headers={"x-mock-chunks": "7"}).content
        info = request(a, base, body)
        assert info.injected_stream_usage
        injected = httpx2.post(base, content=info.new_body, headers={"x-mock-chunks": "7",
                                                                    "content-type": "application/json"}).content
    assert injected != plain and b'"choices":[]' in injected
    p = a.stream_parser(info, {"content-type": "text/event-stream"})
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(injected)), 40))
    filtered = feed_all(p, injected, cuts)
    assert b'"choices":[]' not in filtered
    assert _sdk_chunks(filtered) == _sdk_chunks(plain)
    assert len(_sdk_chunks(filtered)) == 1 + 7 + 1
    res = p.finish()
    assert res.usage is not None and res.usage.output_tokens == 16 and res.usage.input_tokens == 4


def test_responses_api_stream_and_tier():
    a = OpenAIAdapter()
    info = request(a, "https://api.openai.com/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True})
    assert info.operation == "chat" and not info.injected_stream_usage
    p = a.stream_parser(info, {})
    feed_all(p, fixture("openai_responses_stream.sse"))
    res = p.finish()
    assert usage_tuple(res) == (3000, 2048, 0, 0, 1500, 1200)
    assert res.output_text == "Hi there" and res.finish_reasons == ["completed"]
    assert res.usage.service_tier == "priority" and res.response_id == "resp_67c9"


def test_embeddings_and_legacy_completions():
    a = OpenAIAdapter()
    info = request(a, "https://api.openai.com/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})
    res = a.parse_response(info, 200, {}, json.dumps({"object": "list", "data": [], "model": "text-embedding-3-small",
                                                      "usage": {"prompt_tokens": 8, "total_tokens": 8}}).encode())
    assert usage_tuple(res) == (8, 0, 0, 0, 0, 0) and res.usage.operation == "embeddings"
    info = request(a, "https://api.openai.com/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "x"})
    res = a.parse_response(info, 200, {}, json.dumps({
        "id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "yo", "index": 0, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).encode())
    assert usage_tuple(res) == (5, 0, 0, 0, 7, 0) and res.usage.operation == "text_completion"
    assert res.output_text == "yo" and res.finish_reasons == ["length"]


def test_compatible_provider_quirks():
    # DeepSeek: cache hits as prompt_cache_hit_tokens (part of prompt_tokens).
    a = OpenAIAdapter("deepseek")
    info = request(a, "https://api.deepseek.com/chat/completions", {"model": "deepseek-chat", "messages": MSG})
    res = a.parse_response(info, 200, {}, json.dumps({"model": "deepseek-chat", "choices": [], "usage": {
        "prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110, "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36}}).encode())
    assert usage_tuple(res) == (100, 64, 0, 0, 10, 0)
    # xAI: reasoning outside completion_tokens (total = prompt + completion + reasoning).
    a = OpenAIAdapter("x_ai")
    info = request(a, "https://api.x.ai/v1/chat/completions", {"model": "grok-3-mini", "messages": MSG})
    res = a.parse_response(info, 200, {}, json.dumps({"model": "grok-3-mini", "choices": [], "usage": {
        "prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 325,
        "completion_tokens_details": {"reasoning_tokens": 300}}}).encode())
    assert usage_tuple(res) == (20, 0, 0, 0, 305, 300)
    # Groq: usage under x_groq in the last chunk.
    a = OpenAIAdapter("groq", inject_stream_usage=False)
    info = request(a, "https://api.groq.com/openai/v1/chat/completions", {"model": "llama", "stream": True})
    p = a.stream_parser(info, {})
    feed_all(p, b'data: {"id":"x","model":"llama","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],'
                b'"x_groq":{"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}}\n\ndata: [DONE]\n\n')
    assert usage_tuple(p.finish()) == (3, 0, 0, 0, 1, 0)


def test_stream_without_usage_reports_missing_not_zero():
    a = OpenAIAdapter(inject_stream_usage=False)
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG, "stream": True})
    p = a.stream_parser(info, {})
    data = b"".join(line + b"\n\n" for line in fixture("openai_chat_stream_usage.sse").split(b"\n\n")
                    if line and b'"choices":[]' not in line)
    feed_all(p, data)
    res = p.finish()
    assert res.usage is None and res.parse_error == "no usage in stream"
    assert res.output_text == "Hello world \u00e9\u4e16"  # for the tiktoken estimate


def test_azure_deployment_is_request_model_and_response_model_wins():
    a = AzureOpenAIAdapter()
    info = request(a, "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
                   {"messages": MSG})
    assert info.request_model == "prod-4o" and info.provider == "azure.ai.openai"
    res = a.parse_response(info, 200, {}, fixture("openai_chat.json"))
    assert res.usage.model == "o3-mini-2025-01-31"


@pytest.mark.parametrize("status,etype", [(429, "rate_limit_exceeded"), (401, "invalid_request_error")])
def test_error_bodies(status, etype):
    a = OpenAIAdapter()
    info = request(a, CHAT, {"model": "gpt-4o", "messages": MSG})
    with MockProviderServer() as srv:
        r = httpx2.post(f"{srv.base_url}/openai/v1/chat/completions", json={"model": "gpt-4o", "messages": MSG},
                        headers={"x-mock-status": str(status)})
    res = a.parse_response(info, r.status_code, r.headers, r.content)
    assert res.usage is None and res.error_type == etype and res.parse_error == f"http {status}"


@pytest.mark.parametrize("raw", [
    b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "h\\u00e9 \\"q\\""}], "stream": true}',
    b'{"stream":true,"model":"gpt-4o","messages":[]}  \n',
    b'{"stream":true,"model":"gpt-4o","messages":[] \r\n\t}\n',
    '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"\u4e16"}]}'.encode(),
])
def test_injection_adds_one_member_and_keeps_the_callers_bytes(raw):
    info = request(OpenAIAdapter(), CHAT, raw)
    assert info.injected_stream_usage
    stripped = raw.rstrip()
    # The caller's bytes up to the closing brace are unchanged; one member is added before it.
    assert info.new_body == stripped[:-1] + b',"stream_options":{"include_usage":true}}' + raw[len(stripped):]
    assert json.loads(info.new_body) == {**json.loads(raw), "stream_options": {"include_usage": True}}


def test_injection_with_other_stream_options_or_null_reencodes():
    for opts in ({"include_obfuscation": False}, None):
        raw = json.dumps({"model": "gpt-4o", "messages": [], "stream": True, "stream_options": opts}).encode()
        info = request(OpenAIAdapter(), CHAT, raw)
        assert info.injected_stream_usage
        assert json.loads(info.new_body)["stream_options"] == {**(opts or {}), "include_usage": True}
