"""Batched metric recording of the instrumentation (``metrics_batch_interval_seconds``).

Calls are buffered and recorded with ``CostRecorder.record_calls``: the
exported totals must equal those of one ``record_call`` per call, exemplars
must be exported spans' ids, inferops' own reader must see every finished call
(pre-collect flush) and a third-party reader must see them after the timer or
an explicit flush.
"""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferops.instrumentation import InferopsInstrumentor
from inferops.instrumentation.runtime import MetricsBatcher
from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.names import Metrics
from inferops.processors.exposition import OpenMetricsReader, add_pre_collect_hook, remove_pre_collect_hook
from inferops.settings import Settings

MSGS = [{"role": "user", "content": "Batch me, please."}]


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv, **kw) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), **kw)


def _calls(srv) -> None:
    """A mix: two models, cached tokens, a stream, an HTTP error."""
    client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-batch", max_retries=0)
    for i in range(3):
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=10 + i,
                                       extra_headers={"x-mock-cached-tokens": str(4 * i)})
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=5, stream=True):
        pass
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=5,
                                       extra_headers={"x-mock-status": "500"})


def _inferops_samples(cap) -> dict[tuple, float]:
    """Every inferops_* and gen_ai_* sample (name, labels) -> value, read through OpenMetricsReader.

    Timing histograms (duration, time to first chunk) vary run to run: only their counts are kept.
    """
    out = {}
    for fam in cap.reader.families():
        timing = fam.unit == "seconds"
        for s in fam.samples:
            if not s.name.startswith(("inferops_", "gen_ai_")):
                continue
            if timing and not s.name.endswith("_count"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_batched_export_equals_per_call_recording(srv):
    """Same series, same counts and token/cost totals with batching on (default) and off."""
    with instrumented(_settings(srv, metrics_batch_interval_seconds=3600)) as cap:
        _calls(srv)
        batched = _inferops_samples(cap)  # no flush called: the reader's pre-collect hook does it
        spans = cap.spans()
    with instrumented(_settings(srv, metrics_batch_interval_seconds=0)) as cap:
        _calls(srv)
        direct = _inferops_samples(cap)
    assert len(spans) == 5
    requests = Metrics.REQUESTS.prom_name
    assert sum(v for (name, _), v in batched.items() if name == requests) == 5
    assert set(batched) == set(direct)
    assert any(name.endswith("_seconds_count") for name, _ in direct)
    for key, value in direct.items():
        assert batched[key] == pytest.approx(value, rel=1e-9), key


def test_exemplars_are_the_exported_spans(srv):
    with instrumented(_settings(srv, metrics_batch_interval_seconds=3600)) as cap:
        _calls(srv)
        fams = cap.reader.families()
        span_ids = {(format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in cap.spans()}
    cost = Metrics.COST.prom_name
    exemplars = {(s.exemplar.labels["trace_id"], s.exemplar.labels["span_id"])
                 for f in fams for s in f.samples if s.name == cost and s.exemplar is not None}
    assert exemplars and exemplars <= span_ids
    # gpt-4o and gpt-4o-mini are different series: each keeps an exemplar of its own calls
    assert len({t for t, _ in exemplars}) >= 2


def _third_party(srv, interval: float):
    exporter = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "batch-test"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    inst = InferopsInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp,
                    settings=_settings(srv, metrics_batch_interval_seconds=interval))
    return inst, reader, exporter, tp, mp


def _requests_seen(reader: InMemoryMetricReader) -> tuple[int, set[int]]:
    """(inferops requests counted, exemplar trace ids) in a third-party reader."""
    data = reader.get_metrics_data()
    total, traces = 0, set()
    for rm in (data.resource_metrics if data else []):
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == Metrics.REQUESTS.otel_name:
                    for p in metric.data.data_points:
                        total += int(p.value)
                        traces |= {e.trace_id for e in p.exemplars}
    return total, traces


def test_third_party_reader_sees_calls_after_explicit_flush(srv):
    inst, reader, exporter, tp, mp = _third_party(srv, interval=3600)
    try:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-batch", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=5)
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=6)
        assert _requests_seen(reader)[0] == 0  # still buffered (the timer is an hour away)
        assert inst.flush_metrics() == 2
        total, traces = _requests_seen(reader)
        assert total == 2
        assert traces and traces <= {s.context.trace_id for s in exporter.get_finished_spans()}
        assert inst.flush_metrics() == 0
    finally:
        inst.uninstrument()
        mp.shutdown()
        tp.shutdown()


def test_third_party_reader_sees_calls_after_the_timer(srv):
    inst, reader, _, tp, mp = _third_party(srv, interval=0.05)
    try:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-batch", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=5)
        deadline = time.monotonic() + 30  # a generous bound for a loaded machine, not a speed check
        while _requests_seen(reader)[0] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _requests_seen(reader)[0] == 1  # recorded by the flush thread, nobody asked
    finally:
        inst.uninstrument()
        mp.shutdown()
        tp.shutdown()


def test_uninstrument_records_what_is_buffered(srv):
    inst, reader, _, tp, mp = _third_party(srv, interval=3600)
    try:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-batch", max_retries=0,
                               http_client=httpx2.Client())
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=5)
        assert _requests_seen(reader)[0] == 0
    finally:
        inst.uninstrument()
    try:
        assert _requests_seen(reader)[0] == 1
    finally:
        mp.shutdown()
        tp.shutdown()


class _Recorder:
    def __init__(self):
        self.batches: list[list] = []

    def record_calls(self, calls):
        self.batches.append(list(calls))


def test_full_buffer_is_flushed_by_the_call_that_fills_it():
    rec = _Recorder()
    b = MetricsBatcher(rec, interval_s=3600, max_samples=3)
    try:
        b.add("a"), b.add("b")
        assert rec.batches == [] and b.pending() == 2
        b.add("c")
        assert rec.batches == [["a", "b", "c"]] and b.pending() == 0
    finally:
        b.close()
    b.add("late")  # a stream finishing after close(): recorded at once, not lost
    assert rec.batches[-1] == ["late"]


def test_pre_collect_hook_runs_before_collect_and_a_failing_hook_is_contained():
    reader = OpenMetricsReader()
    mp = MeterProvider(metric_readers=[reader])
    counter = mp.get_meter("t").create_counter("hooked")
    calls = []

    def hook():
        calls.append(1)
        counter.add(7)

    def broken():
        raise RuntimeError("boom")

    add_pre_collect_hook(broken)
    add_pre_collect_hook(hook)
    try:
        body, _ = reader.render("text/plain")
        assert b"hooked_total 7.0" in body and calls == [1]
    finally:
        remove_pre_collect_hook(broken)
        remove_pre_collect_hook(hook)
    reader.render("text/plain")
    assert calls == [1]
    mp.shutdown()
