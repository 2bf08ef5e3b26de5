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

Batches: :meth:`CostRecorder.record_calls` records many calls (``inferops
serve``'s export requests) with the same totals as one :meth:`record_call` per
call, summing counter increments per series first (each SDK measurement costs
10-20 us); see its docstring for which span becomes the exemplar.

Cardinality: every label value goes through a :class:`LabelGuard`: at most
``cap`` distinct values per label, after which values become ``__overflow__``
and ``inferops_label_overflows_total{label=...}`` counts the samples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

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
from .sdkbatch import SeriesWriter
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


@dataclass(slots=True)
class CallSample:
    """One call for :meth:`CostRecorder.record_calls`: the arguments of :meth:`CostRecorder.record_call`.

    ``trace_id``/``span_id`` (ints, 0 = none) name the call's span for exemplars;
    ints rather than a ``SpanContext`` because building one per call costs more
    than the rest of the sample and only one call per series becomes an exemplar.
    """

    usage: UsageRecord | None
    cost: CostResult | None
    who: Attribution
    provider: str
    model: str
    operation: str
    outcome: str = Outcome.SUCCESS
    stream: bool = False
    semconv_attributes: Mapping[str, object] | None = None
    duration_s: float | None = None
    time_to_first_chunk_s: float | None = None
    trace_id: int = 0
    span_id: int = 0


@dataclass(frozen=True, slots=True)
class CallGroup:
    """What the calls of one group share, for :meth:`CostRecorder.record_groups` (``inferops serve``'s fast path).

    The series a call is counted in depend only on these and on the call's
    pricing status (see :meth:`CostRecorder.record_call`).
    """

    who: Attribution
    provider: str
    model: str
    operation: str
    outcome: str
    stream: bool
    usage_source: str


#: Order of the token types in :meth:`UsageRecord.token_buckets` (and in :meth:`CostRecorder.record_groups`).
_TOKEN_TYPES = ("input", "cache_read", "cache_write", "output", "reasoning")
_COST_TYPES = ("input", "cache_read", "cache_write", "output", "reasoning", "audio", "image", "request")
_GROUP_STATUSES = (PricingStatus.PRICED, PricingStatus.PARTIAL, PricingStatus.UNPRICED)


class CostRecorder:
    """Creates the contract's instruments on ``meter`` and records calls."""

    def __init__(self, meter: Meter, *, label_value_cap: int = 200, user_label: bool = False,
                 semconv_histograms: bool = True):
        self.user_label = user_label
        #: Record the GenAI semconv histograms (gen_ai.client.*). ``inferops serve`` turns them off by
        #: default: the apps' own GenAI instrumentations (OpenLLMetry, OpenLIT) already emit them.
        self.semconv_histograms = semconv_histograms
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
        #: (provider, model, operation, who) -> (labels, key), see :meth:`call_labels_cached`.
        self._label_memo: dict[tuple, tuple[dict[str, str], object]] = {}
        #: label values -> the shared key of that label set in :meth:`record_calls`.
        self._label_keys: dict[tuple, object] = {}
        self._sem_tokens: dict[tuple, _SeriesKey] = {}
        #: Batched sums and histogram values go to the SDK through this (attributes cleaned once per series).
        self._series = SeriesWriter(max_series=50_000)

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
        # The span's context is handed to each measurement (the SDK's exemplar filter reads it there)
        # rather than attached: the same exemplars, without attach/detach and a context lookup per measurement.
        ctx = None
        if span_context is not None and span_context.is_valid:
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
        self._record(usage, cost, who, provider, model, operation, outcome, stream,
                     semconv_attributes or _EMPTY_ATTRS, duration_s, time_to_first_chunk_s, ctx)

    def _record(self, usage, cost, who, provider, model, operation, outcome, stream, sem,
                duration_s, ttfc_s, ctx=None) -> None:
        # Nearly all the time of a call is spent inside the SDK (per measurement: attribute cleaning,
        # hashing, exemplar sampling, 12-18 us with the 12 labels); building the dicts here is ~1 us.
        labels, _ = self.call_labels_cached(provider, model, operation, who)
        status = cost.status if cost is not None else (PricingStatus.UNPRICED if usage else PricingStatus.PRICED)
        source = usage.usage_source if usage is not None else "provider"
        self.requests.add(1, {**labels, Label.OUTCOME: outcome, Label.STREAM: "true" if stream else "false",
                              Label.PRICING_STATUS: status, Label.USAGE_SOURCE: source}, context=ctx)
        if who.unattributed:
            self.unattributed.add(1, labels, context=ctx)
        if usage is not None:
            for token_type, n in usage.token_buckets().items():
                if n:
                    self.tokens.add(n, {**labels, Label.TOKEN_TYPE: token_type, Label.USAGE_SOURCE: source},
                                    context=ctx)
            if cost is None or cost.status == PricingStatus.UNPRICED:
                self.unpriced.add(1, labels, context=ctx)
            else:
                for cost_type, usd in cost.components.items():
                    if usd:
                        self.cost.add(usd, {**labels, Label.COST_TYPE: cost_type}, context=ctx)
                if cost.cache_read_savings > 0:
                    self.cache_savings.add(cost.cache_read_savings, labels, context=ctx)
                if outcome == Outcome.ERROR and cost.total:
                    self.error_cost.add(cost.total, labels, context=ctx)
            if self.semconv_histograms:
                if usage.input_tokens:
                    self.token_usage.record(usage.input_tokens, {**sem, "gen_ai.token.type": "input"}, context=ctx)
                if usage.output_tokens:
                    self.token_usage.record(usage.output_tokens, {**sem, "gen_ai.token.type": "output"},
                                            context=ctx)
        if not self.semconv_histograms:
            return
        if duration_s is not None:
            self.duration.record(duration_s, sem, context=ctx)
        if ttfc_s is not None:
            self.ttfc.record(ttfc_s, sem, context=ctx)

    def record_parse_error(self, provider: str, reason: str) -> None:
        self.parse_errors.add(1, {Label.PROVIDER: self.guard(Label.PROVIDER, provider or "unknown"),
                                  Label.REASON: self.guard(Label.REASON, reason[:64] or "unknown")})


    # -- batches (``inferops serve``) ------------------------------------------------------

    def call_labels_cached(self, provider: str, model: str, operation: str, who: Attribution
                           ) -> tuple[dict[str, str], object]:
        """:meth:`call_labels` and a key that is equal for equal label sets, memoised per call shape.

        The key of a memoised label set is one shared object per distinct set
        (identity hash: cheaper than hashing the label tuple for every call).
        Only label sets that passed the guard unchanged are memoised: a value
        the guard turned into ``__overflow__`` is guarded again on every call
        (key: the label values), so ``inferops_label_overflows_total`` still
        counts every sample. The memo is bounded (cleared at ``4 * cap`` entries).
        """
        key = (provider, model, operation, who)
        hit = self._label_memo.get(key)
        if hit is not None:
            return hit
        labels = self.call_labels(provider, model, operation, who)
        values = tuple(labels.values())
        if OVERFLOW_VALUE in values:
            return labels, values
        memo = self._label_memo
        if len(memo) >= 4 * self.guard.cap:
            memo.clear()
            self._label_keys.clear()
        token = self._label_keys.setdefault(values, _SeriesKey())
        memo[key] = out = (labels, token)
        return out

    def _sem_token(self, sem: Mapping[str, object]) -> "_SeriesKey":
        """One :class:`_SeriesKey` per distinct semconv attribute set (bounded like the label memo)."""
        items = tuple(sem.items())
        tokens = self._sem_tokens
        token = tokens.get(items)
        if token is None:
            if len(tokens) >= 4 * self.guard.cap:
                tokens.clear()
            token = tokens[items] = _SeriesKey()
        return token

    def record_calls(self, calls: Iterable[CallSample]) -> None:
        """Record many calls at once: the same totals as :meth:`record_call` for each, far fewer SDK calls.

        Every OpenTelemetry SDK measurement costs 10-20 us (attribute cleaning
        and hashing), so counter increments are first summed per series (metric
        and label set) within the batch and handed to the SDK once per series.
        Histogram observations cannot be merged (each value lands in a bucket):
        each series' values are recorded together. Both go to the SDK through
        :class:`inferops.processors.sdkbatch.SeriesWriter`, which cleans and
        hashes a series' attributes once, not once per measurement and batch.

        Exemplars: per aggregated counter series, the call with the largest
        contribution (the most expensive call for the request and unattributed
        counters, the largest token count for token counters, the largest
        amount for cost counters) is recorded as its own measurement in its
        span's context, so the exemplar carries that span's trace/span id *and
        its own value*; the rest of the series' sum is recorded outside any span
        (no exemplar). Per histogram series, the largest observation of the
        batch carries its span's context. Calls with ``span_id`` 0 never produce
        exemplars. So each series gets at most one new exemplar per batch
        instead of one per call (the exposition shows the latest exemplar per
        series or bucket anyway).
        """
        labelled = self.call_labels_cached
        # (instrument, series key...) -> [attributes, total, exemplar value, trace_id, span_id, exemplar rank]
        sums: dict[tuple, list] = {}
        # (instrument, series key...) -> [attributes, [(value, trace_id, span_id), ...]]
        hists: dict[tuple, list] = {}
        get_sum = sums.get
        get_hist = hists.get
        requests, tokens, cost_inst = self.requests, self.tokens, self.cost
        token_usage, duration, ttfc = self.token_usage, self.duration, self.ttfc
        semconv_on = self.semconv_histograms
        unpriced_status = PricingStatus.UNPRICED
        error = Outcome.ERROR

        def new_sum(key, attrs, value, rank, tid, sid) -> list:
            s = sums[key] = [attrs, value, value, tid, sid, rank]
            return s

        def bump(s, value, rank, tid, sid):
            s[1] += value
            if tid and (not s[3] or rank > s[5]):
                s[2], s[3], s[4], s[5] = value, tid, sid, rank

        def add(inst, lkey, labels, value, rank, tid, sid):  # the metrics whose labels are the call labels
            key = (inst, lkey)
            s = get_sum(key)
            if s is None:
                new_sum(key, dict(labels), value, rank, tid, sid)
            else:
                bump(s, value, rank, tid, sid)

        # Within one batch, calls of the same shape share their objects: look them up by identity
        # first (hashing an Attribution or a label tuple per call costs more than the rest).
        # (The list keeps every call, hence every object whose id is used, alive until the end.)
        calls = calls if isinstance(calls, list) else list(calls)
        batch_labels: dict[tuple, tuple[dict[str, str], object]] = {}
        batch_sem: dict[int, tuple] = {}
        # Per call shape (labels, outcome, stream, status, source, semconv set): the series lists it adds to,
        # found in `sums`/`hists` once per shape and batch (when the shape first adds to each), not per call.
        shapes: dict[tuple, _Shape] = {}

        def series(key, attrs, value, rank, tid, sid):  # a shape's first addition to a series
            s = get_sum(key)
            if s is None:
                return new_sum(key, attrs(), value, rank, tid, sid)
            bump(s, value, rank, tid, sid)
            return s

        def hist(key, attrs) -> list:
            h = get_hist(key)
            if h is None:
                hists[key] = h = [attrs(), []]
            return h[1]

        for c in calls:
            who = c.who
            usage, cost = c.usage, c.cost
            sid = c.span_id
            tid = c.trace_id if sid else 0
            if cost is not None:
                expensive = cost.total or 0.0
                status = cost.status
            else:
                expensive = 0.0
                status = unpriced_status if usage else PricingStatus.PRICED
            source = usage.usage_source if usage is not None else "provider"
            outcome = c.outcome
            sem = c.semconv_attributes or _EMPTY_ATTRS
            shk = (id(who), c.provider, c.model, c.operation, outcome, c.stream, status, source, id(sem))
            sh = shapes.get(shk)
            if sh is None:
                lk = (id(who), c.provider, c.model, c.operation)
                hit = batch_labels.get(lk)
                if hit is None:
                    hit = batch_labels[lk] = labelled(c.provider, c.model, c.operation, who)
                skey = batch_sem.get(id(sem))
                if skey is None:  # a token per distinct set: the histogram keys below hash it by identity
                    skey = batch_sem[id(sem)] = self._sem_token(sem)
                sh = shapes[shk] = _Shape(hit[0], hit[1], skey, sem)
            labels, lkey = sh.labels, sh.lkey
            s = sh.requests
            if s is None:
                stream = "true" if c.stream else "false"
                sh.requests = series((requests, lkey, outcome, stream, status, source),
                                     lambda: {**labels, Label.OUTCOME: outcome, Label.STREAM: stream,
                                              Label.PRICING_STATUS: status, Label.USAGE_SOURCE: source},
                                     1, expensive, tid, sid)
            else:  # bump(s, 1, expensive, tid, sid), inlined here and below: this runs per call and series
                s[1] += 1
                if tid and (not s[3] or expensive > s[5]):
                    s[2], s[3], s[4], s[5] = 1, tid, sid, expensive
            if who.unattributed:
                add(self.unattributed, lkey, labels, 1, expensive, tid, sid)
            if usage is not None:
                slots = sh.tokens
                for token_type, n in usage.token_buckets().items():
                    if n:
                        s = slots.get(token_type)
                        if s is None:
                            slots[token_type] = series(
                                (tokens, lkey, token_type, source),
                                lambda: {**labels, Label.TOKEN_TYPE: token_type, Label.USAGE_SOURCE: source},
                                n, n, tid, sid)
                        else:
                            s[1] += n
                            if tid and (not s[3] or n > s[5]):
                                s[2], s[3], s[4], s[5] = n, tid, sid, n
                if cost is None or status == unpriced_status:
                    add(self.unpriced, lkey, labels, 1, 0, tid, sid)
                else:
                    slots = sh.costs
                    for cost_type, usd in cost.components.items():
                        if usd:
                            s = slots.get(cost_type)
                            if s is None:
                                slots[cost_type] = series((cost_inst, lkey, cost_type),
                                                          lambda: {**labels, Label.COST_TYPE: cost_type},
                                                          usd, usd, tid, sid)
                            else:
                                s[1] += usd
                                if tid and (not s[3] or usd > s[5]):
                                    s[2], s[3], s[4], s[5] = usd, tid, sid, usd
                    if cost.cache_read_savings > 0:
                        add(self.cache_savings, lkey, labels, cost.cache_read_savings, cost.cache_read_savings,
                            tid, sid)
                    if outcome == error and cost.total:
                        add(self.error_cost, lkey, labels, cost.total, cost.total, tid, sid)
                if semconv_on:
                    n = usage.input_tokens
                    if n:
                        h = sh.h_input
                        if h is None:
                            h = sh.h_input = hist((token_usage, sh.skey, "input"),
                                                  lambda: {**sh.sem, "gen_ai.token.type": "input"})
                        h.append((n, tid, sid))
                    n = usage.output_tokens
                    if n:
                        h = sh.h_output
                        if h is None:
                            h = sh.h_output = hist((token_usage, sh.skey, "output"),
                                                   lambda: {**sh.sem, "gen_ai.token.type": "output"})
                        h.append((n, tid, sid))
            if semconv_on:
                value = c.duration_s
                if value is not None:
                    h = sh.h_duration
                    if h is None:
                        h = sh.h_duration = hist((duration, sh.skey), lambda: dict(sh.sem))
                    h.append((value, tid, sid))
                value = c.time_to_first_chunk_s
                if value is not None:
                    h = sh.h_ttfc
                    if h is None:
                        h = sh.h_ttfc = hist((ttfc, sh.skey), lambda: dict(sh.sem))
                    h.append((value, tid, sid))
        write = self._series.write
        for key, (attrs, total, best, tid, sid, _rank) in sums.items():
            _add_series(write, key, attrs, total, best, tid, sid)
        for key, (attrs, values) in hists.items():
            firsts = [v[0] for v in values]
            top = firsts.index(max(firsts))  # the first largest, as max(range, key=...) picks it
            write(key[0], key, attrs, [
                (value, _exemplar_context(tid, sid) if i == top and tid else _NO_EXEMPLAR)
                for i, (value, tid, sid) in enumerate(values)])

    def record_groups(self, groups: Sequence[CallGroup],
                      aggregate: Callable[[list[tuple[int, ...]], int], Iterable[tuple]]) -> None:
        """Record calls summed per series elsewhere: the same totals and exemplars as :meth:`record_calls`.

        For calls whose per-call values live outside Python (``inferops serve``'s
        compiled fast path keeps one compact sample per span). Here, per group
        (in the order the groups' first calls came), the label sets are worked
        out exactly as :meth:`record_calls` does (one guarded :meth:`call_labels_cached`
        per group: the same label guard and overflow counting), and each group
        gets the series index of each counter it can add to, as a row of 20:
        requests for status priced / partial / unpriced, unattributed (-1 when
        the group is attributed), tokens per token type (input, cache_read,
        cache_write, output, reasoning), unpriced, cost per cost type
        (:data:`inferops.names.CostType.ALL`), cache savings, error cost (-1
        unless the outcome is an error). ``aggregate(rows, n_series)`` must
        then walk the calls in order, adding each to its series exactly as
        :meth:`record_calls` does (same sums in the same order, the same
        largest-contributor rule for the exemplar, first call wins ties) and
        return ``(series index, total, exemplar value, trace_id, span_id)`` in
        the order the series were first met. Semconv histograms are not
        recorded here (they need every value): callers use :meth:`record_calls`
        when :attr:`semconv_histograms` is on.
        """
        labelled = self.call_labels_cached
        index: dict[tuple, int] = {}
        series: list[tuple] = []

        def at(key: tuple, attrs) -> int:
            i = index.get(key)
            if i is None:
                i = index[key] = len(series)
                series.append((key, attrs()))
            return i

        requests, tokens, cost_inst = self.requests, self.tokens, self.cost
        batch_labels: dict[tuple, tuple[dict[str, str], object]] = {}
        rows: list[tuple[int, ...]] = []
        for g in groups:
            who = g.who
            lk = (id(who), g.provider, g.model, g.operation)
            hit = batch_labels.get(lk)
            if hit is None:
                hit = batch_labels[lk] = labelled(g.provider, g.model, g.operation, who)
            labels, lkey = hit
            outcome, source = g.outcome, g.usage_source
            stream = "true" if g.stream else "false"
            row = [at((requests, lkey, outcome, stream, status, source),
                      lambda status=status: {**labels, Label.OUTCOME: outcome, Label.STREAM: stream,
                                             Label.PRICING_STATUS: status, Label.USAGE_SOURCE: source})
                   for status in _GROUP_STATUSES]
            row.append(at((self.unattributed, lkey), lambda: dict(labels)) if who.unattributed else -1)
            row.extend(at((tokens, lkey, tt, source),
                          lambda tt=tt: {**labels, Label.TOKEN_TYPE: tt, Label.USAGE_SOURCE: source})
                       for tt in _TOKEN_TYPES)
            row.append(at((self.unpriced, lkey), lambda: dict(labels)))
            row.extend(at((cost_inst, lkey, ct), lambda ct=ct: {**labels, Label.COST_TYPE: ct}) for ct in _COST_TYPES)
            row.append(at((self.cache_savings, lkey), lambda: dict(labels)))
            row.append(at((self.error_cost, lkey), lambda: dict(labels)) if outcome == Outcome.ERROR else -1)
            rows.append(tuple(row))
        write = self._series.write
        for i, total, best, tid, sid in aggregate(rows, len(series)):
            key, attrs = series[i]
            _add_series(write, key, attrs, total, best, tid, sid)


def _add_series(write, key: tuple, attrs: dict[str, str], total: float, best: float, trace_id: int,
                span_id: int) -> None:
    """Add one counter series' batch sum (``key[0]`` is the counter): its exemplar call's own value in that call's
    span context (so the exemplar carries its trace/span id and value), the rest outside any span; all of it
    unsampled without one. ``write`` is :meth:`SeriesWriter.write`."""
    if trace_id:
        values = [(best, _exemplar_context(trace_id, span_id))]
        rest = total - best
        if rest > 0:
            values.append((rest, _NO_EXEMPLAR))
    else:
        values = [(total, _NO_EXEMPLAR)]
    write(key[0], key, attrs, values)


_EMPTY_ATTRS: dict[str, str] = {}


class _Shape:
    """What the calls of one shape in a :meth:`CostRecorder.record_calls` batch add to: their labels, and the
    batch's series lists they reached so far (``None`` / absent until the shape first adds to one)."""

    __slots__ = ("labels", "lkey", "skey", "sem", "requests", "tokens", "costs", "h_input", "h_output",
                 "h_duration", "h_ttfc")

    def __init__(self, labels: dict[str, str], lkey: object, skey: object, sem: Mapping[str, object]) -> None:
        self.labels = labels
        self.lkey = lkey
        self.skey = skey
        self.sem = sem
        self.requests: list | None = None
        self.tokens: dict[str, list] = {}
        self.costs: dict[str, list] = {}
        self.h_input: list | None = None
        self.h_output: list | None = None
        self.h_duration: list | None = None
        self.h_ttfc: list | None = None


class _SeriesKey:
    """Identity of one memoised label set within :meth:`CostRecorder.record_calls` (hash by id)."""

    __slots__ = ()


#: A context whose span is invalid (never sampled): measurements recorded in it get no exemplar,
#: whatever span happens to be current in the calling thread.
_NO_EXEMPLAR = trace.set_span_in_context(trace.INVALID_SPAN)
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


#: (trace_id, span_id) -> its exemplar context: a call is the exemplar of most of the series of its batch
#: (requests, tokens, cost, histograms), and one context serves them all. Cleared when it grows past 256.
_EXEMPLAR_CONTEXTS: dict[tuple[int, int], Any] = {}


def _exemplar_context(trace_id: int, span_id: int):
    """A context whose current span is (trace_id, span_id), sampled: the SDK's exemplar filter keeps it."""
    key = (trace_id, span_id)
    ctx = _EXEMPLAR_CONTEXTS.get(key)
    if ctx is None:
        if len(_EXEMPLAR_CONTEXTS) >= 256:
            _EXEMPLAR_CONTEXTS.clear()
        ctx = _EXEMPLAR_CONTEXTS[key] = trace.set_span_in_context(trace.NonRecordingSpan(
            trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=_SAMPLED)))
    return ctx
