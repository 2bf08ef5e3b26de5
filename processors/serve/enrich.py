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

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from inferops.names import CURRENCY, Attr, CostSource, CostType, GenAI, PricingStatus

from ..engine import CostEngine, CostResult
from ..recorder import Attribution, CostRecorder
from ..usage import UsageRecord
from .extract import (
    TELEMETRY_SDK_NAME,
    WANTED,
    AttributionResolver,
    SpanUsage,
    any_value,
    attributes_of,
    extract,
    has_usage,
)

_STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
_DOUBLE = struct.Struct("<d")
_COST_ATTR = {c: f"{Attr.COST_PREFIX}{c}" for c in CostType.ALL}


@dataclass(slots=True)
class MetricCall:
    """One span's metric samples, recorded on commit."""

    usage: UsageRecord
    cost: CostResult | None
    who: Attribution
    provider: str
    model: str
    operation: str
    outcome: str
    stream: bool
    semconv: dict[str, str]
    duration_s: float | None
    ttfc_s: float | None
    span_context: trace.SpanContext | None


@dataclass(slots=True)
class BatchResult:
    """What processing one request found."""

    spans: int = 0
    genai_spans: int = 0
    #: (pricing_status, cost source) -> spans enriched
    priced: Counter = field(default_factory=Counter)
    calls: list[MetricCall] = field(default_factory=list)


def _span_context(span) -> trace.SpanContext | None:
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        return None
    ctx = trace.SpanContext(int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big"),
                            is_remote=True, trace_flags=_SAMPLED)
    return ctx if ctx.is_valid else None


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
        anyv = b"\x21" + _DOUBLE.pack(value)
    elif isinstance(value, int):
        anyv = b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    else:
        return _encode_attr(key, str(value))
    kv = _key_prefix(key) + b"\x12" + _varint(len(anyv)) + anyv
    out = b"\x4a" + _varint(len(kv)) + kv
    if isinstance(value, str) and len(_STR_KV) < 65536:
        _STR_KV[(key, value)] = out
    return out


def _add(span, key: str, value: Any) -> None:
    span.MergeFromString(_encode_attr(key, value))


def _remove(span, key: str) -> None:
    attrs = span.attributes
    for i in range(len(attrs) - 1, -1, -1):
        if attrs[i].key == key:
            del attrs[i]


