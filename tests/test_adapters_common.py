"""Router host matching, stream framing under arbitrary fragmenting, and fuzzing of every adapter.

Also holds the small helpers the per-provider adapter tests import.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import (AdapterRouter, AnthropicAdapter, AzureOpenAIAdapter, BedrockAdapter,
                                                CohereAdapter, GeminiAdapter, OllamaAdapter, OpenAIAdapter)
from inferops.instrumentation.providers._common import EventStreamDecoder, JSONArrayStream, SSEStream
from inferops.instrumentation.providers.base import Endpoint, ParsedResponse, RequestInfo
from inferops.mock_providers import encode_event_stream_message
from inferops.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def endpoint(url: str) -> Endpoint:
    u = urlsplit(url)
    return Endpoint(u.scheme, u.hostname or "", u.port, u.path, u.query)


def request(adapter, url: str, body: dict | bytes, headers: dict | None = None) -> RequestInfo:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    info = adapter.parse_request("POST", endpoint(url), headers or {}, raw)
    assert info is not None
    return info


def feed_all(parser, data: bytes, cuts: list[int] | None = None) -> bytes:
    """Feed ``data`` cut at the given offsets (default: every byte); returns what the caller gets."""
    if cuts is None:
        cuts = list(range(1, len(data)))
    out = bytearray()
    prev = 0
    for c in sorted(set(x for x in cuts if 0 < x < len(data))) + [len(data)]:
        out += parser.feed(data[prev:c])
        prev = c
    out += parser.flush()
    return bytes(out)


def usage_tuple(p: ParsedResponse) -> tuple:
    u = p.usage
    assert u is not None, p.parse_error
    return (u.input_tokens, u.cache_read_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens,
            u.output_tokens, u.reasoning_tokens)


# ---------------------------------------------------------------------------
# Router
# ---------------------------------------------------------------------------


def test_router_well_known_hosts():
    r = AdapterRouter(Settings())
    cases = {
        "api.openai.com": "openai", "api.anthropic.com": "anthropic",
        "generativelanguage.googleapis.com": "gcp.gemini", "aiplatform.googleapis.com": "gcp.vertex_ai",
        "us-central1-aiplatform.googleapis.com": "gcp.vertex_ai", "aiplatform.us.rep.googleapis.com": "gcp.vertex_ai",
        "myres.openai.azure.com": "azure.ai.openai", "myres.cognitiveservices.azure.com": "azure.ai.openai",
        "bedrock-runtime.us-east-1.amazonaws.com": "aws.bedrock", "api.mistral.ai": "mistral_ai",
        "api.cohere.com": "cohere", "api.cohere.ai": "cohere", "api.groq.com": "groq",
        "api.together.xyz": "together_ai", "api.deepseek.com": "deepseek", "api.x.ai": "x_ai",
        "api.fireworks.ai": "fireworks_ai", "openrouter.ai": "openrouter", "api.perplexity.ai": "perplexity",
    }
    for host, provider in cases.items():
        adapter = r.route("https", host, None, "/v1/chat/completions")
        assert adapter is not None and adapter.provider == provider, host
    assert isinstance(r.route("https", "myres.openai.azure.com", None, "/x"), AzureOpenAIAdapter)
    assert isinstance(r.route("https", "bedrock-runtime.eu-west-3.amazonaws.com", 443, "/x"), BedrockAdapter)
    assert isinstance(r.route("https", "api.anthropic.com", None, "/v1/messages"), AnthropicAdapter)
    assert isinstance(r.route("https", "API.OpenAI.com", None, "/v1/chat/completions"), OpenAIAdapter)


def test_router_non_llm_hosts_are_none_and_cached():
    r = AdapterRouter(Settings())
    for host in ("example.com", "openai.com.evil.net", "bedrock.us-east-1.amazonaws.com", "s3.amazonaws.com",
                 "googleapis.com", "azure.com", "evil-openai.azure.com.example", "", "localhost"):
        assert r.route("https", host, None, "/v1/chat/completions") is None, host
    assert r._hosts["example.com"] is None  # one dict lookup next time


def test_router_configured_prefixes_and_self_hosted():
    s = Settings(provider_endpoints={"http://gw.internal:8080/openai/v1": "openai",
                                     "https://gw.internal/anthropic": "anthropic",
                                     "http://gw.internal:8080/bedrock": "aws.bedrock"},
                 self_hosted={"http://vllm:8000/v1": "vllm", "http://gpu-box:11434": "ollama"})
    r = AdapterRouter(s)
    assert r.route("http", "gw.internal", 8080, "/openai/v1/chat/completions").provider == "openai"
    assert r.route("https", "gw.internal", None, "/anthropic/v1/messages").provider == "anthropic"
    assert r.route("https", "gw.internal", 443, "/anthropic/v1/messages").provider == "anthropic"
    assert isinstance(r.route("http", "gw.internal", 8080, "/bedrock/model/x/converse"), BedrockAdapter)
    assert r.route("http", "gw.internal", 8080, "/openaiX/v1/chat") is None  # prefix on path segments
    assert r.route("http", "gw.internal", 9999, "/openai/v1/chat/completions") is None  # port differs
    assert r.route("https", "gw.internal", 8080, "/openai/v1/chat/completions") is None  # scheme differs
    vllm = r.route("http", "vllm", 8000, "/v1/chat/completions")
    info = request(vllm, "http://vllm:8000/v1/chat/completions", {"model": "m", "messages": []})
    assert vllm.provider == "vllm" and info.self_hosted is True and info.provider == "vllm"
    assert r.route("http", "vllm", 8000, "/metrics") is None
    oll = r.route("http", "gpu-box", 11434, "/api/chat")
    info = request(oll, "http://gpu-box:11434/api/chat", {"model": "llama3.2", "messages": []})
    assert info.self_hosted and info.provider == "ollama" and info.stream is True  # Ollama streams by default
    info = request(oll, "http://gpu-box:11434/v1/chat/completions", {"model": "llama3.2", "messages": []})
    assert info.self_hosted and info.kind == "chat"


def test_router_configured_prefix_wins_over_well_known_host():
    r = AdapterRouter(Settings(provider_endpoints={"https://api.openai.com/proxy/anthropic": "anthropic"}))
    assert r.route("https", "api.openai.com", None, "/proxy/anthropic/v1/messages").provider == "anthropic"
    assert r.route("https", "api.openai.com", None, "/v1/chat/completions").provider == "openai"


def test_non_priced_paths_give_no_request_info():
    ep = endpoint("https://api.openai.com/v1/models")
    assert OpenAIAdapter().parse_request("GET", ep, {}, b"") is None
    assert OpenAIAdapter().parse_request("POST", endpoint("https://api.openai.com/v1/files"), {}, b"{}") is None
    assert AnthropicAdapter().parse_request("POST", endpoint("https://api.anthropic.com/v1/messages/count_tokens"),
                                            {}, b"{}") is None
    assert AnthropicAdapter().parse_request("POST", endpoint("https://api.anthropic.com/v1/messages/batches"),
                                            {}, b"{}") is None
    assert CohereAdapter().parse_request("POST", endpoint("https://api.cohere.com/v2/rerank"), {}, b"{}") is None


# ---------------------------------------------------------------------------
# Framing decoders under arbitrary fragmenting
# ---------------------------------------------------------------------------

SSE_SAMPLE = (b"event: a\ndata: {\"x\": 1}\n\n"
              b"data: {\"x\": 2}\r\n\r\n"
              b": comment\n\n"
              b"data: {\"text\": \"caf\xc3\xa9 \xe4\xb8\x96\"}\n\n"
              b"data: line1\ndata: line2\n\n"
              b"data: [DONE]\n\n")


def _sse_events(data: bytes, cuts: list[int], drop_x2: bool) -> tuple[list, bytes]:
    seen: list = []

    def on(name: str, payload: bytes) -> bool:
        seen.append((name, payload))
        return drop_x2 and payload == b'{"x": 2}'

    s = SSEStream(on, filtering=drop_x2)
    out = feed_all(s, data, cuts)
    return seen, out


@hsettings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SSE_SAMPLE) - 1), max_size=40))
def test_sse_split_anywhere_same_events_and_exact_filtering(cuts):
    whole, _ = _sse_events(SSE_SAMPLE, [], False)
    seen, out = _sse_events(SSE_SAMPLE, cuts, True)
    assert seen == whole
    assert ("a", b'{"x": 1}') in whole and ("", b"line1\nline2") in whole
    assert out == SSE_SAMPLE.replace(b"data: {\"x\": 2}\r\n\r\n", b"")


def test_sse_every_byte_and_trailing_event_without_blank_line():
    seen, out = _sse_events(SSE_SAMPLE + b"data: {\"x\": 2}", list(range(1, len(SSE_SAMPLE) + 12)), True)
    assert seen[-1] == ("", b'{"x": 2}')
    assert out == SSE_SAMPLE.replace(b"data: {\"x\": 2}\r\n\r\n", b"")  # the unterminated usage event dropped too


@hsettings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200), max_size=30))
def test_json_array_stream_split_anywhere(cuts):
    objs = [{"a": "x}{\"]", "n": i, "nested": {"l": [1, {"b": "\\"}]}} for i in range(4)]
    data = b"[" + b"\n,\r\n".join(json.dumps(o).encode() for o in objs) + b"]"
    got: list = []
    dec = JSONArrayStream(lambda raw: got.append(json.loads(raw)))
    prev = 0
    for c in sorted(set(x for x in cuts if 0 < x < len(data))) + [len(data)]:
        dec.feed(data[prev:c])
        prev = c
    assert got == objs and not dec.broken


@hsettings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=30))
def test_event_stream_decoder_split_anywhere(cuts):
    msgs = [({":event-type": f"e{i}", ":message-type": "event"}, json.dumps({"i": i}).encode()) for i in range(5)]
    data = b"".join(encode_event_stream_message(h, p) for h, p in msgs)
    got: list = []
    dec = EventStreamDecoder(lambda h, p: got.append((h, p)))
    prev = 0
    for c in sorted(set(x for x in cuts if 0 < x < len(data))) + [len(data)]:
        dec.feed(data[prev:c])
        prev = c
    assert got == msgs and not dec.broken


def test_event_stream_decoder_rejects_garbage_without_waiting():
    dec = EventStreamDecoder(lambda h, p: None)
    dec.feed(b"\xff" * 64)
    assert dec.broken == "bad event-stream prelude"


# ---------------------------------------------------------------------------
# Fuzz: every adapter, request and response side, plain and streamed
# ---------------------------------------------------------------------------

_CASES = [
    (OpenAIAdapter("openai"), "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "stream": True}),
    (OpenAIAdapter("openai"), "https://api.openai.com/v1/responses", {"model": "gpt-4o", "stream": True}),
    (OpenAIAdapter("openai"), "https://api.openai.com/v1/embeddings", {"model": "text-embedding-3-small"}),
    (OpenAIAdapter("openai"), "https://api.openai.com/v1/completions", {"model": "x", "stream": True}),
    (AzureOpenAIAdapter(), "https://r.openai.azure.com/openai/deployments/d/chat/completions", {"stream": True}),
    (AnthropicAdapter(), "https://api.anthropic.com/v1/messages", {"model": "claude", "stream": True}),
    (GeminiAdapter(), "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse", {}),
    (GeminiAdapter("gcp.vertex_ai"), "https://aiplatform.googleapis.com/v1/projects/p/locations/l/publishers/"
                                     "anthropic/models/c:streamRawPredict", {}),
    (BedrockAdapter(), "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream", {}),
    (BedrockAdapter(), "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.c/invoke-with-response-stream",
     {"anthropic_version": "bedrock-2023-05-31"}),
    (BedrockAdapter(), "https://bedrock-runtime.us-east-1.amazonaws.com/model/meta.llama/invoke", {}),
    (CohereAdapter(), "https://api.cohere.com/v2/chat", {"model": "c", "stream": True}),
    (CohereAdapter(), "https://api.cohere.com/v2/embed", {"model": "e"}),
    (OllamaAdapter(), "http://h:11434/api/chat", {"model": "l"}),
]

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25)
_keys = st.sampled_from(["usage", "usageMetadata", "choices", "model", "delta", "message", "type", "response",
                         "metadata", "done", "prompt_tokens", "input_tokens", "billed_units", "meta", "candidates"])
_jsonish = st.dictionaries(_keys, _json_values, max_size=6).map(lambda d: json.dumps(d).encode())
_bodies = st.one_of(
    st.binary(max_size=400),
    _jsonish,
    _jsonish.map(lambda b: b"data: " + b + b"\n\n"),
    _jsonish.map(lambda b: b"data: " + b[: len(b) // 2]),
    st.text(max_size=200).map(lambda t: t.encode("utf-16")),
    st.just(b"data: [DONE]\n\n"), st.just(b"\x00" * 50), st.just(b"[" * 5000),
    st.just(b"data: " + b"{" * 3000 + b"\n\n"), st.just(b'{"usage": {"prompt_tokens": 1e400}}'),
)


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(idx=st.integers(min_value=0, max_value=len(_CASES) - 1), body=_bodies, status=st.sampled_from([200, 400, 429]),
       cut=st.integers(min_value=0, max_value=50), req=_bodies)
def test_fuzz_adapters_never_raise(idx, body, status, cut, req):
    adapter, url, req_body = _CASES[idx]
    # Garbage request bodies: parse_request returns None or an info, never raises.
    adapter.parse_request("POST", endpoint(url), {"content-type": "application/json"}, req)
    info = request(adapter, url, req_body)
    res = adapter.parse_response(info, status, {"content-type": "application/json"}, body)
    assert isinstance(res, ParsedResponse)
    if res.usage is None:
        assert res.parse_error
    for ctype in ("text/event-stream", "application/json", "application/vnd.amazon.eventstream"):
        p = adapter.stream_parser(info, {"content-type": ctype})
        out = bytearray()
        for i in range(0, len(body), cut or len(body) or 1):
            out += p.feed(body[i:i + (cut or len(body) or 1)])
        out += p.flush()
        if not info.injected_stream_usage:
            assert bytes(out) == body or not out  # pass-through or no filtering
        p.first_content_seen()
        s = p.finish()
        assert isinstance(s, ParsedResponse)
        if s.usage is None:
            assert s.parse_error


def test_huge_stream_is_bounded():
    chunk = b"data: " + b"x" * (1024 * 1024)
    for inject in (False, True):
        adapter = OpenAIAdapter(inject_stream_usage=inject)
        info = request(adapter, "https://api.openai.com/v1/chat/completions", {"model": "m", "stream": True})
        assert info.injected_stream_usage is inject
        p = adapter.stream_parser(info, {})
        out = bytearray()
        for _ in range(10):
            got = p.feed(chunk)
            if not inject:
                assert got is chunk  # not filtering: the input itself, unchanged
            out += got
        out += p.flush()
        assert bytes(out) == chunk * 10  # filtering holds at most one (bounded) partial event, then gives up
        res = p.finish()
        assert res.usage is None and res.parse_error == "event too large"
