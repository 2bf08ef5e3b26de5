"""The compiled fast path of ``inferops serve``: price and enrich protobuf requests on their bytes.

:mod:`._otlpscan` (C, optional: built by ``pip install`` when a compiler is
there) walks an ``ExportTraceServiceRequest`` without building protobuf
objects, picks out the attributes :mod:`.extract` reads, and per span

* looks up the span's **plan** by its *shape key* (the raw bytes of its
  non-varying wanted attributes, its resource, the OpenLIT scope flag and its
  error status); a new shape calls :meth:`FastPath._plan` once, which builds the
  same :class:`.enrich._Plan` as the Python path plus the pricing data of the
  entry (price sets per long-context threshold, discount, encoded attribute
  blocks);
* prices the span with the arithmetic of :meth:`CostEngine._compute` (same
  operations in the same order, so the doubles are bit-identical), keeps an
  existing ``gen_ai.usage.cost`` like :func:`.enrich._keep_span_cost`, and
  appends the same attributes as :class:`.enrich.Enricher`, in the same order;
* drops invalid spans like :func:`.server._drop_invalid_spans` and rewrites the
  enclosing length prefixes.

What the C code does not price itself goes through the Python reference code:
shapes whose price or discount depends on the call's time, spans priced in
process, string token counts... (:meth:`FastPath._slow`, per span, on that
span's bytes). Malformed or unusual requests make :meth:`FastPath.process`
raise ``ValueError``; the server then runs the Python path on the request,
which answers exactly as before (400 with protobuf's message, or success).

Metrics: the C code keeps one compact sample per counted span; :meth:`commit`
hands them to :meth:`CostRecorder.record_groups`, which sums them per series in
span order in C (same totals and exemplars as :meth:`CostRecorder.record_calls`).
The GenAI semconv histograms need per-span values: with
``serve_semconv_metrics`` on, the service uses the Python path.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from inferops.names import OVERFLOW_VALUE, CostSource, CostType, GenAI, PricingStatus

from ..engine import CostResult, _in_force
from ..recorder import CallGroup
from .enrich import (
    _COST_COMPONENT_KV,
    _COST_TOTAL_KV,
    _MEMO_MAX,
    _METRICS_RECORDED_KV,
    _USAGE_COST_KV,
    BatchResult,
    Enricher,
    _Plan,
)
from .extract import (
    CACHE_READ_KEYS,
    CACHE_WRITE_KEYS,
    INPUT_KEYS,
    OUTPUT_KEYS,
    REASONING_KEYS,
    TELEMETRY_SDK_NAME,
    VARYING,
    WANTED,
    any_value,
    attributes_of,
)

try:  # the optional C extension
    from . import _otlpscan
except ImportError:  # pragma: no cover - exercised on installs without a compiler
    _otlpscan = None

#: Key codes understood by the scanner (see ``_otlpscan.c``).
_SHAPE, _IGNORE = 1, 2
_TOKEN_CODES = {k: 3 + i for i, k in enumerate((*INPUT_KEYS, *OUTPUT_KEYS, *CACHE_READ_KEYS, *CACHE_WRITE_KEYS,
                                                 *REASONING_KEYS, GenAI.USAGE_COST))}
_STATUSES = (PricingStatus.PRICED, PricingStatus.PARTIAL, PricingStatus.UNPRICED)
_STATUS_IDX = {s: i for i, s in enumerate(_STATUSES)}
_SOURCES = (CostSource.INFEROPS, CostSource.SPAN)
_SOURCE_IDX = {s: i for i, s in enumerate(_SOURCES)}
_MODE_SKIP, _MODE_FAST, _MODE_SLOW = 0, 1, 2
_NO_PRICING = (0.0, (), (), ())


def available() -> bool:
    """True when the compiled scanner is importable (and the machine little-endian, as it assumes)."""
    return _otlpscan is not None and sys.byteorder == "little"


def why_not(enricher: Enricher, semconv_metrics: bool) -> str | None:
    """Why the fast path cannot serve this configuration (``None`` when it can)."""
    if not available():
        return "the compiled extension inferops.processors.serve._otlpscan is not installed"
    if semconv_metrics or (enricher.recorder is not None and enricher.recorder.semconv_histograms):
        return "serve_semconv_metrics needs per-span values"
    if enricher.attribution.span_keys & VARYING:
        return "a baggage key is also a token/cost attribute"
    return None


@dataclass(slots=True)
class FastResult:
    """What the fast path made of one request (the counterpart of :class:`.enrich.BatchResult`)."""

    data: bytes
    spans: int
    genai_spans: int
    rejected: int
    priced: Counter = field(default_factory=Counter)
    groups: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    samples: Any = None


class FastPath:
    """The compiled path for one :class:`Enricher` (its engine, recorder, resolver and reprice setting)."""

    def __init__(self, enricher: Enricher):
        if not available():
            raise RuntimeError("the compiled extension inferops.processors.serve._otlpscan is not installed")
        self.enricher = enricher
        keys: dict[bytes, int] = {}
        for k in WANTED | enricher.attribution.span_keys:
            code = _TOKEN_CODES.get(k)
            if code is None:
                code = _IGNORE if k in VARYING else _SHAPE
            keys[k.encode()] = code
        comps = tuple(_COST_COMPONENT_KV[c] for c in CostType.ALL)
        self.scanner = _otlpscan.Scanner(keys, self._resource, self._plan, self._slow, enricher.reprice,
                                         _METRICS_RECORDED_KV, _USAGE_COST_KV, _COST_TOTAL_KV, comps)
        self._resources: dict[tuple, int] = {}
        self._next_resource = 1

    # -- per request -------------------------------------------------------------------

    def process(self, body: bytes) -> FastResult:
        """Price and enrich a protobuf request; ``ValueError`` when the Python path must decide."""
        data, spans, genai, rejected, priced, groups, counts, samples = self.scanner.scan(body)
        return FastResult(data, spans, genai, rejected,
                          Counter({(_STATUSES[i // 2], _SOURCES[i % 2]): n for i, n in priced}),
                          groups, counts, samples)

    def commit(self, result: FastResult) -> None:
        """Record the metrics of an accepted request (what :meth:`Enricher.commit` does)."""
        rec = self.enricher.recorder
        if rec is None or not result.groups:
            return
        # Enricher.commit guards each call's semconv attributes (even with the histograms off, they
        # count label overflows): the same guard calls, per plan, as many times as it would make them.
        guard = rec.guard
        memo = self.enricher._semconv_guarded
        for plan, n in zip(result.groups, result.counts):
            raw = plan.semconv
            key = tuple(raw.items())
            if key in memo:
                continue
            for _ in range(n):
                sem = {k: guard(k, v) for k, v in raw.items()}
                if OVERFLOW_VALUE not in sem.values():
                    if len(memo) >= _MEMO_MAX:
                        memo.clear()
                    memo[key] = sem
                    break
        rec.record_groups([_group(p) for p in result.groups], result.samples.aggregate)

    # -- callbacks from the scanner -----------------------------------------------------

    def _resource(self, raw: bytes) -> tuple[int, dict[str, str], bool]:
        res = Resource.FromString(raw)
        res_attrs = attributes_of(res.attributes)
        defaults = self.enricher.attribution.resource_defaults(res_attrs)
        openlit = str(res_attrs.get(TELEMETRY_SDK_NAME, "")).lower() == "openlit"
        key = (tuple(defaults.items()), openlit)
        rid = self._resources.get(key)
        if rid is None:  # ids are never reused: a plan key naming an old id is simply never met again
            if len(self._resources) >= _MEMO_MAX:
                self._resources.clear()
            rid = self._resources[key] = self._next_resource
            self._next_resource += 1
        return rid, defaults, openlit

    def _plan(self, defaults: dict[str, str], is_openlit: int, status_error: int, shape_bytes: bytes) -> tuple:
        enricher = self.enricher
        attrs = {kv.key: any_value(kv.value) for kv in Span.FromString(shape_bytes).attributes}
        plan = enricher._plan(attrs, defaults, bool(is_openlit), bool(status_error))
        if plan.priced_in_process:
            return (plan, _MODE_SKIP if plan.metrics_recorded else _MODE_SLOW, plan.metrics_recorded, False, False,
                    *_NO_PRICING)
        shape = plan.shape
        engine = enricher.engine
        entry = engine.resolve(shape.provider, shape.model).entry
        tier = shape.service_tier or "standard"
        slow = (plan, _MODE_SLOW, plan.metrics_recorded, shape.cache_exclusive, False, *_NO_PRICING)
        thresholds: tuple = ()
        sets: tuple = ()
        discount = 0.0
        if entry is not None:
            if engine._history and entry.key in engine._history:
                return slow  # dated prices: the price depends on the call's time
            if engine._discounts:
                histories = engine._build_discount_plan(entry, shape.provider, shape.model)
                if any(since != float("-inf") for h in histories for since, _ in h):
                    return slow  # dated discounts
                for h in histories:
                    pct = _in_force(h, 0.0)
                    if pct is not None:
                        discount = pct
                        break
                if not isinstance(discount, float):
                    return slow
            thresholds = tuple(t for t, _ in entry.tiers)
            for above in (None, *thresholds):
                ps = engine.price_set(entry, tier, above)
                values = (ps.input, ps.output, ps.cache_read, ps.cache_write_5m, ps.cache_write_1h, ps.reasoning,
                          ps.per_request)
                if any(v is not None and type(v) is not float for v in values):
                    return slow  # an int price would make int costs: leave that to Python
                sets += (values,)
            if len(thresholds) > 8 or any(type(t) is not int for t in thresholds):
                return slow
        blocks = []
        for status in _STATUSES:
            for source in _SOURCES:
                for has_total in (False, True):
                    cost = CostResult(status, 0.0 if has_total else None,
                                      catalog_key=entry.key if entry is not None else "",
                                      catalog_version=engine.version,
                                      service_tier=tier if entry is not None else shape.service_tier)
                    blocks.append(enricher._block(cost, source, plan))
        return (plan, _MODE_FAST, plan.metrics_recorded, shape.cache_exclusive, entry is not None, discount,
                thresholds, sets, tuple(blocks))

    def _slow(self, plan: _Plan, span_bytes: bytes) -> tuple[bytes, tuple | None, int]:
        """One span through the Python reference code; (new span bytes, metric sample, priced index)."""
        enricher = self.enricher
        span = Span.FromString(span_bytes)
        kinds = enricher._kinds
        attrs = {kv.key: any_value(kv.value) for kv in span.attributes if kv.key in kinds}
        res = BatchResult()
        enricher._span(span, attrs, plan, res)
        pidx = -1
        for (status, source) in res.priced:
            if status not in _STATUS_IDX or source not in _SOURCE_IDX:
                raise _otlpscan.Decline(f"unexpected pricing status {status!r}")
            pidx = _STATUS_IDX[status] * 2 + _SOURCE_IDX[source]
        sample = None
        if res.calls:
            c = res.calls[0]
            cost, usage = c.cost, c.usage
            st = _STATUS_IDX.get(cost.status)
            comps = tuple(cost.components.get(t, 0.0) for t in CostType.ALL)
            if st is None or any(type(v) is not float for v in comps) or \
                    (cost.total is not None and type(cost.total) is not float):
                raise _otlpscan.Decline("a sample the compiled aggregation cannot hold")
            sample = (st, tuple(usage.token_buckets().values()), comps, cost.total, float(cost.cache_read_savings))
        return span.SerializeToString(), sample, pidx


def _group(plan: _Plan) -> CallGroup:
    g = plan.group
    if g is None:
        s = plan.shape
        g = plan.group = CallGroup(plan.who, s.provider, s.model, s.operation, s.outcome, s.stream, s.usage_source)
    return g


__all__ = ["FastPath", "FastResult", "available", "why_not"]
