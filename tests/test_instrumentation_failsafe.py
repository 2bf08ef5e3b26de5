"""Fail-safety: whatever inferops' adapters do, the caller gets the provider's bytes and no exception."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import AdapterRouter
from inferops.instrumentation.testing import instrumented, recording_transport
from inferops.mock_providers import MockProviderServer
from inferops.names import Metrics
from inferops.settings import Settings

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}


class Boom(RuntimeError):
    pass


class RaisingAdapter:
    """Wraps a real adapter; the chosen method (or its stream parser's) raises."""

    def __init__(self, inner, where: str):
        self.inner, self.where, self.provider = inner, where, inner.provider

    def parse_request(self, *a):
        if self.where == "parse_request":
            raise Boom("parse_request")
        return self.inner.parse_request(*a)

    def parse_response(self, *a):
        if self.where == "parse_response":
            raise Boom("parse_response")
        return self.inner.parse_response(*a)

    def stream_parser(self, *a):
        if self.where == "stream_parser":
            raise Boom("stream_parser")
        parser = self.inner.stream_parser(*a)
        if self.where in ("feed", "finish", "flush"):
            return RaisingParser(parser, self.where)
        return parser


class RaisingParser:
    def __init__(self, inner, where):
        self.inner, self.where, self.n = inner, where, 0

    def feed(self, data):
        self.n += 1
        if self.where == "feed" and self.n == 3:
            raise Boom("feed")
        return self.inner.feed(data)

    def flush(self):
        if self.where == "flush":
            raise Boom("flush")
        return self.inner.flush()

    def first_content_seen(self):
        return self.inner.first_content_seen()

    def steady(self):
        # The real parser's fast path stays on (compiled absorber), so a failure in feed() also meets it.
        return self.inner.steady() if hasattr(self.inner, "steady") else None

    def finish(self):
        if self.where == "finish":
            raise Boom("finish")
        return self.inner.finish()


class RaisingRouter:
    def __init__(self, settings, where):
        self.real, self.where = AdapterRouter(settings), where

    def route(self, *a):
        if self.where == "route":
            raise Boom("route")
        adapter = self.real.route(*a)
        return RaisingAdapter(adapter, self.where) if adapter is not None else None


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv, **kw):
    return Settings(provider_endpoints=srv.endpoints(), **kw)


WHERE = ["route", "parse_request", "parse_response", "stream_parser", "feed", "flush", "finish"]


@pytest.mark.parametrize("where", WHERE)
def test_raising_adapter_never_reaches_the_caller(srv, where, caplog):
    settings = _settings(srv)
    rec = recording_transport(httpx2)
    with instrumented(settings, router=RaisingRouter(settings, where)) as cap:
        with httpx2.Client(transport=rec) as client:
            r1 = client.post(srv.base_url + "/openai/v1/chat/completions", json=CHAT)
            with client.stream("POST", srv.base_url + "/openai/v1/chat/completions",
                               json={**CHAT, "stream": True, "stream_options": {"include_usage": True}}) as r2:
                streamed = b"".join(r2.iter_raw())
    wire = bytes(rec.wire[0])
    assert r1.content == (gzip.decompress(wire) if r1.headers.get("content-encoding") == "gzip" else wire)
    assert streamed == bytes(rec.wire[1])
    assert all(s.end_time for s in cap.spans())
    if where in ("parse_response", "stream_parser", "feed", "finish"):
        assert cap.total(Metrics.PARSE_ERRORS.prom_name) >= 1


@pytest.mark.parametrize("where", ["feed", "flush"])
def test_raising_parser_in_injection_mode_keeps_the_sdk_working(srv, where):
    settings = _settings(srv)
    with instrumented(settings, router=RaisingRouter(settings, where)):
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-x", max_retries=0)
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=CHAT["messages"],
                                                     stream=True, max_tokens=6))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " ".join(f"w{i}" for i in range(6))


# -- garbage from the "provider" --------------------------------------------------------------


class _Garbage:
    """An HTTP server on 127.0.0.1 answering every POST with the bytes it is told to.

    With ``split`` set, the body goes out in two writes (``body[:split]`` with the headers, the rest 2 ms
    later), so a client sees the two parts in separate reads. Also used by test_instrumentation_aiohttp.
    """

    def __init__(self):
        self.body = b""
        self.ctype = "application/json"
        self.encoding = ""
        self.split: int | None = None
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", outer.ctype)
                if outer.encoding:
                    self.send_header("Content-Encoding", outer.encoding)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                body, split = outer.body, outer.split
                if split is None:
                    self.wfile.write(body)
                    return
                self.wfile.write(body[:split])
                self.wfile.flush()
                if split < len(body):
                    time.sleep(0.002)
                    self.wfile.write(body[split:])
                    self.wfile.flush()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def garbage():
    g = _Garbage()
    yield g
    g.close()


BODIES = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8")),
    st.text(max_size=300).map(lambda t: t.encode("utf-16")),
    st.sampled_from([b'{"usage": {"prompt_tokens": -5, "completion_tokens": "x"}}', b"{", b"null", b"[]",
                     b'data: {"choices": []}\n\ndata: [DONE]\n\n', b"data: {\n\n", b'{"usage": null}',
                     b'{"model": 7, "usage": {"prompt_tokens": 1e308}}', b"\xff\xfe\x00", b" " * 5000]),
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, ctype=st.sampled_from(["application/json", "text/event-stream", "text/plain"]),
       stream=st.booleans(), lib=st.sampled_from([httpx, httpx2]))
def test_garbage_bodies_pass_unchanged(garbage, body, ctype, stream, lib):
    garbage.body, garbage.ctype = body, ctype
    settings = Settings(provider_endpoints={garbage.base + "/v1": "openai"})
    request = {**CHAT, "stream": stream}
    with instrumented(settings) as cap:
        with lib.Client() as client:
            if stream:
                with client.stream("POST", garbage.base + "/v1/chat/completions", json=request) as r:
                    got = b"".join(r.iter_raw())
            else:
                got = client.post(garbage.base + "/v1/chat/completions", json=request).content
    if not (stream and settings.stream_usage_injection):
        assert got == body
    else:  # injection mode: the parser may only drop a usage-only event inferops asked for
        assert got == body or b'"usage"' in body
    assert len(cap.spans()) == 1 and cap.spans()[0].end_time


def test_async_garbage_and_unsupported_encoding(garbage):
    garbage.body, garbage.ctype, garbage.encoding = b"\x00\x01not-brotli", "text/event-stream", "br"
    settings = Settings(provider_endpoints={garbage.base + "/v1": "openai"})

    async def run():
        async with httpx2.AsyncClient() as client:
            async with client.stream("POST", garbage.base + "/v1/chat/completions",
                                     json={**CHAT, "stream": True}) as r:
                return b"".join([c async for c in r.aiter_raw()])

    try:
        with instrumented(settings) as cap:
            got = asyncio.run(run())
    finally:
        garbage.encoding = ""
    assert got == b"\x00\x01not-brotli"
    assert cap.spans()[0].end_time


def test_transport_errors_are_reraised_unchanged(srv):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    settings = Settings(provider_endpoints={f"http://127.0.0.1:{dead_port}/v1": "openai"})
    with instrumented(settings) as cap:
        with httpx2.Client() as client:
            with pytest.raises(httpx2.ConnectError):
                client.post(f"http://127.0.0.1:{dead_port}/v1/chat/completions", json=CHAT)
    [span] = cap.spans()
    assert span.attributes["error.type"] == "ConnectError"
