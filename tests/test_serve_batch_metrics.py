"""`CostRecorder.record_calls` (what `inferops serve` records per request) counts exactly what one
`record_call` per call counts, and keeps one exemplar per series: the call that contributed most."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inferops.names import Label, Metrics, Outcome
from inferops.processors.engine import CostEngine
from inferops.processors.recorder import Attribution, CallSample, CostRecorder
from inferops.processors.usage import UsageRecord

ENGINE = CostEngine()
SEM = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}


def _calls() -> list[CallSample]:
    """A mix: two teams, priced/unpriced, errors, cache reads, a call without ids, streaming, ttfc."""
    out = []
    for i in range(40):
        model = ("gpt-4o-2024-08-06", "gpt-4o-mini", "no-such-model-xyz")[i % 3]
        usage = UsageRecord(provider="openai", model=model, input_tokens=100 + 37 * i, output_tokens=10 + 3 * i,
                            cache_read_tokens=(i % 4) * 20, reasoning_tokens=i % 5)
        cost = ENGINE.price(usage)
        who = Attribution(team=("search", "ads")[i % 2], service_name="api", unattributed=i % 7 == 0)
        out.append(CallSample(
            usage, cost, who, "openai", model, "chat", Outcome.ERROR if i % 6 == 0 else Outcome.SUCCESS,
            i % 2 == 1, SEM, 0.1 + i / 100, 0.05 if i % 3 == 0 else None,
            trace_id=0 if i == 5 else 0x1000 + i, span_id=0 if i == 5 else 0x2000 + i))
    return out


def _points(reader: InMemoryMetricReader) -> dict:
    """(metric, attributes) -> value (sums) or (count, sum, bucket counts) (histograms)."""
    out = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    key = (m.name, tuple(sorted(p.attributes.items())))
                    if hasattr(p, "bucket_counts"):
                        out[key] = (p.count, round(p.sum, 9), tuple(p.bucket_counts))
                    else:
                        out[key] = round(p.value, 12)
    return out


def _recorder() -> tuple[CostRecorder, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return CostRecorder(MeterProvider(metric_readers=[reader]).get_meter("t")), reader


def test_batch_totals_equal_one_record_call_per_call():
    one, one_reader = _recorder()
    for c in _calls():
        one.record_call(c.usage, c.cost, c.who, provider=c.provider, model=c.model, operation=c.operation,
                        outcome=c.outcome, stream=c.stream, semconv_attributes=c.semconv_attributes,
                        duration_s=c.duration_s, time_to_first_chunk_s=c.time_to_first_chunk_s)
    batch, batch_reader = _recorder()
    calls = _calls()
    batch.record_calls(calls[:25])
    batch.record_calls(calls[25:])
    expected, got = _points(one_reader), _points(batch_reader)
    assert len(expected) > 20  # requests, tokens, cost, unpriced, unattributed, error cost, histograms
    assert got == expected


def test_one_exemplar_per_series_the_largest_contribution_with_its_own_value():
    rec, reader = _recorder()
    calls = _calls()
    rec.record_calls(calls)
    by_span = {c.span_id: c for c in calls}
    seen = 0
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name != Metrics.COST.otel_name:
                    continue
                for p in m.data.data_points:
                    cost_type = p.attributes[Label.COST_TYPE]
                    team = p.attributes[Label.TEAM]
                    model = p.attributes[Label.MODEL]
                    contributions = [(c.cost.components[cost_type], c.span_id) for c in calls
                                     if c.model == model and c.who.team == team and c.span_id
                                     and c.cost.total is not None and c.cost.components.get(cost_type)]
                    assert len(p.exemplars) == 1, p
                    ex = p.exemplars[0]
                    best_value = max(v for v, _ in contributions)
                    assert ex.value == best_value  # the span's own share, not the batch's sum
                    assert ex.span_id in {sid for v, sid in contributions if v == best_value}  # (ties possible)
                    assert ex.trace_id == by_span[ex.span_id].trace_id
                    seen += 1
    assert seen >= 4


def test_span_shapes_that_compare_equal_in_python_are_kept_apart():
    """`inferops.metrics_recorded` True means "already counted", the int 1 does not: the per-shape
    memo must not mix them up (True == 1 as dict keys)."""
    from inferops.names import Attr
    from inferops.processors.serve import AttributionResolver, Enricher
    from inferops.processors.serve.testing import make_request, make_span
    from inferops.settings import load_settings

    s = load_settings({})
    rec, _ = _recorder()
    enricher = Enricher(ENGINE, rec, AttributionResolver(s.baggage_keys, s.resource_keys, ()))
    base = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5}
    req = make_request([make_span({**base, Attr.METRICS_RECORDED: True}),
                        make_span({**base, Attr.METRICS_RECORDED: 1})])
    res = enricher.process(req)
    assert res.genai_spans == 2
    assert len(res.calls) == 1  # only the span not yet counted gets metrics


def test_semconv_histograms_can_be_left_to_the_apps_instrumentation():
    """`inferops serve` leaves gen_ai.client.* to the apps' own GenAI instrumentation by default
    (INFEROPS_SERVE_SEMCONV_METRICS=false): the inferops_* series stay exactly the same."""
    from inferops.processors.serve.server import Service
    from inferops.settings import load_settings

    full, full_reader = _recorder()
    full.record_calls(_calls())
    reader = InMemoryMetricReader()
    lean = CostRecorder(MeterProvider(metric_readers=[reader]).get_meter("t"), semconv_histograms=False)
    lean.record_calls(_calls()[:20])
    for c in _calls()[20:]:  # the per-call path honours it too
        lean.record_call(c.usage, c.cost, c.who, provider=c.provider, model=c.model, operation=c.operation,
                         outcome=c.outcome, stream=c.stream, semconv_attributes=c.semconv_attributes,
                         duration_s=c.duration_s, time_to_first_chunk_s=c.time_to_first_chunk_s)
    semconv = {m.otel_name for m in (Metrics.GENAI_TOKEN_USAGE, Metrics.GENAI_OPERATION_DURATION,
                                     Metrics.GENAI_TIME_TO_FIRST_CHUNK)}
    expected = {k: v for k, v in _points(full_reader).items() if k[0] not in semconv}
    got = _points(reader)
    assert {k[0] for k in _points(full_reader)} & semconv == semconv  # the full recorder does emit them
    assert got == expected
    # The service is wired to the setting (built, never started: its socket is closed right away).
    for env, want in (({}, False), ({"INFEROPS_SERVE_SEMCONV_METRICS": "true"}, True)):
        service = Service(load_settings(env), host="127.0.0.1", port=0)
        try:
            assert service.enricher.recorder.semconv_histograms is want
        finally:
            service.httpd.server_close()
            service.meter_provider.shutdown()
