"""Record many values of one histogram series at once, for the batched call metrics.

Why: every ``Histogram.record`` of the OpenTelemetry Python SDK cleans the
attribute values again (``Measurement.__post_init__``) and hashes them again
(``_ViewInstrumentMatch``) before it adds the value to the same aggregation as
the last call with those attributes: about 10 us for the 5 to 6 semconv
attributes of a ``gen_ai.client.*`` observation, three or four observations per
LLM call. :meth:`~inferops.processors.recorder.CostRecorder.record_calls`
already groups a batch's observations by series; here a series is cleaned and
hashed once and each value goes straight into the aggregations that ``record``
would have found for it, with the same exemplar filter and reservoir, the same
locks, the same cardinality overflow and the same view attribute filtering. The
exported histograms are the same as with one ``record`` per value
(tests/test_histbatch.py compares them point by point, cumulative and delta,
with views, two readers, overflow and exemplars).

This reaches into SDK internals (``_measurement_consumer``, ``_reader_storages``,
``_ViewInstrumentMatch``), so it is only used when every one of them has the
expected shape, checked at import and per instrument; anything else (another
SDK version, a proxy or no-op instrument, a meter disabled by configuration,
a negative or non-finite value) takes the public ``record`` path, value by
value. It never raises.
"""

from __future__ import annotations

import math
from time import time_ns
from typing import Any, Mapping, Sequence

try:
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes, _ViewInstrumentMatch

    _AVAILABLE = all((
        hasattr(_ViewInstrumentMatch, "_get_or_create_aggregation"),
        hasattr(_Histogram, "_is_enabled"),
        hasattr(SynchronousMeasurementConsumer, "consume_measurement"),
        not hasattr(Measurement, "__slots__"),  # instances are filled through their __dict__
    ))
except ImportError:  # another SDK layout: the public path only
    _AVAILABLE = False


def available() -> bool:
    """True when this SDK has the internals the bulk path relies on."""
    return _AVAILABLE


def _targets(inst, attributes: Mapping[str, Any]) -> tuple[Any, Any, list] | None:
    """(cleaned attributes, exemplar filter, [(view match, key, filtered attributes)]), or None: use ``record``."""
    if not _AVAILABLE or type(inst) is not _Histogram or not inst._is_enabled():
        return None
    consumer = inst._measurement_consumer
    if type(consumer) is not SynchronousMeasurementConsumer:
        return None
    storages = consumer._reader_storages
    exemplar_filter = consumer._sdk_config.exemplar_filter
    # Cleaning exactly as record() does: through a Measurement.
    cleaned = Measurement(0, 0, inst, None, attributes).attributes  # type: ignore[arg-type]
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
    return cleaned, exemplar_filter.should_sample, targets


def record_series(inst, attributes: Mapping[str, Any], values: Sequence[tuple[float, Any]]) -> None:
    """Record ``(value, context)`` pairs of one histogram series; the same result as ``inst.record`` per pair."""
    plan = None
    if len(values) > 1:
        try:
            plan = _targets(inst, attributes)
        except Exception:
            plan = None
    if plan is None:
        for value, ctx in values:
            inst.record(value, attributes, context=ctx)
        return
    cleaned, should_sample, targets = plan
    new = object.__new__
    for i, (value, ctx) in enumerate(values):
        if not (value >= 0 and math.isfinite(value)):
            inst.record(value, attributes, context=ctx)  # the SDK's own warning, no aggregation
            continue
        done = 0
        try:
            t = time_ns()
            m = new(Measurement)
            m.__dict__.update(value=value, time_unix_nano=t, instrument=inst, context=ctx, attributes=cleaned)
            sample = should_sample(value, t, cleaned, ctx)
            for vim, key, filtered in targets:
                if vim._reset_on_collect:
                    # Delta: collect() swaps the aggregations out under this lock; aggregate under it too.
                    with vim._lock:
                        vim._get_or_create_aggregation(key, filtered).aggregate(m, sample)
                else:
                    agg = vim._attributes_aggregation.get(key)
                    if agg is None:
                        with vim._lock:
                            agg = vim._get_or_create_aggregation(key, filtered)
                    agg.aggregate(m, sample)
                done += 1
        except Exception:
            # Not what this module expects: the public path for this value (when nothing took it yet) and the rest.
            rest = values[i:] if done == 0 else values[i + 1:]
            for v, c in rest:
                inst.record(v, attributes, context=c)
            return
