"""Cohere v2 (billed on billed_units) and Ollama native API adapters."""

from __future__ import annotations

import json

import httpx2

from inferops.instrumentation.providers import CohereAdapter, OllamaAdapter
from inferops.mock_providers import MockProviderServer
from test_adapters_common import feed_all, fixture, request, usage_tuple

MSG = [{"role": "user", "content": "Say hello to the mock server"}]


def test_cohere_chat_bills_billed_units_not_tokens():
    a = CohereAdapter()
    info = request(a, "https://api.cohere.com/v2/chat", {"model": "command-a-03-2025", "messages": MSG})
    res = a.parse_response(info, 200, {}, fixture("cohere_chat.json"))
    assert usage_tuple(res) == (17, 0, 0, 0, 12, 0)  # not tokens.input_tokens=215
    assert res.usage.model == "command-a-03-2025" and res.finish_reasons == ["COMPLETE"]
    assert res.output_text == "LLMs are neural networks."


def test_cohere_stream_and_embed_from_mock_server():
    with MockProviderServer() as srv:
        s = httpx2.post(f"{srv.base_url}/cohere/v2/chat", json={"model": "command-a-03-2025", "messages": MSG,
                                                                "stream": True})
        e = httpx2.post(f"{srv.base_url}/cohere/v2/embed", json={"model": "embed-v4.0", "texts": ["hello world"],
                                                                 "input_type": "search_document"})
    a = CohereAdapter()
    info = request(a, "https://api.cohere.ai/v2/chat", {"model": "command-a-03-2025", "stream": True})
    p = a.stream_parser(info, s.headers)
    assert feed_all(p, s.content) == s.content
    res = p.finish()
    assert usage_tuple(res) == (10, 0, 0, 0, 16, 0) and res.finish_reasons == ["COMPLETE"]
    info = request(a, "https://api.cohere.com/v2/embed", {"model": "embed-v4.0"})
    assert info.operation == "embeddings"
    assert usage_tuple(a.parse_response(info, 200, e.headers, e.content)) == (6, 0, 0, 0, 0, 0)


def test_cohere_stream_thinking_is_first_content_not_output_text():
    """command-a-reasoning streams ``delta.message.content.thinking`` before the text (cohere SDK type
    ChatContentDeltaEventDeltaMessageContent): it is the first chunk, but not answer text."""
    def ev(obj):
        return b"event: " + obj["type"].encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"

    a = CohereAdapter()
    info = request(a, "https://api.cohere.com/v2/chat", {"model": "command-a-reasoning-08-2025", "stream": True})
    p = a.stream_parser(info, {"content-type": "text/event-stream"})
    p.feed(ev({"type": "message-start", "id": "r1", "delta": {"message": {"role": "assistant"}}}))
    p.feed(ev({"type": "content-start", "index": 0,
               "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}))
    assert not p.first_content_seen()
    p.feed(ev({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "Hmm"}}}}))
    assert p.first_content_seen()
    p.feed(ev({"type": "content-delta", "index": 1, "delta": {"message": {"content": {"text": "Hi"}}}}))
    p.feed(ev({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 40}, "tokens": {"input_tokens": 90}}}}))
    res = p.finish()
    assert res.output_text == "Hi" and usage_tuple(res) == (5, 0, 0, 0, 40, 0) and res.response_id == "r1"


def test_ollama_stream_and_plain():
    a = OllamaAdapter()
    info = request(a, "http://localhost:11434/api/chat", {"model": "llama3.2", "messages": MSG})
    assert info.stream and info.self_hosted
    p = a.stream_parser(info, {})
    data = fixture("ollama_chat.ndjson")
    assert feed_all(p, data) == data
    res = p.finish()
    assert usage_tuple(res) == (26, 0, 0, 0, 282, 0) and res.output_text == "The sky" and res.finish_reasons == ["stop"]
    # A "streamed" body read whole (stream flag defaulted) still yields the final counts.
    assert usage_tuple(a.parse_response(info, 200, {}, data)) == (26, 0, 0, 0, 282, 0)
    info = request(a, "http://localhost:11434/api/generate", {"model": "llama3.2", "prompt": "x", "stream": False})
    assert info.operation == "text_completion" and not info.stream
    res = a.parse_response(info, 200, {}, b'{"model":"llama3.2","response":"hey","done":true,"eval_count":3}')
    assert usage_tuple(res) == (0, 0, 0, 0, 3, 0) and res.usage.notes  # prompt cached by ollama: noted
