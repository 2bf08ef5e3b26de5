"""``sdkbatch.SeriesWriter`` exports exactly what one public ``record``/``add`` per value exports.

Two identical SDK set-ups are fed the same batches, one through the public
``record`` (histogram) / ``add`` (counter) and one through one long-lived
``SeriesWriter`` (so its per-series plans are reused from batch to batch);
every exported point must match (attributes, count, sum, min, max, bucket
counts, exemplar values and trace/span ids), under cumulative and delta
temporality, with views (attribute filter, renamed stream, other buckets,
drop), two readers, a reader added and one removed between batches, the
cardinality overflow and both exemplar filters.
"""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Counter as CounterType
from opentelemetry.sdk.metrics import Histogram as HistogramType
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, ExplicitBucketHistogramAggregation, View

from inferops.processors import sdkbatch

SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12]
NAME = "gen_ai.client.operation.duration"


def _ctx(trace_id: int, span_id: int):
    return trace.set_span_in_context(trace.NonRecordingSpan(
        trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=SAMPLED)))


NO_SPAN = trace.set_span_in_context(trace.INVALID_SPAN)


def _reader(delta: bool, cap: int | None):
    kinds = (HistogramType, CounterType)
    return InMemoryMetricReader(
        preferred_temporality={k: AggregationTemporality.DELTA for k in kinds} if delta else {},
        cardinality_limits={k: cap for k in kinds} if cap is not None else None)


def _setup(kind: str, delta: bool, views=(), readers: int = 1, cap: int | None = None, always_on: bool = False):
    made = [_reader(delta, cap) for _ in range(readers)]
    kw = {"exemplar_filter": AlwaysOnExemplarFilter() if always_on else TraceBasedExemplarFilter()}
    mp = MeterProvider(metric_readers=made, views=list(views), **kw)
    meter = mp.get_meter("t")
    if kind == "histogram":
        inst = meter.create_histogram(NAME, unit="s", explicit_bucket_boundaries_advisory=BOUNDS)
    else:
        inst = meter.create_counter(NAME, unit="s")
    return mp, made, inst


def _data_points(readers):
    """(metric name, data point) for every point the readers collect now."""
    for r in readers:
        data = r.get_metrics_data()
        for rm in (data.resource_metrics if data else []):
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for p in m.data.data_points:
                        yield m.name, p


def _points(readers) -> list:
    out = []
    for name, p in _data_points(readers):
        ex = sorted((e.value, e.trace_id, e.span_id, tuple(sorted((e.filtered_attributes or {}).items())))
                    for e in (p.exemplars or []))
        shape = ((p.count, p.min, p.max, tuple(p.bucket_counts), tuple(p.explicit_bounds))
                 if hasattr(p, "bucket_counts") else (p.value,))
        total = p.sum if hasattr(p, "bucket_counts") else p.value
        out.append((name, tuple(sorted(p.attributes.items())), round(total, 12), shape, tuple(ex)))
    return sorted(out, key=repr)


def _feed(via_writer: bool, writer, inst, key, attrs, values) -> None:
    """One series' values: through ``writer`` or one public ``record``/``add`` per value."""
    if via_writer:
        writer.write(inst, key, attrs, values)
    else:
        public = getattr(inst, "record", None) or inst.add
        for v, c in values:
            public(v, attrs, context=c)


def _batches(seed: int, n_series: int = 3, n_batches: int = 4):
    """Batches of (series key, attributes, [(value, context)]); a series keeps its key and attributes."""
    rng = random.Random(seed)
    series = [(("s", i), {"gen_ai.operation.name": "chat", "gen_ai.provider.name": p,
                          "gen_ai.request.model": f"m{i}", "server.address": "api.example.com",
                          "gen_ai.token.type": rng.choice(["input", "output"])})
              for i, p in zip(range(n_series), ["openai", "anthropic", "gcp.gemini", "mistral_ai"] * 9)]
    batches = []
    for _ in range(n_batches):
        batch = []
        for key, attrs in rng.sample(series, k=len(series)):
            values = []
            for _ in range(rng.randint(1, 9)):
                v = rng.choice([0, 0.005, 0.02, 0.08, 1.28, 3.3, 7.0, rng.random() * 6])
                c = _ctx(rng.getrandbits(128) or 1, rng.getrandbits(64) or 1) if rng.random() < 0.3 else NO_SPAN
                values.append((v, c))
            batch.append((key, attrs, values))
        batches.append(batch)
    return batches


