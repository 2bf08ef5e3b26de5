"""aiohttp (google-genai's async transport, and plain aiohttp code) is instrumented like httpx.

The real google-genai async client (which picks aiohttp when it is importable) and plain
``aiohttp.ClientSession`` calls go to the mock provider server (real wire formats). Each call is made
without and with inferops: the caller's bytes / the SDK's parsed result must be the same, and the span must
carry what the httpx2 path gives for the same request (same runtime, adapters and cost engine). The mock is
made deterministic (fixed ids and timestamps) so two calls' bodies compare byte for byte.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import socket
import time
import types
import uuid

import aiohttp
import httpx2
import pytest
from aiohttp.streams import StreamReader
from google import genai
from google.genai import types as gtypes
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from inferops import mock_providers
from inferops.errors import BudgetExceededError
from inferops.instrumentation import aiohttp_hooks, configure
from inferops.instrumentation.providers import AdapterRouter
from inferops.instrumentation.testing import instrumented, recording_transport
from inferops.mock_providers import MockProviderServer
from inferops.names import Attr, GenAI, Metrics
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord
from inferops.settings import Settings
from test_instrumentation_failsafe import garbage  # noqa: F401  (fixture: a server answering POSTs with given bytes)

KEY = "AIza-test-SECRETKEY-0123456789"
MSGS = [{"role": "user", "content": "Say hello to the cost dashboard, please."}]
#: Per-request and session-default attribution headers; both must be read, then removed.
REQ_HEADERS = {"X-Inferops-Team": "growth", "baggage": "tenant=acme"}
SESSION_HEADERS = {"X-Inferops-Project": "atlas", "Authorization": "Bearer sk-x"}


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(scope="module")
def slow_srv():
    """Stream events arrive one by one after the headers (the reader is fed while the caller reads)."""
    with MockProviderServer(host="127.0.0.1", port=0, chunk_delay_s=0.01) as server:
        yield server


@pytest.fixture
def fixed(monkeypatch):
    """Fixed response ids and timestamps: two calls with the same request get the same bytes."""
    one = uuid.UUID(int=0x0123456789ABCDEF0123456789ABCDEF)
    t0 = 1_750_000_000
    monkeypatch.setattr(mock_providers, "uuid", types.SimpleNamespace(uuid4=lambda: one))
    monkeypatch.setattr(mock_providers, "time", types.SimpleNamespace(
        time=lambda: float(t0), sleep=time.sleep, strftime=time.strftime, gmtime=lambda *a: time.gmtime(t0)))


def _settings(srv, **kw) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints(), **kw)


def _no_leak(srv, n: int) -> None:
    """The last ``n`` requests reached the server without X-Inferops-* or baggage (session defaults included)."""
    for req in srv.requests[-n:]:
        names = {k.lower() for k in req.headers}
        assert not any(k.startswith("x-inferops-") for k in names), req.headers
        assert "baggage" not in names and req.headers.get("authorization") == "Bearer sk-x"


# -- plain aiohttp: OpenAI and Anthropic, read every way -------------------------------------------------------

CASES = {
    "openai": ("/openai/v1/chat/completions", {"model": "gpt-4o", "messages": MSGS, "max_tokens": 6}),
    "anthropic": ("/anthropic/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 6, "messages": MSGS}),
}
READS = ["read", "json_or_text", "iter_chunked", "readline"]


async def _read(resp: aiohttp.ClientResponse, how: str, stream: bool):
    if how == "read":
        return await resp.read()
    if how == "json_or_text":
        return await (resp.text() if stream else resp.json())
    if how == "iter_chunked":
        return b"".join([c async for c in resp.content.iter_chunked(7)])
    if how == "iter_any":
        return b"".join([c async for c in resp.content.iter_any()])
    lines = []
    while line := await resp.content.readline():
        lines.append(line)
    return b"".join(lines)


def _aio(url: str, how: str, stream: bool, *, body=None, data=None, headers=None, session_headers=None):
    async def run():
        async with aiohttp.ClientSession(headers=session_headers) as session:
            async with session.post(url, json=body, data=data, headers=headers) as resp:
                return resp.status, await _read(resp, how, stream), type(resp.content)
    return asyncio.run(run())


def _httpx2(url: str, body: dict, headers: dict) -> bytes:
    """The same request through httpx2 (streamed like the SDKs do, so the tee sees it)."""
    async def run():
        async with httpx2.AsyncClient(headers=SESSION_HEADERS) as client:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                return await resp.aread()
    return asyncio.run(run())


def _usage_from_body(provider: str, stream: bool, raw: bytes, model: str) -> UsageRecord:
    """The usage the provider reported, read from the bytes the caller got (FACTS.md's per-provider rules)."""
    if not stream:
        objs = [json.loads(raw)]
    else:
        objs = [json.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]
    if provider == "openai":
        [u] = [o["usage"] for o in objs if o.get("usage")]
        cached = u.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        return UsageRecord(provider="openai", model=model, operation="chat", input_tokens=u["prompt_tokens"],
                           output_tokens=u["completion_tokens"], cache_read_tokens=cached)
    usage: dict = {}
    for o in objs:  # message_start carries the input usage, message_delta the (cumulative) output
        usage.update((o.get("message") or {}).get("usage") or {})
        usage.update(o.get("usage") or {})
    read = usage.get("cache_read_input_tokens", 0)
    w5 = (usage.get("cache_creation") or {}).get("ephemeral_5m_input_tokens", 0)
    w1 = (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0)
    assert w5 + w1 == usage.get("cache_creation_input_tokens", 0)
    return UsageRecord(provider="anthropic", model=model, operation="chat",
                       input_tokens=usage["input_tokens"] + read + w5 + w1, output_tokens=usage["output_tokens"],
                       cache_read_tokens=read, cache_write_5m_tokens=w5, cache_write_1h_tokens=w1,
                       service_tier=usage.get("service_tier", "standard"))


def _semantic(span) -> dict:
    a = dict(span.attributes)
    a.pop(GenAI.RESPONSE_TIME_TO_FIRST_CHUNK, None)
    return a


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "sse"])
@pytest.mark.parametrize("provider", sorted(CASES))
def test_plain_aiohttp_bytes_span_cost_metrics(srv, fixed, provider, stream):
    path, body = CASES[provider]
    url = srv.base_url + path
    body = {**body, "stream": True, "stream_options": {"include_usage": True}} if stream and provider == "openai" \
        else {**body, "stream": stream} if stream else body
    headers = {**REQ_HEADERS, "x-mock-cached-tokens": "4"}
    plain = {how: _aio(url, how, stream, body=body, headers=headers, session_headers=SESSION_HEADERS)
             for how in READS}
    with instrumented(_settings(srv)) as cap:
        seen = {how: _aio(url, how, stream, body=body, headers=headers, session_headers=SESSION_HEADERS)
                for how in READS}
        aio_spans = cap.spans()
        reference = _httpx2(url, body, headers)  # the same request through the httpx2 hook
    for how in READS:
        assert seen[how][0] == 200
        assert seen[how][:2] == plain[how][:2], how  # the caller's bytes / parsed JSON / text are unchanged
        assert seen[how][2] is StreamReader  # the reader's class is back to aiohttp's after EOF
    raw = plain["read"][1]
    assert reference == raw  # and the provider sent the same bytes to httpx2
    _no_leak(srv, len(READS) + 1)
    # the spans: one per call, equal to the httpx2 path's span for the same request
    assert len(aio_spans) == len(READS)
    [ref_span] = cap.spans()[len(READS):]
    for span in aio_spans:
        assert _semantic(span) == _semantic(ref_span)
        assert span.name == ref_span.name and span.kind.name == "CLIENT" and span.end_time
        assert (GenAI.RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes) is stream
    a = aio_spans[0].attributes
    expected = _usage_from_body(provider, stream, raw, a[GenAI.RESPONSE_MODEL])
    assert a[GenAI.USAGE_INPUT_TOKENS] == expected.input_tokens
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == expected.output_tokens == 6
    assert a[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] == expected.cache_read_tokens == 4
    assert a[Attr.USAGE_SOURCE] == "provider" and a[GenAI.REQUEST_STREAM] is stream
    assert a[GenAI.SERVER_ADDRESS] == "127.0.0.1" and a[GenAI.SERVER_PORT] == srv.port
    cost = CostEngine.from_settings(_settings(srv)).price(expected)
    assert cost.status == "priced" and a[GenAI.USAGE_COST] == pytest.approx(cost.total)
    assert (a[Attr.TEAM], a[Attr.PROJECT]) == ("growth", "atlas")
    # metrics: every call counted, attributed, priced
    n = len(READS) + 1
    [(labels, count)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert count == n and labels["team"] == "growth" and labels["project"] == "atlas"
    assert labels["outcome"] == "success" and labels["stream"] == str(stream).lower()
    assert cap.total(Metrics.COST.prom_name) == pytest.approx(n * cost.total)


@pytest.mark.parametrize("how", ["iter_any", "readline"])
@pytest.mark.parametrize("server", ["srv", "slow_srv"])
def test_injected_usage_chunk_is_removed(request, server, how):
    """No stream_options from the caller: inferops asks for usage and hides the usage-only event, whether the
    events arrived with the headers (already buffered) or one by one afterwards."""
    srv = request.getfixturevalue(server)
    body = {**CASES["openai"][1], "stream": True, "max_tokens": 5}
    with instrumented(_settings(srv)) as cap:
        status, got, _ = _aio(srv.base_url + CASES["openai"][0], how, True, body=body)
    assert status == 200
    events = [e for e in got.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert len(chunks) == 1 + 5 + 1 and all(c["choices"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "w0 w1 w2 w3 w4"
    sent = srv.requests[-1]
    assert json.loads(sent.body)["stream_options"] == {"include_usage": True}
    assert sent.headers.get("accept-encoding") == "identity" and sent.headers["content-type"] == "application/json"
    [span] = cap.spans()
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 5 and span.attributes[Attr.USAGE_SOURCE] == "provider"


def test_concurrent_streams_on_one_session(slow_srv):
    """Interleaved bodies on one session: each span gets its own call's usage."""
    url = slow_srv.base_url + CASES["openai"][0]

    async def one(session, n):
        body = {**CASES["openai"][1], "stream": True, "stream_options": {"include_usage": True}, "max_tokens": n}
        async with session.post(url, json=body, headers={"X-Inferops-Feature": f"f{n}"}) as resp:
            return n, b"".join([c async for c in resp.content.iter_any()])

    async def run():
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(one(session, n) for n in range(3, 15)))

    with instrumented(_settings(slow_srv)) as cap:
        results = asyncio.run(run())
    for n, raw in results:
        assert raw.count(b"data: ") == 1 + n + 1 + 1 + 1  # role, words, finish, usage, [DONE]
    spans = cap.spans()
    assert sorted((s.attributes[Attr.FEATURE], s.attributes[GenAI.USAGE_OUTPUT_TOKENS]) for s in spans) == \
        sorted((f"f{n}", n) for n in range(3, 15))
    assert aiohttp_hooks._TRACKERS == {}


@pytest.mark.parametrize("auto_decompress", [True, False])
def test_gzip_stream(srv, fixed, auto_decompress):
    """aiohttp decompresses before the reader (inferops must not decode again); with auto_decompress=False
    the caller gets gzip bytes and inferops decodes its own copy."""
    url = srv.base_url + CASES["openai"][0]
    body = {**CASES["openai"][1], "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 9}

    async def run():
        async with aiohttp.ClientSession(auto_decompress=auto_decompress) as session:
            async with session.post(url, json=body, headers={"x-mock-gzip-stream": "1"}) as resp:
                assert resp.headers["Content-Encoding"] == "gzip"
                return await resp.read()

    plain = asyncio.run(run())
    with instrumented(_settings(srv)) as cap:
        got = asyncio.run(run())
    assert got == plain
    [span] = cap.spans()
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 9 and span.attributes[Attr.USAGE_SOURCE] == "provider"
    assert Attr.PARSE_ERROR not in span.attributes


def test_plain_aiohttp_gemini_key_in_query_never_recorded(srv, fixed, caplog):
    """``?key=`` in the URL and ``data=`` bytes (google-genai's way): model from the URL, nothing of the key kept."""
    caplog.set_level(logging.DEBUG)
    url = f"{srv.base_url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={KEY}"
    data = json.dumps({"contents": [{"role": "user", "parts": [{"text": MSGS[0]["content"]}]}],
                      "generationConfig": {"maxOutputTokens": 5}}).encode()
    plain = _aio(url, "readline", True, data=data)
    with instrumented(_settings(srv)) as cap:
        seen = _aio(url, "readline", True, data=data, headers={"x-goog-api-key": KEY})
    assert seen[:2] == plain[:2]
    [span] = cap.spans()
    a = span.attributes
    assert span.name == "generate_content gemini-2.5-flash" and a[GenAI.PROVIDER_NAME] == "gcp.gemini"
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == 5 + 32  # visible + thoughts (billed as output)
    assert a[GenAI.USAGE_REASONING_OUTPUT_TOKENS] == 32 and a[GenAI.REQUEST_STREAM] is True
    assert srv.requests[-1].body == data  # the body went out as given
    for s in cap.all_spans():
        assert KEY not in repr(dict(s.attributes)) and KEY not in s.name
    assert KEY not in cap.metrics_text() and KEY not in caplog.text


# -- the real google-genai async client (aiohttp) -----------------------------------------------------------

GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_DROP = frozenset({"sdk_http_response", "response_id", "create_time"})


def _drop(obj, keys):
    if isinstance(obj, dict):
        return {k: _drop(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_drop(x, keys) for x in obj]
    return obj


def _gemini_expected(resp) -> UsageRecord:
    """promptTokenCount includes cachedContentTokenCount; thoughts are billed as output (FACTS.md)."""
    u = resp.usage_metadata
    thoughts = u.thoughts_token_count or 0
    return UsageRecord(provider="gcp.gemini", model=resp.model_version, operation="generate_content",
                       input_tokens=u.prompt_token_count + (u.tool_use_prompt_token_count or 0),
                       output_tokens=(u.candidates_token_count or 0) + thoughts,
                       cache_read_tokens=u.cached_content_token_count or 0, reasoning_tokens=thoughts)


@pytest.mark.parametrize("stream", [False, True], ids=["generate_content", "generate_content_stream"])
def test_google_genai_async_over_aiohttp(srv, stream, caplog):
    caplog.set_level(logging.DEBUG)
    used = []

    def call():
        rec = recording_transport(httpx2, asynchronous=True)
        client = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(
            base_url=srv.base_url + "/gemini", headers={"X-Inferops-Team": "growth", "x-mock-cached-tokens": "4",
                                                        "x-mock-chunks": "3"}))
        api = client.aio._api_client
        api._async_httpx_client = httpx2.AsyncClient(transport=rec)  # would record a call that went over httpx2
        assert api._use_aiohttp()

        async def main():
            config = gtypes.GenerateContentConfig(max_output_tokens=6)
            if stream:
                it = await client.aio.models.generate_content_stream(model=GEMINI_MODEL, contents=MSGS[0]["content"],
                                                                     config=config)
                out = [c async for c in it]
            else:
                out = [await client.aio.models.generate_content(model=GEMINI_MODEL, contents=MSGS[0]["content"],
                                                                config=config)]
            sessions = list(api._aiohttp_sessions.values())
            used.append((len(rec.wire), [isinstance(s, aiohttp.ClientSession) for s in sessions]))
            for s in sessions:
                await s.close()
            return out
        return asyncio.run(main())

    plain = call()
    with instrumented(_settings(srv)) as cap:
        chunks = call()
    assert used == [(0, [True]), (0, [True])]  # the SDK's own aiohttp session carried both calls, httpx2 none
    assert [_drop(c.model_dump(), GEMINI_DROP) for c in chunks] == [_drop(c.model_dump(), GEMINI_DROP) for c in plain]
    assert "".join(c.text for c in chunks) == "w0 w1 w2 w3 w4 w5" and len(chunks) == (3 if stream else 1)
    last = chunks[-1]
    expected = _gemini_expected(last)
    assert expected.cache_read_tokens == 4 and expected.reasoning_tokens == 32 and expected.output_tokens == 6 + 32
    [span] = cap.spans()
    a = span.attributes
    assert span.name == f"generate_content {GEMINI_MODEL}" and a[GenAI.PROVIDER_NAME] == "gcp.gemini"
    assert a[GenAI.RESPONSE_MODEL] == last.model_version and a[GenAI.RESPONSE_ID] == last.response_id
    assert a[GenAI.RESPONSE_FINISH_REASONS] == ("MAX_TOKENS",) and a[GenAI.REQUEST_STREAM] is stream
    assert (GenAI.RESPONSE_TIME_TO_FIRST_CHUNK in a) is stream
    assert a[GenAI.USAGE_INPUT_TOKENS] == expected.input_tokens
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == expected.output_tokens
    assert a[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] == expected.cache_read_tokens
    assert a[GenAI.USAGE_REASONING_OUTPUT_TOKENS] == expected.reasoning_tokens
    cost = CostEngine.from_settings(_settings(srv)).price(expected)
    assert cost.status == "priced" and a[GenAI.USAGE_COST] == pytest.approx(cost.total)
    for ctype, usd in cost.components.items():
        assert a.get(f"{Attr.COST_PREFIX}{ctype}", 0.0) == pytest.approx(usd), ctype
    assert a[Attr.TEAM] == "growth" and GenAI.ERROR_TYPE not in a
    tokens = cap.samples(Metrics.TOKENS.prom_name)
    assert {lbl["token_type"]: v for lbl, v in tokens} == {k: v for k, v in expected.token_buckets().items() if v}
    assert cap.total(Metrics.COST.prom_name) == pytest.approx(cost.total)
    [(labels, n)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert n == 1 and labels["team"] == "growth" and labels["outcome"] == "success"
    # no API key anywhere; the attribution header did not reach the provider
    assert not any(k.startswith("x-inferops-") for k in srv.requests[-1].headers)
    assert srv.requests[-1].headers.get("x-goog-api-key") == KEY  # (the SDK sends it as a header)
    for s in cap.all_spans():
        assert KEY not in repr(dict(s.attributes)) and KEY not in s.name
    assert KEY not in cap.metrics_text() and KEY not in caplog.text


# -- errors, early ends, other hosts --------------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_error_recorded_and_reraised_unchanged():
    port = _dead_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    def attempt():
        with pytest.raises(aiohttp.ClientError) as info:
            _aio(url, "read", False, body=CASES["openai"][1])
        return info.value

    plain = attempt()
    with instrumented(Settings(provider_endpoints={f"http://127.0.0.1:{port}/v1": "openai"})) as cap:
        seen = attempt()
    assert type(seen) is type(plain) and str(seen) == str(plain)
    [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == type(seen).__qualname__ == "ClientConnectorError"
    [(labels, _)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert labels["outcome"] == "error"


@pytest.mark.parametrize("raise_for_status", [False, True])
def test_provider_error_status(srv, raise_for_status):
    """A 429: read as usual (the span takes the provider's error type), or raised by aiohttp itself."""
    async def run():
        async with aiohttp.ClientSession(raise_for_status=raise_for_status) as session:
            async with session.post(srv.base_url + CASES["openai"][0], json=CASES["openai"][1],
                                    headers={"x-mock-status": "429"}) as resp:
                return resp.status, await resp.json()

    with instrumented(_settings(srv)) as cap:
        if raise_for_status:
            with pytest.raises(aiohttp.ClientResponseError) as info:
                asyncio.run(run())
            assert info.value.status == 429
        else:
            status, got = asyncio.run(run())
            assert status == 429 and got["error"]["type"]
    [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == ("ClientResponseError" if raise_for_status else got["error"]["type"])
    [(labels, _)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert labels["outcome"] == "error"


def test_interrupted_stream_records_what_was_received(srv):
    body = {**CASES["openai"][1], "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 30}
    headers = {"x-mock-stream-abort-after": "5"}
    with pytest.raises(aiohttp.ClientPayloadError):
        _aio(srv.base_url + CASES["openai"][0], "iter_any", True, body=body, headers=headers)
    with instrumented(_settings(srv)) as cap:
        with pytest.raises(aiohttp.ClientPayloadError):
            _aio(srv.base_url + CASES["openai"][0], "iter_any", True, body=body, headers=headers)
    [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == "ClientPayloadError"
    assert span.attributes[Attr.USAGE_SOURCE] == "estimated"  # no usage event arrived: counted from the text
    assert 0 < span.attributes[GenAI.USAGE_OUTPUT_TOKENS] < 30


def test_closed_early_dropped_and_abandoned_responses_end_their_spans(srv, slow_srv):
    body = {**CASES["openai"][1], "stream": True, "max_tokens": 40}

    async def run(cap):
        async with aiohttp.ClientSession() as session:
            async with session.post(slow_srv.base_url + CASES["openai"][0], json=body) as resp:
                await resp.content.readline()  # one line, then release() by the context manager
            closed = list(cap.spans())
            # dropped unread, stream still running: aiohttp keeps the response until its connection ends
            resp = await session.post(slow_srv.base_url + CASES["openai"][0], json=body)
            assert resp.status == 200
            del resp
            gc.collect()
            running = list(cap.spans())
        return closed, running

    with instrumented(Settings(provider_endpoints={**srv.endpoints(), **slow_srv.endpoints()})) as cap:
        closed, running = asyncio.run(run(cap))
        gc.collect()  # the session closed with the dropped response's connection: the response is garbage
        spans = cap.spans()

        async def dropped_but_finished():
            async with aiohttp.ClientSession() as session:
                resp = await session.post(srv.base_url + CASES["openai"][0], json=body)
                del resp
                for _ in range(500):  # wait for the provider to finish sending (nobody reads)
                    if len(cap.spans()) == 3:
                        break
                    await asyncio.sleep(0.01)

        asyncio.run(dropped_but_finished())
        finished = cap.spans()[2:]
    assert [s.attributes[GenAI.ERROR_TYPE] for s in closed] == ["stream_closed"]
    assert len(running) == 1
    assert len(spans) == 2 and spans[1].attributes[GenAI.ERROR_TYPE] == "stream_abandoned"
    # the unread response whose stream completed is recorded complete, as the provider bills it
    [done] = finished
    assert GenAI.ERROR_TYPE not in done.attributes and done.attributes[Attr.USAGE_SOURCE] == "provider"
    assert done.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 40
    assert aiohttp_hooks._TRACKERS == {}  # nothing left behind for ended responses


def test_non_llm_hosts_and_operations(srv):
    with instrumented(_settings(srv)) as cap:
        status, got, reader = _aio(srv.base_url + "/not-an-llm", "read", False, body={},
                                   headers={"X-Inferops-Team": "t", "baggage": "a=b"})

        async def models():
            async with aiohttp.ClientSession() as session:
                async with session.get(srv.base_url + "/openai/v1/models", headers={"X-Inferops-Team": "t"}) as r:
                    return await r.read()
        asyncio.run(models())
    assert cap.spans() == [] and reader is StreamReader
    not_llm, llm_host = srv.requests[-2:]
    assert not_llm.headers.get("x-inferops-team") == "t" and not_llm.headers.get("baggage") == "a=b"  # untouched
    assert "x-inferops-team" not in llm_host.headers  # an LLM host: attribution headers never leave


def test_strip_baggage_can_be_turned_off(srv):
    with instrumented(_settings(srv, strip_baggage=False)):
        _aio(srv.base_url + CASES["openai"][0], "read", False, body=CASES["openai"][1],
             session_headers={"baggage": "team=x"})
    assert srv.requests[-1].headers.get("baggage") == "team=x"


# -- enforcement and body rewriting -------------------------------------------------------------------------


class _Decision:
    def __init__(self, action, budget="", model=""):
        self.action, self.budget, self.model = action, budget, model


class _Enforcer:
    def __init__(self, decision):
        self.decision = decision

    def decide(self, who, provider, model):
        return self.decision


def _enforced(srv, monkeypatch, decision):
    monkeypatch.setattr(configure, "_enforcer", lambda settings: _Enforcer(decision))
    return instrumented(_settings(srv, enforcement_alertmanager_url="http://127.0.0.1:9"))


def test_block_raises_before_sending(srv, monkeypatch):
    before = len(srv.requests)
    with _enforced(srv, monkeypatch, _Decision("block", "growth-monthly")) as cap:
        with pytest.raises(BudgetExceededError) as info:
            _aio(srv.base_url + CASES["openai"][0], "read", False, body=CASES["openai"][1], headers=REQ_HEADERS)
    assert len(srv.requests) == before and info.value.budget == "growth-monthly"
    [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == "BudgetExceededError" and span.attributes[Attr.TEAM] == "growth"


@pytest.mark.parametrize("kind", ["json", "bytes", "str"])
def test_downgrade_rewrites_the_body(srv, monkeypatch, kind):
    body = CASES["openai"][1]
    given = {"json": {"body": body}, "bytes": {"data": json.dumps(body).encode()},
             "str": {"data": json.dumps(body)}}[kind]
    with _enforced(srv, monkeypatch, _Decision("downgrade", "growth-monthly", "gpt-4o-mini")) as cap:
        status, got, _ = _aio(srv.base_url + CASES["openai"][0], "json_or_text", False, **given)
    sent = srv.requests[-1]
    assert status == 200 and json.loads(sent.body)["model"] == "gpt-4o-mini"
    assert got["model"].startswith("gpt-4o-mini")
    assert sent.headers["content-type"] == {"json": "application/json", "bytes": "application/octet-stream",
                                            "str": "text/plain; charset=utf-8"}[kind]  # as aiohttp sets it
    a = cap.spans()[0].attributes
    assert a[Attr.REQUESTED_MODEL] == "gpt-4o" and a[GenAI.REQUEST_MODEL] == "gpt-4o-mini"


# -- fail-safe --------------------------------------------------------------------------------------------


class _Boom(RuntimeError):
    pass


class _RaisingRouter:
    """The real router; the chosen adapter method (or its stream parser's feed/finish) raises."""

    def __init__(self, settings, where):
        self.real, self.where = AdapterRouter(settings), where

    def route(self, *a):
        adapter = self.real.route(*a)
        if adapter is None:
            return None
        where = self.where
        outer = types.SimpleNamespace(provider=adapter.provider)

        def boom_or(name, fn):
            def f(*args):
                if where == name:
                    raise _Boom(name)
                return fn(*args)
            return f

        def stream_parser(*args):
            parser = boom_or("stream_parser", adapter.stream_parser)(*args)
            return types.SimpleNamespace(feed=boom_or("feed", parser.feed), flush=parser.flush,
                                         first_content_seen=parser.first_content_seen,
                                         finish=boom_or("finish", parser.finish))

        outer.parse_request = boom_or("parse_request", adapter.parse_request)
        outer.parse_response = boom_or("parse_response", adapter.parse_response)
        outer.stream_parser = stream_parser
        return outer


@pytest.mark.parametrize("where", ["route", "parse_request", "parse_response", "stream_parser", "feed", "finish"])
def test_raising_adapter_never_reaches_the_caller(srv, fixed, where):
    url = srv.base_url + CASES["openai"][0]
    sse = {**CASES["openai"][1], "stream": True, "stream_options": {"include_usage": True}}
    plain = [_aio(url, "read", False, body=CASES["openai"][1]), _aio(url, "iter_chunked", True, body=sse)]
    settings = _settings(srv)
    router = _RaisingRouter(settings, where)
    if where == "route":
        router.route = lambda *a: (_ for _ in ()).throw(_Boom("route"))
    with instrumented(settings, router=router) as cap:
        seen = [_aio(url, "read", False, body=CASES["openai"][1]), _aio(url, "iter_chunked", True, body=sse)]
    assert seen == plain
    assert all(s.end_time for s in cap.spans())


BODIES = st.one_of(
    st.binary(max_size=1500),
    st.text(max_size=400).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b'{"usage": {"prompt_tokens": -5, "completion_tokens": "x"}}', b"{", b"null", b"[]",
                     b'data: {"choices": []}\n\ndata: [DONE]\n\n', b"data: {\n\n", b'{"usage": null}',
                     b'data: {"choices": [], "usage": {"prompt_tokens": 3}}\n\ndata: [DONE]\n\n',
                     b'{"model": 7, "usage": {"prompt_tokens": 1e308}}', b"\xff\xfe\x00", b" " * 5000]),
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, ctype=st.sampled_from(["application/json", "text/event-stream", "text/plain"]),
       stream=st.booleans(), split=st.integers(min_value=0, max_value=2000),
       how=st.sampled_from(["read", "iter_chunked", "readline", "iter_any"]))
def test_garbage_bodies_pass_unchanged(garbage, body, ctype, stream, split, how):
    garbage.body, garbage.ctype, garbage.split = body, ctype, min(split, len(body))
    settings = Settings(provider_endpoints={garbage.base + "/v1": "openai"})
    request = {**CASES["openai"][1], "stream": stream}
    with instrumented(settings) as cap:
        status, got, _ = _aio(garbage.base + "/v1/chat/completions", how, stream, body=request)
    assert status == 200
    if not (stream and settings.stream_usage_injection):
        assert got == body
    else:  # injection mode: only a usage-only event inferops asked for may be dropped
        assert got == body or b'"usage"' in body
    [span] = cap.spans()
    assert span.end_time


# -- install / remove ---------------------------------------------------------------------------------------


def test_instrument_uninstrument_restore_aiohttp(srv):
    session_attrs = {name: aiohttp.ClientSession.__dict__[name] for name in ("_request", "_prepare_headers")}
    reader_attrs = {name: StreamReader.__dict__[name] for name in ("feed_data", "feed_eof", "set_exception")}
    signature = inspect.signature(aiohttp.ClientSession._request)
    with instrumented(_settings(srv)) as cap:
        patched = aiohttp.ClientSession.__dict__["_request"]
        assert patched is not session_attrs["_request"] and patched.__inferops_original__ is session_attrs["_request"]
        assert aiohttp.ClientSession.__dict__["_prepare_headers"] is not session_attrs["_prepare_headers"]
        # google-genai reads this signature to filter its request arguments
        assert inspect.signature(aiohttp.ClientSession._request) == signature
        _aio(srv.base_url + CASES["openai"][0], "read", False, body=CASES["openai"][1])
        assert len(cap.spans()) == 1
    assert {name: aiohttp.ClientSession.__dict__[name] for name in session_attrs} == session_attrs
    assert {name: StreamReader.__dict__[name] for name in reader_attrs} == reader_attrs  # never patched
    _aio(srv.base_url + CASES["openai"][0], "read", False, body=CASES["openai"][1])
    assert len(cap.spans()) == 1  # nothing recorded once uninstrumented


def test_without_aiohttp_and_with_only_aiohttp(srv, monkeypatch):
    """aiohttp absent: nothing patched, no error. Only aiohttp present (no httpx/httpx2): it is instrumented."""
    from inferops.instrumentation import patch

    state = types.SimpleNamespace(originals=[], runtime=None)
    with monkeypatch.context() as m:
        m.setitem(__import__("sys").modules, "aiohttp", None)
        assert aiohttp_hooks.patch(state) is False and state.originals == []
    before = {lib: (lib.Client.__dict__["send"], lib.AsyncClient.__dict__["send"]) for lib in (httpx2,)}
    with monkeypatch.context() as m:
        m.setitem(__import__("sys").modules, "httpx", None)
        m.setitem(__import__("sys").modules, "httpx2", None)
        with instrumented(_settings(srv)) as cap:
            assert sorted({cls.__name__ for cls, _, _ in patch.STATE.originals}) == ["ClientSession"]
            _aio(srv.base_url + CASES["anthropic"][0], "read", False, body=CASES["anthropic"][1])
    assert before[httpx2] == (httpx2.Client.__dict__["send"], httpx2.AsyncClient.__dict__["send"])
    [span] = cap.spans()
    assert span.attributes[GenAI.PROVIDER_NAME] == "anthropic" and span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 6
