"""Hand a batch's counter sums and histogram values to the OpenTelemetry SDK without re-cleaning their attributes.

Why: every ``Counter.add`` / ``Histogram.record`` of the OpenTelemetry Python
SDK cleans the attribute values again (``Measurement.__post_init__``) and
hashes them again (``_ViewInstrumentMatch``) before it adds the value to the
same aggregation as last time: 10-15 us for the 5 to 12 attributes of an
inferops series, the largest part of what metrics cost per LLM call.
:meth:`~inferops.processors.recorder.CostRecorder.record_calls` already sums
each batch per series, and the series repeat from batch to batch (the same
team, model, token type...). :class:`SeriesWriter` cleans and hashes a series'
attributes once, remembers which aggregations ``record``/``add`` would reach
for it, and afterwards puts each value straight into them, with the same
exemplar filter and reservoir, the same locks, the same cardinality overflow
and the same view attribute filtering. The export is the same as with one
public call per value (tests/test_sdkbatch.py compares them point by point:
cumulative and delta, views, two readers, overflow, exemplars, readers added
later).

This reaches into SDK internals (``_measurement_consumer``, ``_reader_storages``,
``_ViewInstrumentMatch``), so it is used only when all of them have the
expected shape, checked at import and per series; anything else (another SDK
version, a proxy or no-op instrument, a meter disabled by configuration, a
negative or non-finite value) takes the public path, value by value. It never
raises more than the public path would.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from time import time_ns
from typing import Any, Hashable, Mapping, Sequence

from opentelemetry.context import get_current

try:
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes, _ViewInstrumentMatch
    from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer

    _AVAILABLE = all((
        hasattr(_ViewInstrumentMatch, "_get_or_create_aggregation"),
        hasattr(_Histogram, "_is_enabled") and hasattr(_Counter, "_is_enabled"),
        hasattr(SynchronousMeasurementConsumer, "consume_measurement"),
        not hasattr(Measurement, "__slots__"),  # instances are filled through their __dict__
    ))
    _KINDS: tuple[type, ...] = (_Counter, _Histogram)
except ImportError:  # another SDK layout: the public path only
    _AVAILABLE = False
    _KINDS = ()

try:
    from opentelemetry.sdk.metrics._internal.aggregation import \
        _ExplicitBucketHistogramAggregation as _HISTOGRAM_AGG
    from opentelemetry.sdk.metrics._internal.exemplar import (AlwaysOffExemplarFilter, AlwaysOnExemplarFilter,
                                                              TraceBasedExemplarFilter)

    #: The SDK's exemplar filters, whose answer depends on the measurement's context only.
    _CONTEXT_ONLY_FILTERS: tuple[type, ...] = (TraceBasedExemplarFilter, AlwaysOffExemplarFilter,
                                               AlwaysOnExemplarFilter)
except ImportError:
    _HISTOGRAM_AGG = None
    _CONTEXT_ONLY_FILTERS = ()


def available() -> bool:
    """True when this SDK has the internals the direct path relies on."""
    return _AVAILABLE


class _Plan:
    """One series of one instrument: cleaned attributes and the aggregations it reaches, per view match."""

    __slots__ = ("storages", "cleaned", "should_sample", "targets", "context_only")

    def __init__(self, storages, cleaned, should_sample, targets, context_only: bool = False) -> None:
        self.storages = storages
        self.cleaned = cleaned
        self.should_sample = should_sample
        self.targets = targets
        #: The exemplar filter answers from the context alone, and whole histogram runs may be added at once.
        self.context_only = context_only


def _plan(inst, attributes: Mapping[str, Any]) -> _Plan | None:
    """What a public call would do for this series, or None (use the public call)."""
    if not _AVAILABLE or type(inst) not in _KINDS or not inst._is_enabled():
        return None
    consumer = inst._measurement_consumer
    if type(consumer) is not SynchronousMeasurementConsumer:
        return None
    storages = consumer._reader_storages  # replaced, never mutated, when a reader is added or removed
    cleaned = Measurement(0, 0, inst, None, attributes).attributes  # cleaned exactly as the public call does
    if not isinstance(cleaned, dict):
        return None
    targets = []
    for storage in storages.values():
        for vim in storage._get_or_init_view_instrument_match(inst):
            if type(vim) is not _ViewInstrumentMatch:
                return None
            keys = vim._view._attribute_keys
            filtered = dict(cleaned) if keys is None else {k: v for k, v in cleaned.items() if k in keys}
            targets.append((vim, _hash_attributes(filtered), filtered))
    exemplar_filter = consumer._sdk_config.exemplar_filter
    return _Plan(storages, cleaned, exemplar_filter.should_sample, targets,
                 _RUNS_MATCH_SDK and type(exemplar_filter) in _CONTEXT_ONLY_FILTERS and type(inst) is _Histogram)


def _public(inst):
    add = getattr(inst, "add", None)
    return add if add is not None else inst.record


class SeriesWriter:
    """Writes ``(value, context)`` pairs per series; the same export as the public ``add``/``record`` per pair.

    ``key`` names a series (instrument and attribute set) across calls; the
    caller guarantees that one key always comes with equal attributes. At most
    ``max_series`` plans are kept (all dropped when full: they are cheap to
    rebuild).
    """

    def __init__(self, max_series: int = 20_000) -> None:
        self.max_series = max_series
        self._plans: dict[Hashable, _Plan | None] = {}

    def write(self, inst, key: Hashable, attributes: Mapping[str, Any], values: Sequence[tuple[float, Any]]) -> None:
        plans = self._plans
        plan = plans.get(key, False)
        if plan is not None and (plan is False or plan.storages is not inst._measurement_consumer._reader_storages):
            try:
                plan = _plan(inst, attributes)
            except Exception:
                plan = None
            if len(plans) >= self.max_series:
                plans.clear()
            plans[key] = plan
        if plan is None or not inst._is_enabled():
            public = _public(inst)
            for value, ctx in values:
                public(value, attributes, context=ctx)
            return
        _write(inst, plan, attributes, values)


def _write(inst, plan: _Plan, attributes, values) -> None:
    if plan.context_only and len(values) > 1:
        # Runs of values that share one context (a histogram batch's values that carry no exemplar):
        # the exemplar filter answers once for the run, and an unsampled run of plain explicit-bucket
        # histogram values is added in one pass (see _add_histogram_run).
        i, n = 0, len(values)
        while i < n:
            ctx = values[i][1]
            j = i + 1
            while j < n and values[j][1] is ctx:
                j += 1
            if not (j - i > 1 and _histogram_run(plan, values, i, j)) and not _write_each(inst, plan, attributes,
                                                                                          values[i:j]):
                public = _public(inst)  # the per-value path met something unexpected: the rest goes public
                for v, c in values[j:]:
                    public(v, attributes, context=c)
                return
            i = j
        return
    _write_each(inst, plan, attributes, values)


def _write_each(inst, plan: _Plan, attributes, values) -> bool:
    """One measurement per value, as the public call builds it; False when it had to fall back to the public
    path (which then took this call's remaining values)."""
    cleaned, should_sample, targets = plan.cleaned, plan.should_sample, plan.targets
    new = object.__new__
    for i, (value, ctx) in enumerate(values):
        if not (value >= 0 and math.isfinite(value)):
            _public(inst)(value, attributes, context=ctx)  # the SDK's own warning, no aggregation
            continue
        done = 0
        try:
            ctx = ctx or get_current()
            t = time_ns()
            m = new(Measurement)
            m.__dict__.update(value=value, time_unix_nano=t, instrument=inst, context=ctx, attributes=cleaned)
            sample = should_sample(value, t, cleaned, ctx)
            for vim, key, filtered in targets:
                _into(vim, key, filtered, _aggregate, m, sample)
                done += 1
        except Exception:
            # Not what this module expects: the public path for this value (when nothing took it yet) and the rest.
            public = _public(inst)
            for v, c in (values[i:] if done == 0 else values[i + 1:]):
                public(v, attributes, context=c)
            return False
    return True


def _histogram_run(plan: _Plan, values, i: int, j: int) -> bool:
    """Add ``values[i:j]`` (one shared context) to every target in one pass when that is what ``aggregate``
    would do value by value: finite non-negative values, an exemplar filter whose answer (for this context)
    is no, and only plain explicit-bucket histogram aggregations. True when done; False (nothing changed) when
    the per-value path must take them."""
    run = [v for v, _ in values[i:j]]
    for v in run:
        if not (v >= 0 and math.isfinite(v)):
            return False
    try:
        ctx = values[i][1] or get_current()
        if plan.should_sample(run[0], 0, plan.cleaned, ctx):  # context-only filter: one answer for the run
            return False
        targets = plan.targets
        for vim, key, filtered in targets:  # the aggregation kind is the view's: check before changing any
            with vim._lock:
                if type(vim._get_or_create_aggregation(key, filtered)) is not _HISTOGRAM_AGG:
                    return False
    except Exception:
        return False
    for vim, key, filtered in targets:
        _into(vim, key, filtered, _add_histogram_run, run)
    return True


def _into(vim, key, filtered, apply, *args) -> None:
    """``apply(aggregation, *args)`` on the series' aggregation in one view match, created if new, with the
    SDK's locking: under a delta view's lock throughout (collect() swaps the aggregations out under it)."""
    if vim._reset_on_collect:
        with vim._lock:
            apply(vim._get_or_create_aggregation(key, filtered), *args)
        return
    agg = vim._attributes_aggregation.get(key)
    if agg is None:
        with vim._lock:
            agg = vim._get_or_create_aggregation(key, filtered)
    apply(agg, *args)


def _aggregate(agg, measurement, sample: bool) -> None:
    agg.aggregate(measurement, sample)


def _add_histogram_run(agg, run: list) -> None:
    """What ``_ExplicitBucketHistogramAggregation.aggregate(m, False)`` does for each value of ``run``, in order
    (the sum is accumulated in the same order, so it is the same float), under the aggregation's lock once."""
    with agg._lock:
        if agg._value is None:
            agg._value = agg._get_empty_bucket_counts()
        counts, bounds, total = agg._value, agg._boundaries, agg._sum
        for v in run:
            total += v
            counts[bisect_left(bounds, v)] += 1
        agg._sum = total
        if agg._record_min_max:
            agg._min = min(agg._min, min(run))
            agg._max = max(agg._max, max(run))


def _runs_match_sdk() -> bool:
    """Whether :func:`_add_histogram_run` leaves an aggregation exactly as ``aggregate(m, False)`` per value
    does, in this SDK: checked once, on two private aggregations (both collected, twice), at import."""
    if _HISTOGRAM_AGG is None or not _AVAILABLE:
        return False
    try:
        from opentelemetry.sdk.metrics._internal.aggregation import AggregationTemporality
        from opentelemetry.sdk.metrics._internal.exemplar import AlignedHistogramBucketExemplarReservoir

        def agg():
            return _HISTOGRAM_AGG({"k": "v"}, AggregationTemporality.DELTA, 0, AlignedHistogramBucketExemplarReservoir,
                                  (0.0, 5.0, 10.0), True)
        one, run = agg(), agg()
        points = []
        # Two collections; the second adds 1.0 twice to 1e16, which only the in-order float sum leaves at 1e16.
        for runs in ([[3, 0.5, 7.25], [12, 0, 5, 1e-9]], [[1e16], [1.0, 1.0], [2.5]]):
            for values in runs:
                for v in values:
                    one.aggregate(Measurement(v, 1, None, None, {"k": "v"}), False)
                _add_histogram_run(run, values)
            points.append((one.collect(AggregationTemporality.CUMULATIVE, 2),
                           run.collect(AggregationTemporality.CUMULATIVE, 2)))
        return all(a == b and a is not None for a, b in points)
    except Exception:
        return False


_RUNS_MATCH_SDK = _runs_match_sdk()
