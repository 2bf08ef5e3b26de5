"""Plain httpx and httpx2 clients, sync and async: bytes, headers, streams, spans, uninstrument."""

from __future__ import annotations

import asyncio
import gc
import gzip
import json

import httpx
import httpx2
import pytest
from opentelemetry import baggage, context

import inferops
from inferops.instrumentation import InferopsInstrumentor
from inferops.instrumentation.testing import instrumented, recording_transport
from inferops.mock_providers import MockProviderServer
from inferops.names import Attr, GenAI, Metrics
from inferops.settings import Settings

LIBS = [httpx, httpx2]
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi there, how much is this"}], "max_tokens": 6}


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv, **kw) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints(), **kw)


def _url(srv, path="/openai/v1/chat/completions"):
    return srv.base_url + path


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_sync_non_streaming_bytes_and_span(srv, lib):
    rec = recording_transport(lib)
    with instrumented(_settings(srv)) as cap:
        with lib.Client(transport=rec) as client:
            resp = client.post(_url(srv), json=CHAT, headers={"Authorization": "Bearer sk-x"})
    assert resp.status_code == 200
    wire = bytes(rec.wire[0])
    assert resp.content == (gzip.decompress(wire) if resp.headers.get("content-encoding") == "gzip" else wire)
    [span] = cap.spans()
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 6
    assert span.attributes[GenAI.SERVER_PORT] == srv.port


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("gzip_stream", [False, True])
def test_sync_stream_raw_bytes_identical(srv, lib, gzip_stream):
    """With the caller's own stream_options (no injection) the raw wire bytes reach the caller as sent."""
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 20}
    headers = {"x-mock-gzip-stream": "1"} if gzip_stream else {}
    rec = recording_transport(lib)
    with instrumented(_settings(srv)) as cap:
        with lib.Client(transport=rec) as client:
            with client.stream("POST", _url(srv), json=body, headers=headers) as resp:
                raw = b"".join(resp.iter_raw())
                assert resp.headers.get("content-encoding", "") == ("gzip" if gzip_stream else "")
            assert resp.elapsed.total_seconds() > 0
    assert raw == bytes(rec.wire[0])
    if gzip_stream:
        assert gzip.decompress(raw).count(b"data: ") == 1 + 20 + 1 + 1 + 1  # role, words, finish, usage, [DONE]
    [span] = cap.spans()
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 20
    assert span.attributes[Attr.USAGE_SOURCE] == "provider"


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_async_stream_injected_usage_chunk_is_removed(srv, lib):
    body = {**CHAT, "stream": True, "max_tokens": 4}

    async def run():
        async with lib.AsyncClient() as client:
            async with client.stream("POST", _url(srv), json=body) as resp:
                return b"".join([c async for c in resp.aiter_bytes()])

    with instrumented(_settings(srv)) as cap:
        got = asyncio.run(run())
    events = [e for e in got.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert len(chunks) == 1 + 4 + 1 and all(c["choices"] for c in chunks)  # no usage-only chunk
    assert json.loads(srv.requests[-1].body)["stream_options"] == {"include_usage": True}
    assert srv.requests[-1].headers.get("accept-encoding") == "identity"
    [span] = cap.spans()
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 4


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_async_non_streaming(srv, lib):
    async def run():
        async with lib.AsyncClient() as client:
            return await client.post(_url(srv, "/anthropic/v1/messages"),
                                     json={"model": "claude-haiku-4-5", "max_tokens": 8,
                                           "messages": [{"role": "user", "content": "yo"}]})

    with instrumented(_settings(srv)) as cap:
        resp = asyncio.run(run())
    assert resp.json()["usage"]["output_tokens"] == 8
    [span] = cap.spans()
    assert span.attributes[GenAI.PROVIDER_NAME] == "anthropic"
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 8


def test_interrupted_stream_records_what_was_received(srv):
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 30}
    with instrumented(_settings(srv)) as cap:
        with httpx2.Client() as client:
            with pytest.raises(httpx2.HTTPError):
                with client.stream("POST", _url(srv), json=body, headers={"x-mock-stream-abort-after": "5"}) as r:
                    for _ in r.iter_bytes():
                        pass
    [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE]
    assert span.attributes[Attr.USAGE_SOURCE] == "estimated"  # no usage event arrived: counted from the text
    assert 0 < span.attributes[GenAI.USAGE_OUTPUT_TOKENS] < 30
    [(labels, _)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert labels["outcome"] == "error"


def test_closed_early_and_abandoned_streams_end_their_spans(srv):
    body = {**CHAT, "stream": True, "max_tokens": 40}
    with instrumented(_settings(srv)) as cap:
        client = httpx2.Client()
        with client.stream("POST", _url(srv), json=body) as resp:
            next(resp.iter_raw())  # read one chunk, then close
        resp2 = client.send(client.build_request("POST", _url(srv), json=body), stream=True)
        assert resp2.status_code == 200
        del resp2  # abandoned: never read, never closed
        gc.collect()
        spans = cap.spans()
        client.close()
    assert len(spans) == 2
    assert {s.attributes[GenAI.ERROR_TYPE] for s in spans} == {"stream_closed", "stream_abandoned"}


def test_attribution_headers_and_baggage_not_sent(srv):
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

    HTTPX2ClientInstrumentor().instrument()
    try:
        with instrumented(_settings(srv), resource={"service.name": "billing", "team": "core",
                                                    "deployment.environment.name": "prod"}) as cap:
            HTTPX2ClientInstrumentor().uninstrument()
            HTTPX2ClientInstrumentor().instrument(tracer_provider=cap.tracer_provider)
            with inferops.attribute(feature="search", user="alice"):
                ctx = baggage.set_baggage("tenant", "acme")
                token = context.attach(ctx)
                try:
                    with httpx2.Client(headers={"X-Inferops-Project": "atlas"}) as client:
                        client.post(_url(srv), json=CHAT)
                finally:
                    context.detach(token)
    finally:
        HTTPX2ClientInstrumentor().uninstrument()
    received = srv.requests[-1].headers
    assert not any(k.lower().startswith("x-inferops") for k in received)
    assert "baggage" not in {k.lower() for k in received}
    assert "traceparent" in {k.lower() for k in received}
    [genai] = cap.spans()
    http_spans = [s for s in cap.all_spans() if s.instrumentation_scope.name != "inferops"]
    assert len(http_spans) == 1 and http_spans[0].parent.span_id == genai.context.span_id
    a = genai.attributes
    assert (a[Attr.TEAM], a[Attr.PROJECT], a[Attr.FEATURE], a[Attr.USER], a[Attr.ENVIRONMENT]) == \
        ("core", "atlas", "search", "alice", "prod")
    [(labels, _)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert (labels["team"], labels["project"], labels["feature"], labels["environment"],
            labels["service_name"]) == ("core", "atlas", "search", "prod", "billing")
    assert "user" not in labels


def test_strip_baggage_can_be_turned_off(srv):
    with instrumented(_settings(srv, strip_baggage=False)):
        with httpx2.Client(headers={"baggage": "team=x"}) as client:
            client.post(_url(srv), json=CHAT)
    assert srv.requests[-1].headers.get("baggage") == "team=x"


def test_non_llm_requests_untouched(srv):
    with instrumented(_settings(srv)) as cap:
        with httpx2.Client() as client:
            client.get(srv.base_url + "/not-an-llm", headers={"X-Inferops-Team": "t", "baggage": "a=b"})
            client.get(_url(srv, "/openai/v1/models"))
    assert cap.spans() == []
    assert srv.requests[-2].headers.get("x-inferops-team") == "t"  # not an LLM host: nothing changed


def test_uninstrument_restores_everything(srv):
    originals = {(lib, cls): getattr(lib, cls).__dict__["send"] for lib in LIBS for cls in ("Client", "AsyncClient")}
    with instrumented(_settings(srv)):
        assert all(getattr(lib, cls).__dict__["send"] is not f for (lib, cls), f in originals.items())
    assert all(getattr(lib, cls).__dict__["send"] is f for (lib, cls), f in originals.items())
    with httpx2.Client() as client:
        client.post(_url(srv), json={**CHAT, "stream": True}, headers={"X-Inferops-Team": "t"})
    last = srv.requests[-1]
    assert last.headers.get("x-inferops-team") == "t" and "stream_options" not in json.loads(last.body)
    assert not InferopsInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_attribution_is_the_callers_at_send_even_when_the_stream_is_read_outside_it(srv, lib):
    """The attribution is resolved when the call is recorded (off the path to the first chunk), from the
    headers and the context the request was sent with: a stream opened inside ``attribute(...)`` and read
    after the block is still that team's, and a later baggage change does not move it."""
    with instrumented(_settings(srv)) as cap:
        with lib.Client(headers={"X-Inferops-Project": "atlas"}) as client:
            with inferops.attribute(team="search", user="alice"):
                resp = client.send(client.build_request("POST", _url(srv), json={**CHAT, "stream": True}),
                                   stream=True)
            token = context.attach(baggage.set_baggage("team", "other"))
            try:
                b"".join(resp.iter_raw())
                resp.close()
            finally:
                context.detach(token)
    [span] = cap.spans()
    assert (span.attributes[Attr.TEAM], span.attributes[Attr.PROJECT], span.attributes[Attr.USER]) == \
        ("search", "atlas", "alice")
    [(labels, _)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert (labels["team"], labels["project"]) == ("search", "atlas")
    assert "x-inferops-project" not in {k.lower() for k in srv.requests[-1].headers}


def test_a_failing_resolver_leaves_the_call_recorded_with_the_defaults(srv, monkeypatch):
    from inferops.instrumentation import attribution

    def broken(self, headers, body_user="", context=None):
        raise RuntimeError("resolver bug")

    with instrumented(_settings(srv), resource={"service.name": "billing", "team": "core"}) as cap:
        monkeypatch.setattr(attribution.Resolver, "resolve", broken)
        with httpx2.Client() as client:
            assert client.post(_url(srv), json=CHAT, headers={"X-Inferops-Team": "t"}).status_code == 200
    [span] = cap.spans()
    assert span.attributes[Attr.TEAM] == "core"  # the resource default: the call is still counted
    [(labels, value)] = cap.samples(Metrics.REQUESTS.prom_name)
    assert labels["team"] == "core" and value == 1
    counted = cap.samples(Metrics.PARSE_ERRORS.prom_name)  # internal failures are counted there, by site
    assert any(labels.get("reason") == "attribution" for labels, _ in counted), counted
