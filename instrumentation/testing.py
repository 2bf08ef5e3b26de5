"""Test helpers: instrument with in-memory span and metric capture, then restore.

Used by inferops' own tests and benchmark, and usable by applications that
want to assert on the cost of their LLM calls in their tests::

    with instrumented(settings=...) as cap:
        client.chat.completions.create(...)
    cap.spans()[0].attributes["gen_ai.usage.cost"]
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferops.processors.exposition import OpenMetricsReader


@dataclass
class Capture:
    """What an :func:`instrumented` block exported."""

    exporter: InMemorySpanExporter
    reader: OpenMetricsReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    extra: dict[str, Any] = field(default_factory=dict)

    def spans(self, name_prefix: str = ""):
        """Finished inferops spans (scope ``inferops``), oldest first."""
        return [s for s in self.exporter.get_finished_spans()
                if s.instrumentation_scope and s.instrumentation_scope.name == "inferops"
                and s.name.startswith(name_prefix)]

    def all_spans(self):
        return list(self.exporter.get_finished_spans())

    def metrics_text(self, openmetrics: bool = True) -> str:
        body, _ = self.reader.render("application/openmetrics-text" if openmetrics else "text/plain")
        return body.decode()

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample of the Prometheus series ``name``."""
        out = []
        for fam in self.reader.families():
            for s in fam.samples:
                if s.name == name:
                    out.append((dict(s.labels), s.value))
        return out

    def total(self, name: str, **match: str) -> float:
        return sum(v for labels, v in self.samples(name)
                   if all(labels.get(k) == val for k, val in match.items()))


@contextlib.contextmanager
def instrumented(settings=None, *, resource: dict[str, Any] | None = None, **instrument_kwargs
                 ) -> Iterator[Capture]:
    """Instrument with fresh in-memory providers; uninstrument on exit."""
    from . import InferopsInstrumentor

    exporter = InMemorySpanExporter()
    res = Resource.create(resource or {"service.name": "test-app"})
    tp = TracerProvider(resource=res)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = OpenMetricsReader()
    mp = MeterProvider(metric_readers=[reader], resource=res)
    inst = InferopsInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp, settings=settings, **instrument_kwargs)
    try:
        yield Capture(exporter, reader, tp, mp)
    finally:
        inst.uninstrument()
        mp.shutdown()
        tp.shutdown()


def recording_transport(lib, *, asynchronous: bool = False, **transport_kwargs):
    """A real ``lib.HTTPTransport`` (or async) that also keeps every response's wire bytes.

    It sits *below* ``Client.send``, so ``transport.wire[i]`` is exactly what the
    server sent for the i-th request, before inferops (and before httpx decoding).
    """
    class _Rec(lib.SyncByteStream):
        def __init__(self, inner, sink):
            self._inner, self._sink = inner, sink

        def __iter__(self):
            for chunk in self._inner:
                self._sink += chunk
                yield chunk

        def close(self):
            self._inner.close()

    class _ARec(lib.AsyncByteStream):
        def __init__(self, inner, sink):
            self._inner, self._sink = inner, sink

        async def __aiter__(self):
            async for chunk in self._inner:
                self._sink += chunk
                yield chunk

        async def aclose(self):
            await self._inner.aclose()

    if asynchronous:
        class Transport(lib.AsyncHTTPTransport):
            wire: list[bytearray] = []

            async def handle_async_request(self, request):
                response = await super().handle_async_request(request)
                sink = bytearray()
                self.wire.append(sink)
                response.stream = _ARec(response.stream, sink)
                return response
    else:
        class Transport(lib.HTTPTransport):
            wire: list[bytearray] = []

            def handle_request(self, request):
                response = super().handle_request(request)
                sink = bytearray()
                self.wire.append(sink)
                response.stream = _Rec(response.stream, sink)
                return response

    transport = Transport(**transport_kwargs)
    transport.wire = []
    return transport


def seed_tiktoken_cache(source_dir, cache_dir) -> list[str]:
    """Copy ``<name>.tiktoken`` files into ``cache_dir`` under the names tiktoken looks for.

    Returns the encoding names seeded. Use with ``TIKTOKEN_CACHE_DIR=cache_dir``.
    """
    import hashlib
    import os
    import shutil

    from .estimate import _URLS

    seeded = []
    for name, url in _URLS.items():
        src = os.path.join(str(source_dir), f"{name}.tiktoken")
        if os.path.exists(src):
            os.makedirs(str(cache_dir), exist_ok=True)
            shutil.copyfile(src, os.path.join(str(cache_dir), hashlib.sha1(url.encode()).hexdigest()))
            seeded.append(name)
    return seeded