def _run(via_writer: bool, kind: str, batches, collect_between: bool = True, between=None, **setup):
    mp, readers, inst = _setup(kind, **setup)
    writer = sdkbatch.SeriesWriter()
    snapshots = []
    # Counters keep a random sample of exemplars (SimpleFixedSizeExemplarReservoir, module random): both runs
    # must draw the same numbers, which they do when they offer the same measurements in the same order.
    random.seed(1234)
    for n, batch in enumerate(batches):
        for key, attrs, values in batch:
            _feed(via_writer, writer, inst, key, attrs, values)
        if collect_between:
            snapshots.append(_points(readers))
        if between is not None:
            between(n, mp, readers)
    snapshots.append(_points(readers))
    mp.shutdown()
    return snapshots


KINDS = ["histogram", "counter"]


def test_the_direct_path_is_used_with_this_sdk(monkeypatch):
    # The pinned SDK must take the direct path (not silently the public one): after a series' first write,
    # its later values build no Measurement through the constructor (no attribute cleaning).
    assert sdkbatch.available()
    mp, readers, inst = _setup("histogram", delta=False)
    writer = sdkbatch.SeriesWriter()
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    writer.write(inst, "k", attrs, [(0.5, NO_SPAN)])
    built = []
    original = sdkbatch.Measurement.__post_init__
    monkeypatch.setattr(sdkbatch.Measurement, "__post_init__", lambda self: (built.append(1), original(self)))
    writer.write(inst, "k", attrs, [(1.0, NO_SPAN), (2.0, NO_SPAN), (3.0, NO_SPAN)])
    assert built == []
    assert _points(readers)[0][3][0] == 4  # all four values counted
    mp.shutdown()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("delta", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_export_as_one_public_call_per_value(kind, delta, seed):
    batches = _batches(seed)
    for collect_between in (False, True):
        public = _run(False, kind, batches, collect_between, delta=delta)
        direct = _run(True, kind, batches, collect_between, delta=delta)
        assert direct == public
        assert any(public)  # something was exported


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("delta", [False, True])
def test_same_export_with_views_and_two_readers(kind, delta):
    views = [View(instrument_name=NAME, attribute_keys={"gen_ai.provider.name"}),
             View(instrument_name=NAME, name="renamed",
                  aggregation=ExplicitBucketHistogramAggregation([1.0, 5.0]) if kind == "histogram" else None),
             View(instrument_name="nothing.matches.this", aggregation=DropAggregation())]
    views = [View(instrument_name=v._instrument_name, name=v._name, attribute_keys=v._attribute_keys,
                  aggregation=v._aggregation) for v in views]
    batches = _batches(7, n_series=4)
    public = _run(False, kind, batches, delta=delta, views=views, readers=2)
    direct = _run(True, kind, batches, delta=delta, views=views, readers=2)
    assert direct == public
    assert {p[0] for snap in public for p in snap} == {NAME, "renamed"}


@pytest.mark.parametrize("kind", KINDS)
def test_same_export_with_a_dropped_stream(kind):
    views = [View(instrument_name=NAME, aggregation=DropAggregation())]
    batches = _batches(8)
    assert _run(True, kind, batches, delta=False, views=views) == _run(False, kind, batches, delta=False, views=views)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("delta", [False, True])
def test_same_overflow_when_the_cardinality_limit_is_hit(kind, delta):
    batches = _batches(9, n_series=6)
    public = _run(False, kind, batches, delta=delta, cap=3)
    direct = _run(True, kind, batches, delta=delta, cap=3)
    assert direct == public
    assert any(("otel.metric.overflow", True) in p[1] for snap in public for p in snap)


@pytest.mark.parametrize("kind", KINDS)
def test_same_exemplars_with_the_always_on_filter(kind):
    batches = _batches(10)
    public = _run(False, kind, batches, delta=False, always_on=True)
    direct = _run(True, kind, batches, delta=False, always_on=True)
    assert direct == public
    assert any(p[4] for snap in public for p in snap)


@pytest.mark.parametrize("kind", KINDS)
def test_readers_added_and_removed_between_batches(kind):
    # A plan remembers the readers it was made for: a reader added later must get the later values too.
    late: list = []

    def between(n, mp, readers):
        if n == 0:
            r = _reader(False, None)
            mp.add_metric_reader(r)
            readers.append(r)
            late.append(r)
        if n == 2:
            mp.remove_metric_reader(readers[0])
            readers.pop(0)

    batches = _batches(11, n_batches=5)
    public = _run(False, kind, batches, delta=False, between=between)
    late.clear()
    direct = _run(True, kind, batches, delta=False, between=between)
    assert direct == public
    assert len(late) == 1


def test_bad_values_take_the_public_path_and_are_dropped_the_same_way():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    values = [(0.5, NO_SPAN), (-1.0, NO_SPAN), (float("nan"), NO_SPAN), (float("inf"), NO_SPAN), (2.0, NO_SPAN)]
    for kind in KINDS:
        out = []
        for via in (False, True):
            mp, readers, inst = _setup(kind, delta=False)
            _feed(via, sdkbatch.SeriesWriter(), inst, "k", attrs, values)
            out.append(_points(readers))
            mp.shutdown()
        assert out[0] == out[1]
        assert out[0][0][2] == 2.5  # only 0.5 and 2.0 counted


def test_non_sdk_instruments_take_the_public_path():
    from opentelemetry.metrics import NoOpMeterProvider

    class SpyHistogram:
        def __init__(self):
            self.seen = []

        def record(self, value, attributes=None, context=None):
            self.seen.append((value, dict(attributes), context))

    class SpyCounter:
        def __init__(self):
            self.seen = []

        def add(self, value, attributes=None, context=None):
            self.seen.append((value, dict(attributes), context))

    writer = sdkbatch.SeriesWriter()
    for spy in (SpyHistogram(), SpyCounter()):
        writer.write(spy, ("k", id(spy)), {"a": "b"}, [(1.0, NO_SPAN), (2.0, None)])
        assert spy.seen == [(1.0, {"a": "b"}, NO_SPAN), (2.0, {"a": "b"}, None)]
    noop = NoOpMeterProvider().get_meter("x")
    writer.write(noop.create_histogram("h"), "h", {"a": "b"}, [(1.0, None), (2.0, None)])  # no error
    writer.write(noop.create_counter("c"), "c", {"a": "b"}, [(1.0, None)])


def test_a_meter_disabled_after_the_plan_was_made_records_nothing():
    mp, readers, inst = _setup("counter", delta=False)
    writer = sdkbatch.SeriesWriter()
    writer.write(inst, "k", {"a": "b"}, [(1.0, NO_SPAN)])
    inst._meter_config = type("Off", (), {"is_enabled": False})()
    writer.write(inst, "k", {"a": "b"}, [(5.0, NO_SPAN), (7.0, NO_SPAN)])
    assert [p[2] for p in _points(readers)] == [1.0]
    mp.shutdown()


def test_the_plan_cache_is_bounded():
    mp, readers, inst = _setup("counter", delta=False)
    writer = sdkbatch.SeriesWriter(max_series=5)
    for i in range(12):
        writer.write(inst, ("k", i), {"i": i}, [(1.0, NO_SPAN)])
    assert len(writer._plans) <= 5
    assert len(_points(readers)) == 12
    mp.shutdown()


# -- histogram runs: the values of one batch that share a context, added in one pass ----------------------------


def _spy_runs(monkeypatch) -> list[int]:
    runs: list[int] = []
    real = sdkbatch._add_histogram_run
    monkeypatch.setattr(sdkbatch, "_add_histogram_run", lambda agg, run: (runs.append(len(run)), real(agg, run))[1])
    return runs


def _exact_points(readers) -> list:
    """(name, attributes, sum, count, min, max, buckets, exemplars) with the sum unrounded."""
    return sorted(((name, tuple(sorted(p.attributes.items())), p.sum, p.count, p.min, p.max, tuple(p.bucket_counts),
                    tuple((e.value, e.trace_id, e.span_id) for e in (p.exemplars or [])))
                   for name, p in _data_points(readers)), key=repr)


def test_the_runs_self_check_passes_with_this_sdk_and_catches_a_wrong_run(monkeypatch):
    assert sdkbatch._RUNS_MATCH_SDK  # the pinned SDK takes the one-pass path
    real = sdkbatch._add_histogram_run

    def drops_the_last(agg, run):
        real(agg, run[:-1])

    monkeypatch.setattr(sdkbatch, "_add_histogram_run", drops_the_last)
    assert not sdkbatch._runs_match_sdk()

    def forgets_max(agg, run):
        real(agg, run)
        agg._max = -1.0

    monkeypatch.setattr(sdkbatch, "_add_histogram_run", forgets_max)
    assert not sdkbatch._runs_match_sdk()


@pytest.mark.parametrize("delta", [False, True])
def test_histogram_runs_are_taken_and_export_the_same_float_sums(monkeypatch, delta):
    runs = _spy_runs(monkeypatch)
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    # Summed in another order these would give another float: the run keeps the order.
    batches = [[(1e16, NO_SPAN), (1.0, NO_SPAN), (1.0, NO_SPAN), (0.1, _ctx(7, 8)), (0.2, NO_SPAN), (0.3, NO_SPAN)],
               [(0.7, NO_SPAN), (3.0, _ctx(9, 10)), (1e-17, NO_SPAN), (2.5, NO_SPAN)]]
    out = []
    for via in (False, True):
        mp, readers, inst = _setup("histogram", delta=delta)
        writer = sdkbatch.SeriesWriter()
        snaps = []
        for values in batches:
            _feed(via, writer, inst, "k", attrs, values)
            snaps.append(_exact_points(readers))
        out.append(snaps)
        mp.shutdown()
    assert out[0] == out[1]
    assert out[0][0][0][2] == ((((1e16 + 1.0) + 1.0) + 0.1) + 0.2) + 0.3  # the first batch's sum, in order
    assert runs == [3, 2, 2]  # the NO_SPAN runs of two or more; exemplar carriers and single values go one by one


def test_runs_with_the_thread_s_sampled_span_current_take_the_per_value_path(monkeypatch):
    # Values without their own context are recorded in the current one: with a sampled span current, the
    # trace-based filter keeps them as exemplars, so they are not added as a run.
    runs = _spy_runs(monkeypatch)
    attrs = {"gen_ai.operation.name": "chat"}
    values = [(0.5, None), (1.5, None), (2.5, None)]
    out = []
    for via in (False, True):
        mp, readers, inst = _setup("histogram", delta=False)
        span = trace.NonRecordingSpan(trace.SpanContext(11, 12, is_remote=False, trace_flags=SAMPLED))
        with trace.use_span(span):
            _feed(via, sdkbatch.SeriesWriter(), inst, "k", attrs, values)
        out.append(_exact_points(readers))
        mp.shutdown()
    assert out[0] == out[1]
    assert out[0][0][7] and {e[1] for e in out[0][0][7]} == {11}  # exemplars of the current span
    assert runs == []
    # With no span current, the same values are a run.
    mp, readers, inst = _setup("histogram", delta=False)
    sdkbatch.SeriesWriter().write(inst, "k", attrs, values)
    assert runs == [3] and _exact_points(readers)[0][2:4] == (4.5, 3)
    mp.shutdown()


def test_an_exponential_histogram_view_takes_the_per_value_path(monkeypatch):
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

    runs = _spy_runs(monkeypatch)
    views = [View(instrument_name=NAME, aggregation=ExponentialBucketHistogramAggregation())]
    batches = _batches(12, n_series=3)

    def export(via_writer: bool, delta: bool) -> list:
        mp, readers, inst = _setup("histogram", delta=delta, views=views)
        writer = sdkbatch.SeriesWriter()
        for batch in batches:
            for key, attrs, values in batch:
                _feed(via_writer, writer, inst, key, attrs, values)
        out = sorted(repr((sorted(p.attributes.items()), p.count, p.sum, p.min, p.max, p.scale, p.zero_count,
                           p.positive.offset, list(p.positive.bucket_counts),
                           [(e.value, e.trace_id, e.span_id) for e in p.exemplars]))
                     for _, p in _data_points(readers))
        mp.shutdown()
        return out

    for delta in (False, True):
        public = export(False, delta)
        assert export(True, delta) == public and public
    assert runs == []


def test_a_run_with_a_bad_value_is_recorded_value_by_value(monkeypatch):
    runs = _spy_runs(monkeypatch)
    attrs = {"gen_ai.operation.name": "chat"}
    values = [(0.5, NO_SPAN), (float("nan"), NO_SPAN), (2.0, NO_SPAN), (-3.0, NO_SPAN)]
    out = []
    for via in (False, True):
        mp, readers, inst = _setup("histogram", delta=False)
        _feed(via, sdkbatch.SeriesWriter(), inst, "k", attrs, values)
        out.append(_exact_points(readers))
        mp.shutdown()
    assert out[0] == out[1] and out[0][0][2:4] == (2.5, 2)
    assert runs == []
