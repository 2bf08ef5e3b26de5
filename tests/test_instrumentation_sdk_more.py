"""The real google-genai (3.x, httpx2), mistralai (3.x, httpx2) and cohere (7.x, httpx) SDKs against the
mock provider server: sync and async, plain and streamed, each pointed at the mock with its own base-URL option.

Every call is made twice, without and with inferops, and the SDK's parsed result must be the same. The
expected usage is read from the SDK's own parsed objects (by FACTS.md's per-provider rules) and priced with
the cost engine; the span, the ``inferops_tokens_total`` / ``inferops_cost_usd_total`` series and the
attribution taken from ``X-Inferops-*`` headers set through the SDK's client-level header option must agree.

HTTP stacks, as installed by the ``test`` extra: google-genai sends sync calls through httpx2 and async ones
through aiohttp (installed by the test extra; its own tests are in test_instrumentation_aiohttp.py), or httpx2
when given an httpx2 client (:func:`test_gemini_async_goes_over_httpx2`); mistralai sends through httpx2;
cohere through httpx.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import cohere
import httpx
import httpx2
import pytest
from google import genai
from google.genai import types as gtypes
from mistralai.client import Mistral

from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.names import Attr, GenAI, Metrics
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord
from inferops.settings import Settings

KEY = "sk-test-SECRETKEY-0123456789"
#: Attribution set once on the client (the SDK's client-level header option): read, then removed.
ATTRIBUTION = {"X-Inferops-Team": "growth", "X-Inferops-Feature": "sdk-more"}
MSGS = [{"role": "user", "content": "Say hello to the cost dashboard, please."}]
PROMPT = "Say hello to the cost dashboard, please."


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints())


def _both(srv, call):
    """Run ``call()`` without inferops, then with it; return (plain result, instrumented result, capture)."""
    plain = call()
    srv.reset()
    with instrumented(_settings(srv)) as cap:
        seen = call()
    return plain, seen, cap


def _drop(obj: Any, keys: frozenset[str]) -> Any:
    """``obj`` without per-call fields (ids, timestamps, HTTP response headers such as Date)."""
    if isinstance(obj, dict):
        return {k: _drop(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_drop(x, keys) for x in obj]
    return obj


def _check(cap, srv, expected: UsageRecord, *, request_model: str, response_model: str | None,
           response_id: str | None, stream: bool, finish_reasons: tuple[str, ...] | None = None) -> dict:
    """One GenAI span, priced as the cost engine prices ``expected``, matching metrics; no key, no headers leak."""
    [span] = cap.spans()
    a = span.attributes
    assert span.name == f"{expected.operation} {request_model}" and span.kind.name == "CLIENT"
    assert a[GenAI.OPERATION_NAME] == expected.operation and a[GenAI.PROVIDER_NAME] == expected.provider
    assert a[GenAI.REQUEST_MODEL] == request_model
    assert a.get(GenAI.RESPONSE_MODEL) == response_model
    if response_id is not None:
        assert a[GenAI.RESPONSE_ID] == response_id
    if finish_reasons is not None:
        assert a[GenAI.RESPONSE_FINISH_REASONS] == finish_reasons
    assert a[GenAI.REQUEST_STREAM] is stream and a[GenAI.SERVER_ADDRESS] == "127.0.0.1"
    assert a[GenAI.SERVER_PORT] == srv.port
    assert GenAI.ERROR_TYPE not in a and Attr.PARSE_ERROR not in a
    if stream:
        assert a[GenAI.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    # usage: semconv input includes cache reads, output includes reasoning
    assert a[GenAI.USAGE_INPUT_TOKENS] == expected.input_tokens
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == expected.output_tokens
    assert a.get(GenAI.USAGE_CACHE_READ_INPUT_TOKENS, 0) == expected.cache_read_tokens
    assert a.get(GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS, 0) == expected.cache_write_tokens
    assert a.get(GenAI.USAGE_REASONING_OUTPUT_TOKENS, 0) == expected.reasoning_tokens
    assert a[Attr.USAGE_SOURCE] == "provider"
    # cost: the engine's own figure for the usage the SDK reports
    cost = CostEngine.from_settings(_settings(srv)).price(expected)
    assert cost.status == "priced" and cost.total > 0
    assert a[Attr.COST_STATUS] == cost.status and a[Attr.CATALOG_VERSION] == cost.catalog_version
    assert a[GenAI.USAGE_COST] == pytest.approx(cost.total) and a[Attr.COST_TOTAL] == pytest.approx(cost.total)
    for ctype, usd in cost.components.items():
        assert a.get(f"{Attr.COST_PREFIX}{ctype}", 0.0) == pytest.approx(usd), ctype
    # attribution from the client-level X-Inferops-* headers
    assert a[Attr.TEAM] == "growth" and a[Attr.FEATURE] == "sdk-more"
    # metrics: tokens partition the call, cost by type sums to the span's cost
    tokens = cap.samples(Metrics.TOKENS.prom_name)
    assert {lbl["token_type"]: v for lbl, v in tokens} == {k: v for k, v in expected.token_buckets().items() if v}
    costs = cap.samples(Metrics.COST.prom_name)
    assert {lbl["cost_type"]: v for lbl, v in costs} == pytest.approx({k: v for k, v in cost.components.items() if v})
    assert cap.total(Metrics.COST.prom_name) == pytest.approx(cost.total)
    for labels, _ in tokens + costs:
        assert labels["provider"] == expected.provider and labels["operation"] == expected.operation
        assert labels["team"] == "growth" and labels["feature"] == "sdk-more"
        assert labels["model"] == cost.priced_model
    [(req_labels, n)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert n == 1 and req_labels["outcome"] == "success" and req_labels["stream"] == str(stream).lower()
    # private: the API key is in no span attribute, no metric; X-Inferops-* never reached the provider
    for s in cap.all_spans():
        assert KEY not in repr(dict(s.attributes)) and KEY not in s.name
    assert KEY not in cap.metrics_text()
    [received] = srv.requests
    assert not any(k.startswith("x-inferops-") for k in received.headers), received.headers
    return a


# -- google-genai: models.generate_content / generate_content_stream -----------------------------------------

GEMINI_MODEL = "gemini-2.5-flash"  # a reasoning model: the mock sends thoughtsTokenCount too
GEMINI_DROP = frozenset({"sdk_http_response", "response_id", "create_time"})


def _gemini(srv, **more_headers: str) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(
        base_url=srv.base_url + "/gemini", headers={**ATTRIBUTION, **more_headers}))


def _gemini_config(max_tokens: int) -> gtypes.GenerateContentConfig:
    return gtypes.GenerateContentConfig(max_output_tokens=max_tokens)


def _gemini_expected(resp: gtypes.GenerateContentResponse) -> UsageRecord:
    """FACTS.md: promptTokenCount includes cachedContentTokenCount; thoughts are billed as output, outside
    candidatesTokenCount; toolUsePromptTokenCount is further input."""
    u = resp.usage_metadata
    thoughts = u.thoughts_token_count or 0
    # the documented identity of the SDK's type (the mock keeps it on every streamed chunk as well)
    assert u.total_token_count == (u.prompt_token_count + (u.candidates_token_count or 0)
                                   + (u.tool_use_prompt_token_count or 0) + thoughts)
    return UsageRecord(provider="gcp.gemini", model=resp.model_version, operation="generate_content",
                       input_tokens=u.prompt_token_count + (u.tool_use_prompt_token_count or 0),
                       output_tokens=(u.candidates_token_count or 0) + thoughts,
                       cache_read_tokens=u.cached_content_token_count or 0, reasoning_tokens=thoughts)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gemini_generate_content(srv, mode):
    def call():
        client = _gemini(srv, **{"x-mock-cached-tokens": "4"})
        if mode == "sync":
            return client.models.generate_content(model=GEMINI_MODEL, contents=PROMPT, config=_gemini_config(9))
        return asyncio.run(client.aio.models.generate_content(model=GEMINI_MODEL, contents=PROMPT,
                                                              config=_gemini_config(9)))

    plain, resp, cap = _both(srv, call)
    assert _drop(resp.model_dump(), GEMINI_DROP) == _drop(plain.model_dump(), GEMINI_DROP)
    assert resp.text == " ".join(f"w{i}" for i in range(9))
    u = resp.usage_metadata
    assert u.cached_content_token_count == 4 and u.thoughts_token_count == 32 and u.candidates_token_count == 9
    expected = _gemini_expected(resp)
    _check(cap, srv, expected, request_model=GEMINI_MODEL, response_model=resp.model_version,
           response_id=resp.response_id, stream=False, finish_reasons=("MAX_TOKENS",))
    assert srv.requests[0].path.endswith(f"models/{GEMINI_MODEL}:generateContent")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gemini_stream_generate_content(srv, mode):
    def call():
        client = _gemini(srv, **{"x-mock-cached-tokens": "4", "x-mock-chunks": "4"})
        if mode == "sync":
            return list(client.models.generate_content_stream(model=GEMINI_MODEL, contents=PROMPT,
                                                              config=_gemini_config(8)))

        async def main():
            stream = await client.aio.models.generate_content_stream(model=GEMINI_MODEL, contents=PROMPT,
                                                                     config=_gemini_config(8))
            return [c async for c in stream]
        return asyncio.run(main())

    plain, chunks, cap = _both(srv, call)
    assert [_drop(c.model_dump(), GEMINI_DROP) for c in chunks] == [_drop(c.model_dump(), GEMINI_DROP) for c in plain]
    assert len(chunks) == 4 and "".join(c.text for c in chunks) == " ".join(f"w{i}" for i in range(8))
    for c in chunks:
        _gemini_expected(c)  # every chunk's usageMetadata is self-consistent
    last = chunks[-1]  # usageMetadata on every chunk, running totals: the last one counts
    expected = _gemini_expected(last)
    assert expected.cache_read_tokens == 4 and expected.output_tokens == 8 + 32
    _check(cap, srv, expected, request_model=GEMINI_MODEL, response_model=last.model_version,
           response_id=last.response_id, stream=True, finish_reasons=("MAX_TOKENS",))
    assert srv.requests[0].path.endswith(f"models/{GEMINI_MODEL}:streamGenerateContent?alt=sse")


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_sdk_on_vertex_express_mode(srv, stream):
    """``genai.Client(vertexai=True, api_key=...)``: Vertex AI without a project (``publishers/google/models``)."""
    def call():
        client = genai.Client(vertexai=True, api_key=KEY, http_options=gtypes.HttpOptions(
            base_url=srv.base_url + "/vertex", headers={**ATTRIBUTION, "x-mock-chunks": "3"}))
        if stream:
            return list(client.models.generate_content_stream(model=GEMINI_MODEL, contents=PROMPT,
                                                              config=_gemini_config(6)))
        return [client.models.generate_content(model=GEMINI_MODEL, contents=PROMPT, config=_gemini_config(6))]

    plain, chunks, cap = _both(srv, call)
    assert [_drop(c.model_dump(), GEMINI_DROP) for c in chunks] == [_drop(c.model_dump(), GEMINI_DROP) for c in plain]
    assert "".join(c.text for c in chunks) == " ".join(f"w{i}" for i in range(6))
    expected = _gemini_expected(chunks[-1])
    expected.provider = "gcp.vertex_ai"
    _check(cap, srv, expected, request_model=GEMINI_MODEL, response_model=chunks[-1].model_version,
           response_id=chunks[-1].response_id, stream=stream, finish_reasons=("MAX_TOKENS",))
    assert "/v1beta1/publishers/google/models/" in srv.requests[0].path


def test_gemini_async_goes_over_httpx2(srv):
    """google-genai sends async calls through aiohttp whenever aiohttp is importable (that path, the default
    here since the test extra installs aiohttp, is tests/test_instrumentation_aiohttp.py's); the SDK's own
    ``httpx_async_client`` option sends them through httpx2 instead, instrumented the same way."""
    from google.genai import _api_client

    from inferops.instrumentation.testing import recording_transport

    transports = []

    def call():
        rec = recording_transport(httpx2, asynchronous=True)
        transports.append(rec)
        client = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(
            base_url=srv.base_url + "/gemini", headers={**ATTRIBUTION, "x-mock-cached-tokens": "4"},
            httpx_async_client=httpx2.AsyncClient(transport=rec)))
        assert _api_client.has_aiohttp and client.aio._api_client._use_aiohttp() is False
        return asyncio.run(client.aio.models.generate_content(model=GEMINI_MODEL, contents=PROMPT,
                                                              config=_gemini_config(7)))

    plain, resp, cap = _both(srv, call)
    assert [len(t.wire) for t in transports] == [1, 1]  # each call went through the httpx2 client, once
    assert _drop(resp.model_dump(), GEMINI_DROP) == _drop(plain.model_dump(), GEMINI_DROP)
    _check(cap, srv, _gemini_expected(resp), request_model=GEMINI_MODEL, response_model=resp.model_version,
           response_id=resp.response_id, stream=False, finish_reasons=("MAX_TOKENS",))


# -- mistralai: chat.complete / chat.stream ---------------------------------------------------------------

MISTRAL_MODEL = "mistral-small-latest"
MISTRAL_DROP = frozenset({"id", "created"})


def _mistral(srv) -> Mistral:
    # mistralai has no default-headers option: client-level headers go on the httpx2 clients it accepts.
    return Mistral(api_key=KEY, server_url=srv.base_url + "/mistral",
                   client=httpx2.Client(headers=ATTRIBUTION), async_client=httpx2.AsyncClient(headers=ATTRIBUTION))


def _mistral_expected(model: str, usage) -> UsageRecord:
    """OpenAI-like usage; cached tokens in ``usage.prompt_tokens_details.cached_tokens`` (an extra field of
    mistralai's UsageInfo; the SDK's own OTel code reads it there: mistralai/extra/observability/otel.py)."""
    cached = (usage.additional_properties.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return UsageRecord(provider="mistral_ai", model=model, operation="chat", input_tokens=usage.prompt_tokens,
                       output_tokens=usage.completion_tokens, cache_read_tokens=cached)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mistral_chat(srv, mode):
    hdrs = {"x-mock-cached-tokens": "6"}

    def call():
        m = _mistral(srv)
        if mode == "sync":
            return m.chat.complete(model=MISTRAL_MODEL, messages=MSGS, max_tokens=7, http_headers=hdrs)
        return asyncio.run(m.chat.complete_async(model=MISTRAL_MODEL, messages=MSGS, max_tokens=7,
                                                 http_headers=hdrs))

    plain, res, cap = _both(srv, call)
    assert _drop(res.model_dump(), MISTRAL_DROP) == _drop(plain.model_dump(), MISTRAL_DROP)
    assert res.choices[0].message.content == " ".join(f"w{i}" for i in range(7))
    expected = _mistral_expected(res.model, res.usage)
    assert expected.cache_read_tokens == 6 and res.usage.total_tokens == expected.input_tokens + 7
    _check(cap, srv, expected, request_model=MISTRAL_MODEL, response_model=res.model, response_id=res.id,
           stream=False, finish_reasons=(res.choices[0].finish_reason,))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mistral_chat_stream(srv, mode):
    hdrs = {"x-mock-cached-tokens": "6"}

    def call():
        m = _mistral(srv)
        if mode == "sync":
            return [e.data for e in m.chat.stream(model=MISTRAL_MODEL, messages=MSGS, max_tokens=5,
                                                   http_headers=hdrs)]

        async def main():
            stream = await m.chat.stream_async(model=MISTRAL_MODEL, messages=MSGS, max_tokens=5, http_headers=hdrs)
            return [e.data async for e in stream]
        return asyncio.run(main())

    plain, chunks, cap = _both(srv, call)
    assert [_drop(c.model_dump(), MISTRAL_DROP) for c in chunks] == [_drop(c.model_dump(), MISTRAL_DROP)
                                                                      for c in plain]
    assert len(chunks) == 1 + 5 + 1  # role, content, last content chunk with finish_reason and usage
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == " ".join(f"w{i}" for i in range(5))
    [with_usage] = [c for c in chunks if c.usage is not None]  # Mistral sends usage unasked, on the last chunk
    assert with_usage is chunks[-1]
    expected = _mistral_expected(with_usage.model, with_usage.usage)
    _check(cap, srv, expected, request_model=MISTRAL_MODEL, response_model=with_usage.model,
           response_id=with_usage.id, stream=True, finish_reasons=("length",))
    assert "stream_options" not in srv.requests[0].json()  # never injected for Mistral (it rejects it)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mistral_embeddings(srv, mode):
    inputs = ["the cost dashboard", "a budget alert for the growth team"]

    def call():
        m = _mistral(srv)
        if mode == "sync":
            return m.embeddings.create(model="mistral-embed", inputs=inputs)
        return asyncio.run(m.embeddings.create_async(model="mistral-embed", inputs=inputs))

    plain, res, cap = _both(srv, call)
    assert _drop(res.model_dump(), MISTRAL_DROP) == _drop(plain.model_dump(), MISTRAL_DROP)
    assert len(res.data) == 2 and res.usage.completion_tokens == 0
    expected = UsageRecord(provider="mistral_ai", model=res.model, operation="embeddings",
                           input_tokens=res.usage.prompt_tokens)
    assert expected.input_tokens > 0
    _check(cap, srv, expected, request_model="mistral-embed", response_model=res.model, response_id=res.id,
           stream=False)


# -- cohere: ClientV2 / AsyncClientV2 chat, chat_stream, embed ---------------------------------------------

COHERE_CHAT_MODEL = "command-a-03-2025"
COHERE_EMBED_MODEL = "embed-v4.0"


def _cohere(srv, mode: str):
    # cohere's client-level headers: the httpx client it accepts (it has no default-headers option).
    if mode == "sync":
        return cohere.ClientV2(api_key=KEY, base_url=srv.base_url + "/cohere", max_retries=0,
                               httpx_client=httpx.Client(headers=ATTRIBUTION))
    return cohere.AsyncClientV2(api_key=KEY, base_url=srv.base_url + "/cohere", max_retries=0,
                                httpx_client=httpx.AsyncClient(headers=ATTRIBUTION))


def _cohere_expected(operation: str, model: str, billed) -> UsageRecord:
    """Billed on ``billed_units`` (FACTS.md), not on ``tokens`` (which count the chat template). The
    ``cached_tokens`` figure is not billed separately (no cache price is documented) and is left out."""
    return UsageRecord(provider="cohere", model=model, operation=operation, input_tokens=int(billed.input_tokens),
                       output_tokens=int(billed.output_tokens or 0))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cohere_chat(srv, mode):
    opts = {"additional_headers": {"x-mock-cached-tokens": "5"}}

    def call():
        co = _cohere(srv, mode)
        if mode == "sync":
            return co.chat(model=COHERE_CHAT_MODEL, messages=MSGS, max_tokens=6, request_options=opts)
        return asyncio.run(co.chat(model=COHERE_CHAT_MODEL, messages=MSGS, max_tokens=6, request_options=opts))

    plain, res, cap = _both(srv, call)
    assert _drop(res.dict(), frozenset({"id"})) == _drop(plain.dict(), frozenset({"id"}))
    assert res.message.content[0].text == " ".join(f"w{i}" for i in range(6))
    assert res.usage.tokens.input_tokens > res.usage.billed_units.input_tokens and res.usage.cached_tokens == 5
    expected = _cohere_expected("chat", COHERE_CHAT_MODEL, res.usage.billed_units)
    _check(cap, srv, expected, request_model=COHERE_CHAT_MODEL, response_model=None, response_id=res.id,
           stream=False, finish_reasons=(res.finish_reason,))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cohere_chat_stream(srv, mode, caplog):
    def call():
        co = _cohere(srv, mode)
        if mode == "sync":
            return list(co.chat_stream(model=COHERE_CHAT_MODEL, messages=MSGS, max_tokens=4))

        async def main():
            return [e async for e in co.chat_stream(model=COHERE_CHAT_MODEL, messages=MSGS, max_tokens=4)]
        return asyncio.run(main())

    with caplog.at_level(logging.WARNING):
        plain, events, cap = _both(srv, call)
    # cohere skips an SSE event it cannot build with only a log line: none may be skipped
    assert not [r for r in caplog.records if "SSE event" in r.getMessage()]
    assert [_drop(e.dict(), frozenset({"id"})) for e in events] == [_drop(e.dict(), frozenset({"id"})) for e in plain]
    assert [e.type for e in events] == (["message-start", "content-start"] + ["content-delta"] * 4
                                        + ["content-end", "message-end"])
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert text == " ".join(f"w{i}" for i in range(4))
    end = events[-1]
    expected = _cohere_expected("chat", COHERE_CHAT_MODEL, end.delta.usage.billed_units)
    _check(cap, srv, expected, request_model=COHERE_CHAT_MODEL, response_model=None, response_id=events[0].id,
           stream=True, finish_reasons=(end.delta.finish_reason,))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cohere_embed(srv, mode):
    texts = ["the cost dashboard", "a budget alert for the growth team"]

    def call():
        co = _cohere(srv, mode)
        kw = dict(model=COHERE_EMBED_MODEL, texts=texts, input_type="search_document", embedding_types=["float"])
        return co.embed(**kw) if mode == "sync" else asyncio.run(co.embed(**kw))

    plain, res, cap = _both(srv, call)
    assert _drop(res.dict(), frozenset({"id"})) == _drop(plain.dict(), frozenset({"id"}))
    assert res.response_type == "embeddings_by_type" and len(res.embeddings.float_) == 2
    expected = _cohere_expected("embeddings", COHERE_EMBED_MODEL, res.meta.billed_units)
    assert expected.input_tokens > 0 and expected.output_tokens == 0
    _check(cap, srv, expected, request_model=COHERE_EMBED_MODEL, response_model=None, response_id=res.id,
           stream=False)


# -- errors: the SDK's own exception, one error span, no cost ---------------------------------------------


def _gemini_429(srv):
    client = _gemini(srv, **{"x-mock-status": "429"})
    with pytest.raises(genai.errors.ClientError) as exc:
        client.models.generate_content(model=GEMINI_MODEL, contents=PROMPT)
    assert exc.value.code == 429


def _mistral_429(srv):
    from mistralai.client.errors import SDKError

    with pytest.raises(SDKError) as exc:
        _mistral(srv).chat.complete(model=MISTRAL_MODEL, messages=MSGS, http_headers={"x-mock-status": "429"})
    assert exc.value.status_code == 429


def _cohere_429(srv):
    with pytest.raises(cohere.TooManyRequestsError):
        _cohere(srv, "sync").chat(model=COHERE_CHAT_MODEL, messages=MSGS,
                                  request_options={"additional_headers": {"x-mock-status": "429"}})


@pytest.mark.parametrize("call,provider", [(_gemini_429, "gcp.gemini"), (_mistral_429, "mistral_ai"),
                                           (_cohere_429, "cohere")])
def test_sdk_error_is_one_error_span(srv, call, provider):
    srv.reset()
    with instrumented(_settings(srv)) as cap:
        call(srv)
    [span] = cap.spans()
    assert span.attributes[GenAI.PROVIDER_NAME] == provider
    assert span.attributes[GenAI.ERROR_TYPE] and span.status.status_code.name == "ERROR"
    assert GenAI.USAGE_COST not in span.attributes and not cap.samples(Metrics.COST.prom_name)
    [(labels, n)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert n == 1 and labels["outcome"] == "error" and labels["team"] == "growth"
    assert KEY not in repr(dict(span.attributes)) and KEY not in cap.metrics_text()
    assert not any(k.startswith("x-inferops-") for k in srv.requests[-1].headers)
