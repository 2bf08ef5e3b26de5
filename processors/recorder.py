"""Priced cost -> OpenTelemetry metrics, shared by the instrumentation and ``inferops serve``.

One :class:`CostRecorder` per meter provider creates the instruments of the
names contract (:class:`inferops.names.Metrics`) and records one call at a
time. Both the in-process instrumentation and the OTLP service go through
:meth:`CostRecorder.record_call`, so the two paths can never disagree on a
metric name, a label or the arithmetic of the token buckets.

Exemplars: the OTel SDK attaches the current span's trace and span id to a
measurement (``OTEL_METRICS_EXEMPLAR_FILTER=trace_based``, the default, needs
a sampled span in the current context). The instrumentation records inside
the call's span; ``inferops serve`` passes ``span_context`` of the span it
priced, and the recorder makes it current while recording.

Cardinality: every label value goes through a :class:`LabelGuard`: at most
``cap`` distinct values per label, after which values become ``__overflow__``
and ``inferops_label_overflows_total{label=...}`` counts the samples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Meter

from inferops.names import (
    ATTRIBUTION_LABELS,
    OVERFLOW_VALUE,
    UNATTRIBUTED,
    UNKNOWN_MODEL,
    Label,
    Metric,
    Metrics,
    Outcome,
    PricingStatus,
)

from .engine import CostResult
from .usage import UsageRecord


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who spent it. Empty strings mean "not known"."""

    team: str = ""
    project: str = ""
    feature: str = ""
    user: str = ""
    environment: str = ""
    service_name: str = ""
    #: True when a configured required tag was missing.
    unattributed: bool = False


class LabelGuard:
    """Caps distinct values per label; thread-safe; O(1) per call once values are known."""

    def __init__(self, cap: int, on_overflow=None):
        self.cap = cap
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._on_overflow = on_overflow

    def __call__(self, label: str, value: str) -> str:
        seen = self._seen.get(label)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(label, set())
            if value in seen:
                return value
            if len(seen) < self.cap:
                seen.add(value)
                return value
        if self._on_overflow is not None:
            self._on_overflow(label)
        return OVERFLOW_VALUE


def _create(meter: Meter, metric: Metric):
    if metric.kind == "counter":
        return meter.create_counter(metric.otel_name, unit=metric.unit, description=metric.description)
    if metric.kind == "histogram":
        return meter.create_histogram(metric.otel_name, unit=metric.unit, description=metric.description,
                                      explicit_bucket_boundaries_advisory=list(metric.buckets) or None)
    if metric.kind == "updown_counter":
        return meter.create_up_down_counter(metric.otel_name, unit=metric.unit, description=metric.description)
    raise ValueError(f"unsupported instrument kind {metric.kind}")


