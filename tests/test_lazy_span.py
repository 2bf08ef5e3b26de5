"""The call's span is started when something asks for it, or when the call is recorded (runtime._PendingSpan).

Either way it must be the same span a span started in front of the request
would have been: the call's start time, the caller's span as parent, and the
parent of anything started inside ``send``.
"""

from __future__ import annotations

import json
import threading
import time

import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from inferops.instrumentation.testing import instrumented

URL = "https://api.openai.com/v1/chat/completions"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}}
SSE = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in [
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
     "choices": [{"index": 0, "delta": {"content": "hel"}, "finish_reason": None}]},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
     "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}},
]) + b"data: [DONE]\n\n"


def _client(inside=None, delay: float = 0.0, stream: bool = False) -> httpx2.Client:
    """A client whose transport runs ``inside()`` while the request is being sent, then answers."""

    def handler(request):
        if inside is not None:
            inside()
        if delay:
            time.sleep(delay)
        if stream:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=SSE)
        return httpx2.Response(200, json=ANSWER)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def test_span_nobody_asked_for_keeps_the_calls_start_and_parent():
    with instrumented() as cap:
        parent = cap.tracer_provider.get_tracer("app").start_span("handler")
        with trace.use_span(parent, end_on_exit=True), _client(delay=0.05) as client:
            before = time.time_ns()
            client.post(URL, json=CHAT)
            after = time.time_ns()
        [span] = cap.spans()
    assert span.name == "chat gpt-4o"
    assert before <= span.start_time <= before + 20_000_000  # the call's start, not its recording
    assert span.end_time - span.start_time >= 50_000_000  # the 50 ms inside send are inside the span
    assert span.end_time <= after
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id


def test_asked_inside_send_it_is_the_exported_span():
    seen = {}

    def inside():
        current = trace.get_current_span()
        seen["ctx"] = current.get_span_context()
        seen["name"] = current.name  # an SDK-only member, from the real span
        current.set_attribute("app.inside_send", 1)
        seen["start"] = time.time_ns()

    with instrumented() as cap:
        with _client(inside) as client:
            before = time.time_ns()
            client.post(URL, json=CHAT)
        [span] = cap.spans()
    assert seen["ctx"] == span.context and seen["ctx"].is_valid
    assert seen["name"] == "chat gpt-4o"
    assert span.attributes["app.inside_send"] == 1
    assert before <= span.start_time <= seen["start"]
    assert span.attributes["gen_ai.usage.input_tokens"] == 8  # recorded as usual afterwards


def test_child_started_inside_send_has_the_call_span_as_parent():
    children = []
    with instrumented() as cap:
        tracer = cap.tracer_provider.get_tracer("http")

        def inside():
            with tracer.start_as_current_span("POST") as child:
                children.append(child)

        with _client(inside, stream=True) as client:
            body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}  # nothing injected
            with client.stream("POST", URL, json=body) as resp:
                received = resp.read()
        [span] = cap.spans()
    assert received == SSE
    [child] = children
    assert child.parent.span_id == span.context.span_id
    assert child.start_time >= span.start_time


def test_a_span_processor_reading_the_current_span_on_start_neither_recurses_nor_blocks():
    class ReadsCurrent(SpanProcessor):
        def __init__(self):
            self.seen = []

        def on_start(self, span, parent_context=None):
            self.seen.append(trace.get_current_span().get_span_context())

    with instrumented() as cap:
        proc = ReadsCurrent()
        cap.tracer_provider.add_span_processor(proc)
        # The transport asks for the span inside send: the SDK starts it there, and the processor's on_start
        # reads the current span, which is the stand-in for the very span being started.
        with _client(lambda: trace.get_current_span().get_span_context()) as client:
            resp = client.post(URL, json=CHAT)
        [span] = cap.spans()
    assert resp.status_code == 200 and resp.json() == ANSWER
    assert proc.seen == [INVALID_SPAN_CONTEXT]
    assert span.attributes["gen_ai.usage.output_tokens"] == 1


@pytest.mark.parametrize("threads", [8])
def test_many_threads_asking_at_once_get_one_span(threads):
    """The stand-in may be asked from several threads (a log handler, a consumer): one span is started."""
    contexts = []
    barrier = threading.Barrier(threads)

    def inside():
        current = trace.get_current_span()

        def ask():
            barrier.wait()
            contexts.append(current.get_span_context())

        workers = [threading.Thread(target=ask) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    with instrumented() as cap:
        with _client(inside) as client:
            client.post(URL, json=CHAT)
        spans = cap.all_spans()
    assert len(spans) == 1
    assert len(contexts) == threads and all(c == spans[0].context for c in contexts)


def test_streamed_send_answered_with_bytes_is_recorded_and_filtered():
    """A transport that answers with bytes (MockTransport) has read the body before send returns: no stream
    to tee. The call is still recorded at once, and the usage chunk inferops asked for is still hidden."""
    sent = []
    with instrumented() as cap:
        with _client(lambda: None, stream=True) as client:
            client._transport.handler = (lambda h: lambda r: (sent.append(json.loads(r.content)), h(r))[1])(
                client._transport.handler)
            with client.stream("POST", URL, json={**CHAT, "stream": True}) as resp:
                received = resp.read()
            spans = cap.spans()  # before the response is closed or collected
    assert sent[0]["stream_options"] == {"include_usage": True}  # injected
    events = SSE.split(b"\n\n")
    assert received == b"\n\n".join(events[:2] + events[3:])  # the usage-only event removed, nothing else
    [span] = spans
    assert span.attributes["gen_ai.usage.output_tokens"] == 1 and span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize("one_copy", [True, False], ids=["one-copy context", "API calls"])
@pytest.mark.parametrize("strip", [True, False])
def test_context_inside_send(monkeypatch, one_copy, strip):
    """Inside send: the call's span is current, the caller's other context values are kept, the baggage is
    gone unless INFEROPS_STRIP_BAGGAGE=false; after send the caller's context is back."""
    from opentelemetry import baggage, context

    from inferops.instrumentation import runtime
    from inferops.settings import Settings

    if not one_copy:
        monkeypatch.setattr(runtime, "_CONTEXT_KEYS", None)
    else:
        assert runtime._CONTEXT_KEYS is not None  # the import-time check passed on this API version
    key = context.create_key("app-value")
    seen = {}

    def inside():
        seen["span"] = trace.get_current_span().get_span_context()
        seen["baggage"] = dict(baggage.get_all())
        seen["app"] = context.get_value(key)

    with instrumented(Settings(strip_baggage=strip)) as cap:
        ctx = context.set_value(key, "kept", baggage.set_baggage("team", "core"))
        token = context.attach(ctx)
        try:
            with _client(inside) as client:
                client.post(URL, json=CHAT)
            after = context.get_current()
        finally:
            context.detach(token)
        [span] = cap.spans()
    assert seen["span"] == span.context
    assert seen["app"] == "kept"
    assert seen["baggage"] == ({} if strip else {"team": "core"})
    assert after == ctx
    assert span.attributes["inferops.team"] == "core"  # attribution read the baggage before it was cleared
