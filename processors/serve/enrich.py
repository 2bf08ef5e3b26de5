"""Price and enrich the GenAI spans of one OTLP export request.

:meth:`Enricher.process` walks a decoded ``ExportTraceServiceRequest``, prices
every span that carries GenAI usage (see :mod:`.extract`) with the shared
:class:`~inferops.processors.engine.CostEngine`, writes the cost attributes the
in-process instrumentation writes, and returns the metric samples to record.
Metrics are recorded only by :meth:`Enricher.commit`, which the server calls
once the request has been *accepted* (queued for forwarding): a request that is
refused (queue full, shutting down) and later retried by the sender is
therefore counted once, not once per attempt.

Rules:

* A span with ``inferops.cost.status`` was priced in process: its attributes are
  left alone.
* A span with ``inferops.metrics_recorded=true`` gets no metrics here (the app
  already counted it); every span this service counts is marked with it, so a
  second ``inferops serve`` further down a pipeline does not count it again.
* ``gen_ai.usage.cost`` from another tool (OpenLIT) is kept, and
  ``inferops.cost.source=span`` says so, unless ``serve_reprice`` is set. The
  per-component figures then come from our catalog scaled to that total (or,
  for a model our catalog lacks, split between input and output by tokens).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from inferops.names import CURRENCY, OVERFLOW_VALUE, Attr, CostSource, CostType, GenAI, PricingStatus

from ..engine import CostEngine, CostResult
from ..recorder import Attribution, CallSample, CostRecorder
from ..usage import UsageRecord
from .extract import (
    TELEMETRY_SDK_NAME,
    USAGE_KEYS,
    VARYING,
    WANTED,
    AttributionResolver,
    SpanShape,
    any_value,
    attributes_of,
    existing_cost_of,
    shape_of,
    ttfc_of,
    usage_of,
)

_STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
_DOUBLE = struct.Struct("<d")
_COST_ATTR = {c: f"{Attr.COST_PREFIX}{c}" for c in CostType.ALL}
#: AnyValue oneof fields read directly (arrays and kvlists go through :func:`any_value`).
_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value"})
#: Bounds of the per-enricher memos (cleared when full: they only save work).
_MEMO_MAX = 4096


@dataclass(slots=True)
class BatchResult:
    """What processing one request found."""

    spans: int = 0
    genai_spans: int = 0
    #: (pricing_status, cost source) -> spans enriched
    priced: Counter = field(default_factory=Counter)
    #: Metric samples of the spans to count, recorded by :meth:`Enricher.commit`.
    calls: list[CallSample] = field(default_factory=list)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_KEY_PREFIX: dict[str, bytes] = {}
_STR_KV: dict[tuple[str, str], bytes] = {}
_DOUBLE_KV: dict[str, bytes] = {}


def _key_prefix(key: str) -> bytes:
    p = _KEY_PREFIX.get(key)
    if p is None:
        kb = key.encode()
        p = b"\x0a" + _varint(len(kb)) + kb
        if len(_KEY_PREFIX) < 4096:
            _KEY_PREFIX[key] = p
    return p


def _encode_attr(key: str, value: Any) -> bytes:
    """One ``Span.attributes`` entry (field 9, a KeyValue) in protobuf wire format.

    Appending these bytes with ``MergeFromString`` adds the attributes in one C
    call instead of building KeyValue objects one field at a time (the
    enrichment's hottest path). String pairs repeat (status, source, catalog
    key, team...) and are cached.
    """
    if isinstance(value, str):
        hit = _STR_KV.get((key, value))
        if hit is not None:
            return hit
        vb = value.encode()
        anyv = b"\x0a" + _varint(len(vb)) + vb
    elif isinstance(value, bool):
        anyv = b"\x10\x01" if value else b"\x10\x00"
    elif isinstance(value, float):
        return _double_prefix(key) + _DOUBLE.pack(value)
    elif isinstance(value, int):
        anyv = b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    else:
        return _encode_attr(key, str(value))
    kv = _key_prefix(key) + b"\x12" + _varint(len(anyv)) + anyv
    out = b"\x4a" + _varint(len(kv)) + kv
    if isinstance(value, str) and len(_STR_KV) < 65536:
        _STR_KV[(key, value)] = out
    return out


def _double_prefix(key: str) -> bytes:
    """Everything of a double-valued attribute entry but its 8 value bytes (the same for every value)."""
    p = _DOUBLE_KV.get(key)
    if p is None:
        kv_len = len(_key_prefix(key)) + 2 + 9  # key, value tag + length, double tag + 8 bytes
        p = b"\x4a" + _varint(kv_len) + _key_prefix(key) + b"\x12\x09\x21"
        if len(_DOUBLE_KV) < 4096:
            _DOUBLE_KV[key] = p
    return p


_METRICS_RECORDED_KV = _encode_attr(Attr.METRICS_RECORDED, True)
_UNATTRIBUTED_KV = _encode_attr(Attr.UNATTRIBUTED, True)
_USAGE_COST_KV = _double_prefix(GenAI.USAGE_COST)
_COST_TOTAL_KV = _double_prefix(Attr.COST_TOTAL)
_COST_COMPONENT_KV = {c: _double_prefix(k) for c, k in _COST_ATTR.items()}


def _remove(span, key: str) -> None:
    attrs = span.attributes
    for i in range(len(attrs) - 1, -1, -1):
        if attrs[i].key == key:
            del attrs[i]


class _Plan:
    """What spans of one shape have in common, worked out once (see :class:`.extract.SpanShape`)."""

    __slots__ = ("shape", "who", "attribution_kv", "metrics_recorded", "priced_in_process", "semconv",
                 "blocks", "group")

    def __init__(self, shape: SpanShape, who: Attribution, attribution_attrs: dict[str, str],
                 metrics_recorded: bool, priced_in_process: bool):
        self.shape = shape
        self.who = who
        #: The attribution attributes to add, pre-encoded.
        self.attribution_kv = b"".join(_encode_attr(k, v) for k, v in attribution_attrs.items()) + \
            (_UNATTRIBUTED_KV if who.unattributed else b"")
        self.metrics_recorded = metrics_recorded
        self.priced_in_process = priced_in_process
        sem = {GenAI.OPERATION_NAME: shape.operation, GenAI.PROVIDER_NAME: shape.provider}
        if shape.request_model:
            sem[GenAI.REQUEST_MODEL] = shape.request_model
        if shape.response_model:
            sem[GenAI.RESPONSE_MODEL] = shape.response_model
        if shape.server_address:
            sem[GenAI.SERVER_ADDRESS] = shape.server_address
        if shape.error_type:
            sem[GenAI.ERROR_TYPE] = shape.error_type
        #: GenAI semconv attributes of the semconv histograms (guarded on commit).
        self.semconv = sem
        #: (status, source, catalog key, catalog version, tier, has total) -> the string attributes, encoded.
        self.blocks: dict[tuple, bytes] = {}
        #: The plan's :class:`~inferops.processors.recorder.CallGroup` (compiled fast path), made on first use.
        self.group = None


class Enricher:
    """Prices spans of export requests; thread-safe (the engine and recorder are; memos only grow or clear).

    The per-span work is kept to what differs between spans: one pass over the
    span's attributes keeps only the keys that matter (:data:`.extract.WANTED`),
    everything derived from the span's *shape* (provider, model, attribution,
    label values, encoded string attributes) is memoised per distinct shape, and
    the new attributes are appended as pre-encoded protobuf bytes in one C call.
    """

    def __init__(self, engine: CostEngine, recorder: CostRecorder | None, attribution: AttributionResolver,
                 *, reprice: bool = False):
        self.engine = engine
        self.recorder = recorder
        self.attribution = attribution
        self.reprice = reprice
        #: wanted key -> True when it describes the shape, False when it varies per call.
        self._kinds: dict[str, bool] = {k: k not in VARYING for k in WANTED | attribution.span_keys}
        self._plans: dict[tuple, _Plan] = {}
        self._semconv_guarded: dict[tuple, dict[str, str]] = {}

    # -- processing ---------------------------------------------------------------------

    def process(self, req: ExportTraceServiceRequest) -> BatchResult:
        result = BatchResult()
        kinds = self._kinds
        usage_keys = USAGE_KEYS
        scalars = _SCALARS
        plans = self._plans
        n = 0
        for rs in req.resource_spans:
            res_attrs = attributes_of(rs.resource.attributes)
            defaults = self.attribution.resource_defaults(res_attrs)
            dkey = tuple(defaults.items())
            openlit_resource = str(res_attrs.get(TELEMETRY_SDK_NAME, "")).lower() == "openlit"
            for ss in rs.scope_spans:
                is_openlit = openlit_resource or ss.scope.name.lower().startswith("openlit")
                for span in ss.spans:
                    n += 1
                    attrs = {}
                    shape_items = [dkey, is_openlit]
                    usage = False
                    for kv in span.attributes:
                        k = kv.key
                        kind = kinds.get(k)
                        if kind is None:
                            continue
                        v = kv.value
                        which = v.WhichOneof("value")
                        value = getattr(v, which) if which in scalars else any_value(v)
                        attrs[k] = value
                        if kind:
                            shape_items.append(k)
                            shape_items.append(value)
                            if value.__class__ is not str:  # True == 1 == 1.0 as keys: keep them apart
                                shape_items.append(value.__class__)
                        elif k in usage_keys:
                            usage = True
                    if not usage:
                        continue
                    result.genai_spans += 1
                    status_error = span.status.code == _STATUS_ERROR
                    shape_items.append(status_error)
                    key = tuple(shape_items)
                    plan = plans.get(key)
                    if plan is None:
                        plan = self._plan(attrs, defaults, is_openlit, status_error)
                        if len(plans) >= _MEMO_MAX:
                            plans.clear()
                        plans[key] = plan
                    self._span(span, attrs, plan, result)
        result.spans = n
        return result

    def _plan(self, attrs: dict, defaults: dict, is_openlit: bool, status_error: bool) -> _Plan:
        shape = shape_of(attrs, is_openlit=is_openlit, status_error=status_error)
        mr = attrs.get(Attr.METRICS_RECORDED)
        metrics_recorded = mr is True or str(mr if mr is not None else "").lower() == "true"
        who, attribution_attrs = self.attribution.resolve(attrs, defaults)
        return _Plan(shape, who, attribution_attrs, metrics_recorded, Attr.COST_STATUS in attrs)

    def _span(self, span, attrs: dict, plan: _Plan, result: BatchResult) -> None:
        end_ns = span.end_time_unix_nano
        usage = usage_of(plan.shape, attrs, timestamp=end_ns / 1e9 if end_ns else None)
        if usage is None:
            return
        if plan.priced_in_process:  # priced in process: attributes stay as they are
            if plan.metrics_recorded:
                return
            cost = _cost_from_attrs(attrs)
            extra = b""
        else:
            cost, source, extra = self._price(span, usage, attrs, plan)
            result.priced[(cost.status, source)] += 1
        if plan.metrics_recorded:
            if extra:
                span.MergeFromString(extra)
            return
        span.MergeFromString(extra + _METRICS_RECORDED_KV)
        if self.recorder is None:
            return
        start_ns = span.start_time_unix_nano
        tid = span.trace_id
        sid = span.span_id
        shape = plan.shape
        result.calls.append(CallSample(
            usage, cost, plan.who, shape.provider, shape.model, shape.operation, shape.outcome, shape.stream,
            plan.semconv,
            (end_ns - start_ns) / 1e9 if end_ns and start_ns and end_ns >= start_ns else None,
            ttfc_of(attrs),
            int.from_bytes(tid, "big") if len(tid) == 16 else 0,
            int.from_bytes(sid, "big") if len(sid) == 8 else 0))

    def _price(self, span, usage, attrs: dict, plan: _Plan) -> tuple[CostResult, str, bytes]:
        """Price the span; (cost, cost source, the encoded attributes to add)."""
        cost = self.engine.price(usage)
        source = CostSource.INFEROPS
        existing = existing_cost_of(attrs)
        kept = existing is not None and not self.reprice
        if kept:
            cost = _keep_span_cost(cost, usage, existing)
            source = CostSource.SPAN
        elif existing is not None:
            _remove(span, GenAI.USAGE_COST)
        pack = _DOUBLE.pack
        parts = []
        total = cost.total
        if total is not None:
            t = pack(float(total))
            if not kept:
                parts.append(_USAGE_COST_KV + t)
            parts.append(_COST_TOTAL_KV + t)
            for ctype, usd in cost.components.items():
                if usd:
                    parts.append(_COST_COMPONENT_KV[ctype] + pack(float(usd)))
        bkey = (cost.status, source, cost.catalog_key, cost.catalog_version, cost.service_tier, total is not None)
        block = plan.blocks.get(bkey)
        if block is None:
            block = self._block(cost, source, plan)
            if len(plan.blocks) < 64:
                plan.blocks[bkey] = block
        parts.append(block)
        return cost, source, b"".join(parts)

    def _block(self, cost: CostResult, source: str, plan: _Plan) -> bytes:
        """The string attributes of a priced span (the same for every span of a shape and price)."""
        enc = _encode_attr
        parts = []
        if cost.total is not None:
            parts.append(enc(Attr.COST_CURRENCY, CURRENCY))
        parts.append(enc(Attr.COST_STATUS, cost.status))
        parts.append(enc(Attr.COST_SOURCE, source))
        parts.append(enc(Attr.USAGE_SOURCE, plan.shape.usage_source))
        if cost.catalog_key:
            parts.append(enc(Attr.CATALOG_KEY, cost.catalog_key))
        parts.append(enc(Attr.CATALOG_VERSION, cost.catalog_version or self.engine.version))
        if cost.service_tier and cost.service_tier != "standard":
            parts.append(enc(Attr.SERVICE_TIER, cost.service_tier))
        parts.append(plan.attribution_kv)
        return b"".join(parts)

    # -- metrics ------------------------------------------------------------------------

    def commit(self, result: BatchResult) -> None:
        """Record the metric samples of an accepted request (one batch through the recorder)."""
        rec = self.recorder
        if rec is None or not result.calls:
            return
        guard = rec.guard
        memo = self._semconv_guarded
        batch: dict[int, dict[str, str]] = {}  # id(plan.semconv) -> guarded (plans outlive the batch)
        for c in result.calls:
            raw = c.semconv_attributes
            sem = batch.get(id(raw))
            if sem is None:
                key = tuple(raw.items())
                sem = memo.get(key)
                if sem is None:
                    sem = {k: guard(k, v) for k, v in raw.items()}
                    if OVERFLOW_VALUE in sem.values():  # overflowing values are guarded (counted) each time
                        c.semconv_attributes = sem
                        continue
                    if len(memo) >= _MEMO_MAX:
                        memo.clear()
                    memo[key] = sem
                batch[id(raw)] = sem
            c.semconv_attributes = sem
        rec.record_calls(result.calls)


def _keep_span_cost(ours: CostResult, usage: UsageRecord, existing: float) -> CostResult:
    """The span's own total, broken down like our catalog would (or by tokens if we cannot price it)."""
    total = float(existing)
    if ours.total:
        factor = total / ours.total
        components = {k: v * factor for k, v in ours.components.items()}
    else:
        buckets = usage.token_buckets()
        tin = buckets["input"] + buckets["cache_read"] + buckets["cache_write"]
        tout = buckets["output"] + buckets["reasoning"]
        n = tin + tout
        components = {CostType.INPUT: total * tin / n, CostType.OUTPUT: total * tout / n} if n else \
            {CostType.REQUEST: total}
    status = ours.status if ours.status != PricingStatus.UNPRICED else PricingStatus.PRICED
    return CostResult(status, total, components, ours.catalog_key, ours.catalog_version, ours.priced_provider,
                      ours.priced_model, ours.service_tier, ours.context_tier_above, ours.discount_percent,
                      ours.self_hosted, ours.notes + ("cost kept from the span",))


def _cost_from_attrs(attrs: dict) -> CostResult:
    """The cost an in-process instrumentation wrote on the span (for spans whose metrics were not recorded)."""
    status = str(attrs.get(Attr.COST_STATUS))
    total = attrs.get(Attr.COST_TOTAL)
    components = {}
    for ctype, key in _COST_ATTR.items():
        v = attrs.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            components[ctype] = float(v)
    if not isinstance(total, (int, float)) or isinstance(total, bool):
        total = sum(components.values()) if components else None
    return CostResult(status, total, components)