class Enricher:
    """Prices spans of export requests; thread-safe (the engine and recorder are)."""

    def __init__(self, engine: CostEngine, recorder: CostRecorder | None, attribution: AttributionResolver,
                 *, reprice: bool = False):
        self.engine = engine
        self.recorder = recorder
        self.attribution = attribution
        self.reprice = reprice
        self._wanted = WANTED | attribution.span_keys

    # -- processing ---------------------------------------------------------------------

    def process(self, req: ExportTraceServiceRequest) -> BatchResult:
        result = BatchResult()
        wanted = self._wanted
        for rs in req.resource_spans:
            res_attrs = attributes_of(rs.resource.attributes)
            defaults = self.attribution.resource_defaults(res_attrs)
            openlit_resource = str(res_attrs.get(TELEMETRY_SDK_NAME, "")).lower() == "openlit"
            for ss in rs.scope_spans:
                is_openlit = openlit_resource or ss.scope.name.lower().startswith("openlit")
                for span in ss.spans:
                    result.spans += 1
                    attrs = {}
                    for kv in span.attributes:
                        k = kv.key
                        if k in wanted:
                            attrs[k] = any_value(kv.value)
                    if not has_usage(attrs):
                        continue
                    result.genai_spans += 1
                    self._span(span, attrs, defaults, is_openlit, result)
        return result

    def _span(self, span, attrs: dict, defaults: dict, is_openlit: bool, result: BatchResult) -> None:
        end_ns = span.end_time_unix_nano
        su = extract(attrs, timestamp=end_ns / 1e9 if end_ns else None, is_openlit=is_openlit,
                     status_error=span.status.code == _STATUS_ERROR)
        if su is None:
            return
        metrics_recorded = attrs.get(Attr.METRICS_RECORDED) is True or \
            str(attrs.get(Attr.METRICS_RECORDED, "")).lower() == "true"
        who, attribution_attrs = self.attribution.resolve(attrs, defaults)
        if Attr.COST_STATUS in attrs:  # priced in process: attributes stay as they are
            if metrics_recorded:
                return
            cost = _cost_from_attrs(attrs)
        else:
            cost, source = self._price(span, su, attribution_attrs, who)
            result.priced[(cost.status, source)] += 1
        if metrics_recorded:
            return
        _add(span, Attr.METRICS_RECORDED, True)
        if self.recorder is None:
            return
        start_ns = span.start_time_unix_nano
        sem = {GenAI.OPERATION_NAME: su.operation, GenAI.PROVIDER_NAME: su.provider}
        if su.request_model:
            sem[GenAI.REQUEST_MODEL] = su.request_model
        if su.response_model:
            sem[GenAI.RESPONSE_MODEL] = su.response_model
        if su.server_address:
            sem[GenAI.SERVER_ADDRESS] = su.server_address
        if su.error_type:
            sem[GenAI.ERROR_TYPE] = su.error_type
        model = su.model
        result.calls.append(MetricCall(
            su.usage, cost, who, su.provider, model, su.operation, su.outcome, su.stream, sem,
            (end_ns - start_ns) / 1e9 if end_ns and start_ns and end_ns >= start_ns else None,
            su.ttfc_s, _span_context(span)))

    def _price(self, span, su: SpanUsage, attribution_attrs: dict,
               who: Attribution) -> tuple[CostResult, str]:
        cost = self.engine.price(su.usage)
        source = CostSource.INFEROPS
        kept = su.existing_cost is not None and not self.reprice
        if kept:
            cost = _keep_span_cost(cost, su)
            source = CostSource.SPAN
        elif su.existing_cost is not None:
            _remove(span, GenAI.USAGE_COST)
        enc = _encode_attr
        parts = []
        if cost.total is not None:
            if not kept:
                parts.append(enc(GenAI.USAGE_COST, float(cost.total)))
            parts.append(enc(Attr.COST_TOTAL, float(cost.total)))
            for ctype, usd in cost.components.items():
                if usd:
                    parts.append(enc(_COST_ATTR[ctype], float(usd)))
            parts.append(enc(Attr.COST_CURRENCY, CURRENCY))
        parts.append(enc(Attr.COST_STATUS, cost.status))
        parts.append(enc(Attr.COST_SOURCE, source))
        parts.append(enc(Attr.USAGE_SOURCE, su.usage.usage_source))
        if cost.catalog_key:
            parts.append(enc(Attr.CATALOG_KEY, cost.catalog_key))
        parts.append(enc(Attr.CATALOG_VERSION, cost.catalog_version or self.engine.version))
        if cost.service_tier and cost.service_tier != "standard":
            parts.append(enc(Attr.SERVICE_TIER, cost.service_tier))
        for key, value in attribution_attrs.items():
            parts.append(enc(key, value))
        if who.unattributed:
            parts.append(enc(Attr.UNATTRIBUTED, True))
        span.MergeFromString(b"".join(parts))
        return cost, source

    # -- metrics ------------------------------------------------------------------------

    def commit(self, result: BatchResult) -> None:
        """Record the metric samples of an accepted request."""
        rec = self.recorder
        if rec is None:
            return
        guard = rec.guard
        for c in result.calls:
            sem = {k: guard(k, v) for k, v in c.semconv.items()}
            rec.record_call(c.usage, c.cost, c.who, provider=c.provider, model=c.model, operation=c.operation,
                            outcome=c.outcome, stream=c.stream, semconv_attributes=sem,
                            duration_s=c.duration_s, time_to_first_chunk_s=c.ttfc_s,
                            span_context=c.span_context)


def _keep_span_cost(ours: CostResult, su: SpanUsage) -> CostResult:
    """The span's own total, broken down like our catalog would (or by tokens if we cannot price it)."""
    total = float(su.existing_cost or 0.0)
    if ours.total:
        factor = total / ours.total
        components = {k: v * factor for k, v in ours.components.items()}
    else:
        buckets = su.usage.token_buckets()
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
