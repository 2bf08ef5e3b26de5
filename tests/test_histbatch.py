"""``histbatch.record_series`` exports exactly what one ``Histogram.record`` per value exports.

Two identical SDK set-ups are fed the same observations, one through the
public ``record`` and one through ``record_series``; every exported histogram
point must match (attributes, count, sum, min, max, bucket counts, exemplar
values and trace/span ids), under cumulative and delta temporality, with views
(attribute filter, renamed stream, other buckets, drop), two readers, the
cardinality overflow and both exemplar filters.
"""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram as HistogramType
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View

from inferops.processors import histbatch

pytestmark = pytest.mark.skipif(not histbatch.available(), reason="not used with this SDK: the public path is")

SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12]


def _ctx(trace_id: int, span_id: int):
    return trace.set_span_in_context(trace.NonRecordingSpan(
        trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=SAMPLED)))


NO_SPAN = trace.set_span_in_context(trace.INVALID_SPAN)


def _setup(delta: bool, views=(), readers: int = 1, cap: int | None = None, always_on: bool = False):
    temporality = {HistogramType: AggregationTemporality.DELTA} if delta else {}
    limits = {HistogramType: cap} if cap is not None else None
    made = [InMemoryMetricReader(preferred_temporality=temporality, cardinality_limits=limits)
            for _ in range(readers)]
    kw = {"exemplar_filter": AlwaysOnExemplarFilter() if always_on else TraceBasedExemplarFilter()}
    mp = MeterProvider(metric_readers=made, views=list(views), **kw)
    hist = mp.get_meter("t").create_histogram("gen_ai.client.operation.duration", unit="s",
                                              explicit_bucket_boundaries_advisory=BOUNDS)
    return mp, made, hist


def _points(readers) -> list:
    out = []
    for r in readers:
        data = r.get_metrics_data()
        for rm in (data.resource_metrics if data else []):
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for p in m.data.data_points:
                        ex = sorted((e.value, e.trace_id, e.span_id, tuple(sorted((e.filtered_attributes or {}).items())))
                                    for e in (p.exemplars or []))
                        out.append((m.name, tuple(sorted(p.attributes.items())), p.count, round(p.sum, 12),
                                    p.min, p.max, tuple(p.bucket_counts), tuple(p.explicit_bounds), tuple(ex)))
    return sorted(out, key=repr)


def _batches(seed: int, n_series: int = 3, n_batches: int = 4):
    rng = random.Random(seed)
    series = [{"gen_ai.operation.name": "chat", "gen_ai.provider.name": p, "gen_ai.request.model": f"m{i}",
               "server.address": "api.example.com", "gen_ai.token.type": rng.choice(["input", "output"])}
              for i, p in zip(range(n_series), ["openai", "anthropic", "gcp.gemini", "mistral_ai"] * 9)]
    batches = []
    for _ in range(n_batches):
        batch = []
        for attrs in series:
            values = []
            for _ in range(rng.randint(1, 9)):
                v = rng.choice([0, 0.005, 0.02, 0.08, 1.28, 3.3, 7.0, rng.random() * 6])
                c = _ctx(rng.getrandbits(128) or 1, rng.getrandbits(64) or 1) if rng.random() < 0.3 else NO_SPAN
                values.append((v, c))
            batch.append((attrs, values))
        batches.append(batch)
    return batches


def _run(via_series: bool, batches, collect_between: bool, **setup):
    mp, readers, hist = _setup(**setup)
    collected = []
    for batch in batches:
        for attrs, values in batch:
            if via_series:
                histbatch.record_series(hist, attrs, values)
            else:
                for v, c in values:
                    hist.record(v, attrs, context=c)
        if collect_between:
            collected.append(_points(readers))
    collected.append(_points(readers))
    mp.shutdown()
    return collected


@pytest.mark.parametrize("delta", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_export_as_record_per_value(delta, seed):
    batches = _batches(seed)
    for collect_between in (False, True):
        public = _run(False, batches, collect_between, delta=delta)
        bulk = _run(True, batches, collect_between, delta=delta)
        assert bulk == public
        assert any(p for p in public)  # something was exported


@pytest.mark.parametrize("delta", [False, True])
def test_same_export_with_views_and_two_readers(delta):
    views = [View(instrument_name="gen_ai.client.operation.duration", attribute_keys={"gen_ai.provider.name"}),
             View(instrument_name="gen_ai.client.operation.duration", name="renamed",
                  aggregation=ExplicitBucketHistogramAggregation([1.0, 5.0])),
             View(instrument_name="nothing.matches.this", aggregation=DropAggregation())]
    batches = _batches(7, n_series=4)
    public = _run(False, batches, True, delta=delta, views=views, readers=2)
    bulk = _run(True, batches, True, delta=delta, views=views, readers=2)
    assert bulk == public
    names = {p[0] for snap in public for p in snap}
    assert names == {"gen_ai.client.operation.duration", "renamed"}


def test_same_export_with_a_dropped_stream():
    views = [View(instrument_name="gen_ai.client.operation.duration", aggregation=DropAggregation())]
    batches = _batches(8)
    assert _run(True, batches, True, delta=False, views=views) == _run(False, batches, True, delta=False, views=views)


@pytest.mark.parametrize("delta", [False, True])
def test_same_overflow_when_the_cardinality_limit_is_hit(delta):
    batches = _batches(9, n_series=6)
    public = _run(False, batches, True, delta=delta, cap=3)
    bulk = _run(True, batches, True, delta=delta, cap=3)
    assert bulk == public
    assert any(("otel.metric.overflow", True) in p[1] for snap in public for p in snap)


def test_same_exemplars_with_the_always_on_filter():
    batches = _batches(10)
    public = _run(False, batches, True, delta=False, always_on=True)
    bulk = _run(True, batches, True, delta=False, always_on=True)
    assert bulk == public
    assert any(p[8] for snap in public for p in snap)


def test_bad_values_take_the_public_path_and_are_dropped_the_same_way():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    values = [(0.5, NO_SPAN), (-1.0, NO_SPAN), (float("nan"), NO_SPAN), (float("inf"), NO_SPAN), (2.0, NO_SPAN)]
    out = []
    for via in (False, True):
        mp, readers, hist = _setup(delta=False)
        if via:
            histbatch.record_series(hist, attrs, values)
        else:
            for v, c in values:
                hist.record(v, attrs, context=c)
        out.append(_points(readers))
        mp.shutdown()
    assert out[0] == out[1]
    assert out[0][0][2] == 2  # only 0.5 and 2.0 counted


def test_non_sdk_instruments_take_the_public_path():
    from opentelemetry.metrics import NoOpMeterProvider

    class Spy:
        def __init__(self):
            self.seen = []

        def record(self, value, attributes=None, context=None):
            self.seen.append((value, dict(attributes), context))

    spy = Spy()
    histbatch.record_series(spy, {"a": "b"}, [(1.0, NO_SPAN), (2.0, None)])
    assert spy.seen == [(1.0, {"a": "b"}, NO_SPAN), (2.0, {"a": "b"}, None)]
    noop = NoOpMeterProvider().get_meter("x").create_histogram("h")
    histbatch.record_series(noop, {"a": "b"}, [(1.0, None), (2.0, None)])  # no error


def test_a_disabled_meter_records_nothing_either_way():
    mp, readers, hist = _setup(delta=False)
    hist._meter_config = type("Off", (), {"is_enabled": False})()
    histbatch.record_series(hist, {"a": "b"}, [(1.0, NO_SPAN), (2.0, NO_SPAN)])
    assert _points(readers) == []
    mp.shutdown()
