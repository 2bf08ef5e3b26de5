"""The real openai (3.x, httpx2) and anthropic (2.x, httpx2) SDKs against the mock provider server."""

from __future__ import annotations

import asyncio
import gzip
import json

import anthropic
import httpx2
import openai
import pytest

from inferops.instrumentation.testing import instrumented, recording_transport
from inferops.mock_providers import MockProviderServer
from inferops.names import Attr, GenAI, Metrics
from inferops.settings import Settings

KEY = "sk-test-SECRETKEY-0123456789"


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv, **kw) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints(), **kw)


def _openai(srv, transport=None):
    return openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key=KEY, max_retries=0,
                         http_client=httpx2.Client(transport=transport) if transport else None)


def _anthropic(srv, transport=None):
    return anthropic.Anthropic(base_url=srv.base_url + "/anthropic", api_key=KEY, max_retries=0,
                               http_client=httpx2.Client(transport=transport) if transport else None)


MSGS = [{"role": "user", "content": "Say hello to the cost dashboard, please."}]


def _strip_ids(obj):
    if isinstance(obj, dict):
        return {k: _strip_ids(v) for k, v in obj.items() if k not in ("id", "created", "created_at")}
    if isinstance(obj, list):
        return [_strip_ids(x) for x in obj]
    return obj


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_chat_span_and_metrics(srv):
    with instrumented(_settings(srv)) as cap:
        client = _openai(srv)
        with_raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MSGS, max_tokens=20, extra_headers={"x-mock-cached-tokens": "8"})
        completion = with_raw.parse()
    [span] = cap.spans()
    a = span.attributes
    assert span.name == "chat gpt-4o" and span.kind.name == "CLIENT"
    assert a[GenAI.OPERATION_NAME] == "chat" and a[GenAI.PROVIDER_NAME] == "openai"
    assert a[GenAI.REQUEST_MODEL] == "gpt-4o" and a[GenAI.RESPONSE_MODEL] == completion.model
    assert a[GenAI.RESPONSE_ID] == completion.id
    assert a[GenAI.USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == completion.usage.completion_tokens == 20
    assert a[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] == 8
    assert a[GenAI.REQUEST_STREAM] is False and a[GenAI.SERVER_ADDRESS] == "127.0.0.1"
    assert a[Attr.COST_STATUS] == "priced" and a[Attr.USAGE_SOURCE] == "provider"
    assert a[GenAI.USAGE_COST] > 0 and a[Attr.METRICS_RECORDED] is True
    parts = sum(v for k, v in a.items() if k.startswith(Attr.COST_PREFIX) and k.split(".")[-1] in
                ("input", "cache_read", "cache_write", "output", "reasoning", "audio", "image", "request"))
    assert parts == pytest.approx(a[GenAI.USAGE_COST])
    assert cap.total(Metrics.COST.prom_name) == pytest.approx(a[GenAI.USAGE_COST])
    tokens = cap.samples(Metrics.TOKENS.prom_name)
    assert sum(v for _, v in tokens) == completion.usage.total_tokens  # token types partition the call
    assert {lbl["token_type"] for lbl, _ in tokens} == {"input", "cache_read", "output"}
    [(labels, n)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert n == 1 and labels["outcome"] == "success" and labels["stream"] == "false"
    assert labels["service_name"] == "test-app" and labels["team"] == "unattributed"
    hist = cap.samples(Metrics.GENAI_TOKEN_USAGE.prom_name + "_count")
    assert sorted(lbl["gen_ai_token_type"] for lbl, _ in hist) == ["input", "output"]
    assert all("team" not in lbl for lbl, _ in hist)  # semconv histograms: no attribution labels


def test_openai_chat_bytes_unchanged(srv):
    rec = recording_transport(httpx2)
    with instrumented(_settings(srv)):
        raw = _openai(srv, rec).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)
        body = raw.http_response.content
        encoding = raw.http_response.headers.get("content-encoding", "")
    wire = bytes(rec.wire[0])
    assert body == (gzip.decompress(wire) if encoding == "gzip" else wire)


@pytest.mark.parametrize("include_usage", [False, True])
def test_openai_stream_injection_is_invisible(srv, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}

    def run():
        client = _openai(srv)
        return [c.model_dump() for c in client.chat.completions.create(
            model="gpt-4o", messages=MSGS, stream=True, max_tokens=12, **kwargs)]

    plain = run()
    with instrumented(_settings(srv)) as cap:
        seen = run()
    assert _strip_ids(seen) == _strip_ids(plain)
    assert len(seen) == 1 + 12 + 1 + (1 if include_usage else 0)  # role, content, finish(, usage)
    [span] = cap.spans()
    assert span.attributes[GenAI.REQUEST_STREAM] is True
    assert GenAI.ERROR_TYPE not in span.attributes  # the SDK stops at [DONE] and closes: a complete stream
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 12
    assert span.attributes[Attr.USAGE_SOURCE] == "provider"
    assert span.attributes[GenAI.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    finish = [c["choices"][0]["finish_reason"] for c in seen if c["choices"] and c["choices"][0]["finish_reason"]]
    assert span.attributes[GenAI.RESPONSE_FINISH_REASONS] == tuple(finish) == ("length",)
    sent = json.loads(srv.requests[-1].body)
    assert sent["stream_options"] == {"include_usage": True}
    assert cap.samples(Metrics.GENAI_TIME_TO_FIRST_CHUNK.prom_name + "_count")


def test_openai_stream_without_injection_is_estimated(srv, tiktoken_cache):
    with instrumented(_settings(srv, stream_usage_injection=False)) as cap:
        chunks = list(_openai(srv).chat.completions.create(model="gpt-4o", messages=MSGS, stream=True,
                                                          max_tokens=9))
    assert len(chunks) == 11
    [span] = cap.spans()
    a = span.attributes
    assert a[Attr.USAGE_SOURCE] == "estimated"
    import tiktoken

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " ".join(f"w{i}" for i in range(9))
    expected = len(tiktoken.get_encoding("o200k_base").encode(text))  # from the seeded offline cache
    assert a[GenAI.USAGE_OUTPUT_TOKENS] == expected != (len(text) + 3) // 4
    assert a[GenAI.USAGE_INPUT_TOKENS] > 0 and a[GenAI.USAGE_COST] > 0
    assert "stream_options" not in json.loads(srv.requests[-1].body)
    assert cap.total(Metrics.TOKENS.prom_name, usage_source="estimated") == a[GenAI.USAGE_INPUT_TOKENS] + expected


def test_openai_async_stream_and_error(srv):
    async def main():
        client = openai.AsyncOpenAI(base_url=srv.base_url + "/openai/v1", api_key=KEY, max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True, max_tokens=5)
        got = [c async for c in stream]
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=MSGS,
                                                 extra_headers={"x-mock-status": "429"})
        return got

    with instrumented(_settings(srv)) as cap:
        got = asyncio.run(main())
    assert len(got) == 7
    ok, err = cap.spans()
    assert ok.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 5 and GenAI.ERROR_TYPE not in ok.attributes
    assert err.attributes[GenAI.ERROR_TYPE] and err.status.status_code.name == "ERROR"
    outcomes = {lbl["outcome"]: v for lbl, v in cap.samples(Metrics.REQUESTS.prom_name)}
    assert outcomes == {"success": 1, "error": 1}


def test_openai_retries_make_one_span_per_attempt(srv):
    with instrumented(_settings(srv)) as cap:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key=KEY, max_retries=1)
        with pytest.raises(openai.InternalServerError):
            client.with_options(timeout=5).chat.completions.create(
                model="gpt-4o", messages=MSGS, extra_headers={"x-mock-status": "500"})
    assert len(cap.spans()) == 2