class CostRecorder:
    """Creates the contract's instruments on ``meter`` and records calls."""

    def __init__(self, meter: Meter, *, label_value_cap: int = 200, user_label: bool = False):
        self.user_label = user_label
        self.cost = _create(meter, Metrics.COST)
        self.tokens = _create(meter, Metrics.TOKENS)
        self.requests = _create(meter, Metrics.REQUESTS)
        self.unpriced = _create(meter, Metrics.UNPRICED_REQUESTS)
        self.unattributed = _create(meter, Metrics.UNATTRIBUTED_REQUESTS)
        self.cache_savings = _create(meter, Metrics.CACHE_SAVINGS)
        self.error_cost = _create(meter, Metrics.ERROR_COST)
        self.overflows = _create(meter, Metrics.LABEL_OVERFLOWS)
        self.parse_errors = _create(meter, Metrics.PARSE_ERRORS)
        self.token_usage = _create(meter, Metrics.GENAI_TOKEN_USAGE)
        self.duration = _create(meter, Metrics.GENAI_OPERATION_DURATION)
        self.ttfc = _create(meter, Metrics.GENAI_TIME_TO_FIRST_CHUNK)
        self.guard = LabelGuard(label_value_cap, on_overflow=self._count_overflow)

    def _count_overflow(self, label: str) -> None:
        self.overflows.add(1, {Label.LABEL: label})

    def call_labels(self, provider: str, model: str, operation: str, who: Attribution) -> dict[str, str]:
        """The common labels of every inferops_* call counter, guarded."""
        g = self.guard
        labels = {
            Label.PROVIDER: g(Label.PROVIDER, provider or "unknown"),
            Label.MODEL: g(Label.MODEL, model or UNKNOWN_MODEL),
            Label.OPERATION: g(Label.OPERATION, operation or "unknown"),
        }
        for name in ATTRIBUTION_LABELS:
            value = getattr(who, name) or UNATTRIBUTED
            labels[name] = g(name, value)
        if self.user_label:
            labels[Label.USER] = g(Label.USER, who.user or UNATTRIBUTED)
        return labels

    def record_call(
        self,
        usage: UsageRecord | None,
        cost: CostResult | None,
        who: Attribution,
        *,
        provider: str,
        model: str,
        operation: str,
        outcome: str = Outcome.SUCCESS,
        stream: bool = False,
        semconv_attributes: Mapping[str, object] | None = None,
        duration_s: float | None = None,
        time_to_first_chunk_s: float | None = None,
        span_context: trace.SpanContext | None = None,
    ) -> None:
        """Record one call (one attempt): requests, tokens, cost, semconv histograms.

        ``usage`` is None when the call produced no usage (e.g. an error before
        any body); ``cost`` is None when there was nothing to price.
        ``semconv_attributes`` are the GenAI semconv attributes for the
        semconv histograms (never attribution labels).
        """
        token = None
        if span_context is not None and span_context.is_valid:
            token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
        try:
            self._record(usage, cost, who, provider, model, operation, outcome, stream,
                         semconv_attributes or {}, duration_s, time_to_first_chunk_s)
        finally:
            if token is not None:
                otel_context.detach(token)

    def _record(self, usage, cost, who, provider, model, operation, outcome, stream, sem,
                duration_s, ttfc_s) -> None:
        labels = self.call_labels(provider, model, operation, who)
        status = cost.status if cost is not None else (PricingStatus.UNPRICED if usage else PricingStatus.PRICED)
        source = usage.usage_source if usage is not None else "provider"
        self.requests.add(1, {**labels, Label.OUTCOME: outcome, Label.STREAM: "true" if stream else "false",
                              Label.PRICING_STATUS: status, Label.USAGE_SOURCE: source})
        if who.unattributed:
            self.unattributed.add(1, labels)
        if usage is not None:
            for token_type, n in usage.token_buckets().items():
                if n:
                    self.tokens.add(n, {**labels, Label.TOKEN_TYPE: token_type, Label.USAGE_SOURCE: source})
            if cost is None or cost.status == PricingStatus.UNPRICED:
                self.unpriced.add(1, labels)
            else:
                for cost_type, usd in cost.components.items():
                    if usd:
                        self.cost.add(usd, {**labels, Label.COST_TYPE: cost_type})
                if cost.cache_read_savings > 0:
                    self.cache_savings.add(cost.cache_read_savings, labels)
                if outcome == Outcome.ERROR and cost.total:
                    self.error_cost.add(cost.total, labels)
            if usage.input_tokens:
                self.token_usage.record(usage.input_tokens, {**sem, "gen_ai.token.type": "input"})
            if usage.output_tokens:
                self.token_usage.record(usage.output_tokens, {**sem, "gen_ai.token.type": "output"})
        if duration_s is not None:
            self.duration.record(duration_s, sem)
        if ttfc_s is not None:
            self.ttfc.record(ttfc_s, sem)

    def record_parse_error(self, provider: str, reason: str) -> None:
        self.parse_errors.add(1, {Label.PROVIDER: self.guard(Label.PROVIDER, provider or "unknown"),
                                  Label.REASON: self.guard(Label.REASON, reason[:64] or "unknown")})
