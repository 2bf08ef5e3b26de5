"""In-process (no network) instruction counts of inferops' own work, for ``bench/instructions.py --inprocess``.

Requests and answers are built in memory (httpx2; canned OpenAI chat and
Anthropic Messages bodies and 50-chunk SSE streams, one event per network
read), and run through ``Runtime.begin`` / ``Call.enter`` / ``Call.response``
and the stream tee exactly as the patched ``send`` does. Runs under callgrind
(started by ``instructions.py``), marking block boundaries with ``os.getppid()``.

Per variant (spans and/or metrics sent to no-op providers, to split the cost):
instructions per non-streamed call and per 50-chunk stream; and the
instructions between "the request is built" and "the caller holds the first
chunk" (time to first chunk), per call.
"""

from __future__ import annotations

import json
import os
import sys

import httpx2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from inferops.instrumentation.configure import build_runtime
from inferops.instrumentation.patch import Hooks, _parse_result
from inferops.instrumentation.streams import tee_classes
from inferops.processors.exposition import OpenMetricsReader
from inferops.settings import Settings

CHUNKS = 50
BASE = "http://127.0.0.1:9"
MSGS = [{"role": "user", "content": "Summarise the quarterly cost report in one sentence."}]
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-x", "user-agent": "bench",
           "accept": "application/json"}


class _Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def _c(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def openai_events() -> list[bytes]:
    def chunk(content=None, finish=None, usage=None, choices=True):
        return b"data: " + _c({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
            "service_tier": "default", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": content} if content is not None else {},
                         "logprobs": None, "finish_reason": finish}] if choices else [],
            "usage": usage}) + b"\n\n"
    return ([chunk("")] + [chunk(f" w{i}") for i in range(CHUNKS)] + [chunk(None, "stop"), chunk(
        None, None, {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 20 + CHUNKS}, False),
        b"data: [DONE]\n\n"])


def anthropic_events() -> list[bytes]:
    def ev(typ, data):
        return b"event: " + typ.encode() + b"\ndata: " + _c(data) + b"\n\n"
    return ([ev("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})]
        + [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": f" w{i}"}}) for i in range(CHUNKS)]
        + [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
           ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                "usage": {"output_tokens": CHUNKS}}),
           ev("message_stop", {"type": "message_stop"})])


def run(variant: str, calls: int) -> None:
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(_Drop(), schedule_delay_millis=3_600_000))  # exported at block ends
    mp = MeterProvider(metric_readers=[OpenMetricsReader()])
    tracer_provider, meter_provider = tp, mp
    if "nospan" in variant:
        from opentelemetry.trace import NoOpTracerProvider
        tracer_provider = NoOpTracerProvider()
    if "nometrics" in variant:
        from opentelemetry.metrics import NoOpMeterProvider
        meter_provider = NoOpMeterProvider()
    # Metric batches end with each block (flush below), as in instructions.py.
    rt = build_runtime(tracer_provider=tracer_provider, meter_provider=meter_provider, settings=Settings(
        provider_endpoints={BASE + "/openai/v1": "openai", BASE + "/anthropic": "anthropic"},
        metrics_batch_interval_seconds=3600.0))
    sync_tee, async_tee = tee_classes(httpx2)
    hooks = Hooks(sync_tee, async_tee, httpx2._content.ByteStream, _parse_result(httpx2))  # as patch_all builds it
    oa_url, an_url = BASE + "/openai/v1/chat/completions", BASE + "/anthropic/v1/messages"
    oa_body = _c({"model": "gpt-4o", "messages": MSGS, "max_tokens": CHUNKS})
    oa_stream_body = _c({"model": "gpt-4o", "messages": MSGS, "max_tokens": CHUNKS, "stream": True})
    an_stream_body = _c({"model": "claude-sonnet-4-5", "messages": MSGS, "max_tokens": CHUNKS, "stream": True})
    answer = _c({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "w0 w1"},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 20 + CHUNKS}})
    streams = {"openai": (oa_url, oa_stream_body, openai_events()),
               "anthropic": (an_url, an_stream_body, anthropic_events())}

    class Canned(httpx2.SyncByteStream):
        def __init__(self, events):
            self.events = events

        def __iter__(self):
            yield from self.events

    def plain(instrumented: bool) -> None:
        req = httpx2.Request("POST", oa_url, content=oa_body, headers=HEADERS)
        call = rt.begin(req, hooks) if instrumented else None
        if call is not None:
            call.exit(call.enter())
        resp = httpx2.Response(200, content=answer, headers={"content-type": "application/json"}, request=req)
        if call is not None:
            call.response(resp, False, False)

    def streamed(kind: str, instrumented: bool, mark_first: bool = False) -> None:
        url, body, events = streams[kind]
        req = httpx2.Request("POST", url, content=body, headers=HEADERS)
        resp = httpx2.Response(200, stream=Canned(events), headers={"content-type": "text/event-stream"},
                               request=req)
        if mark_first:
            os.getppid()
        call = rt.begin(req, hooks) if instrumented else None
        if call is not None:
            call.exit(call.enter())
            call.response(resp, True, False)
        it = resp.iter_raw()
        next(it)
        if mark_first:
            os.getppid()
        for _ in it:
            pass
        resp.close()

    def block(label: str, fn) -> None:
        rt.flush_metrics()
        tp.force_flush()
        os.getppid()
        for _ in range(calls):
            fn()
        rt.flush_metrics()
        tp.force_flush()
        os.getppid()
        print(f"BLOCK\t{label}", flush=True)

    for _ in range(30):  # warm: imports, caches, memos
        plain(True), plain(False), streamed("openai", True), streamed("anthropic", True)
    for name, fn in (("plain", plain), ("openai stream50", lambda i: streamed("openai", i)),
                     ("anthropic stream50", lambda i: streamed("anthropic", i))):
        block(f"{name}\tnone", lambda: fn(False))
        block(f"{name}\tinferops", lambda: fn(True))
    for kind in ("openai", "anthropic"):
        for instrumented in (False, True):
            for _ in range(calls):
                streamed(kind, instrumented, mark_first=True)
            print(f"FIRST\t{kind}\t{'inferops' if instrumented else 'none'}", flush=True)
    rt.close()
    tp.shutdown()


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