# -- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_message_with_cache(srv):
    with instrumented(_settings(srv)) as cap:
        msg = _anthropic(srv).messages.create(
            model="claude-sonnet-4-5", max_tokens=30, messages=MSGS,
            extra_headers={"x-mock-cached-tokens": "100", "x-mock-cache-write-tokens": "50"})
    [span] = cap.spans()
    a = span.attributes
    u = msg.usage
    assert span.name == "chat claude-sonnet-4-5"
    assert a[GenAI.PROVIDER_NAME] == "anthropic"
    # semconv input includes cache reads and writes; Anthropic's input_tokens does not
    assert a[GenAI.USAGE_INPUT_TOKENS] == u.input_tokens + 100 + 50
    assert a[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert a[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] == 50
    assert a[GenAI.RESPONSE_MODEL] == msg.model
    assert a[f"{Attr.COST_PREFIX}cache_write"] > 0 and a[f"{Attr.COST_PREFIX}cache_read"] > 0
    by_type = {lbl["token_type"]: v for lbl, v in cap.samples(Metrics.TOKENS.prom_name)}
    assert by_type == {"input": u.input_tokens, "cache_read": 100, "cache_write": 50, "output": 30}


def test_anthropic_stream_sync_and_async(srv):
    def sync_run():
        with _anthropic(srv).messages.stream(model="claude-haiku-4-5", max_tokens=7, messages=MSGS) as s:
            return "".join(s.text_stream)

    async def async_run():
        client = anthropic.AsyncAnthropic(base_url=srv.base_url + "/anthropic", api_key=KEY, max_retries=0)
        async with client.messages.stream(model="claude-haiku-4-5", max_tokens=7, messages=MSGS) as s:
            return "".join([t async for t in s.text_stream])

    plain = sync_run()
    with instrumented(_settings(srv)) as cap:
        text = sync_run()
        atext = asyncio.run(async_run())
    assert text == plain == atext == " ".join(f"w{i}" for i in range(7))
    spans = cap.spans()
    assert len(spans) == 2
    for span in spans:
        assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 7
        assert span.attributes[GenAI.REQUEST_STREAM] is True
        assert span.attributes[Attr.USAGE_SOURCE] == "provider"
        assert GenAI.ERROR_TYPE not in span.attributes
        assert span.end_time is not None


def test_anthropic_user_id_is_user_fallback(srv):
    settings = _settings(srv, user_label=True)
    with instrumented(settings) as cap:
        _anthropic(srv).messages.create(model="claude-haiku-4-5", max_tokens=3, messages=MSGS,
                                        metadata={"user_id": "u-42"})
    assert cap.spans()[0].attributes[Attr.USER] == "u-42"
    assert {lbl["user"] for lbl, _ in cap.samples(Metrics.REQUESTS.prom_name)} == {"u-42"}


@pytest.fixture
def tiktoken_cache(tmp_path, monkeypatch, repo_root):
    from inferops.instrumentation.testing import seed_tiktoken_cache

    seeded = seed_tiktoken_cache(repo_root.parent / "shared" / "tiktoken", tmp_path / "tiktoken")
    assert seeded, "../shared/tiktoken has no encodings"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    return tmp_path / "tiktoken"
