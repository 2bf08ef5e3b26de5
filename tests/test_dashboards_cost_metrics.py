"""The two counters added for the dashboards: prompt-cache savings and spend on failed calls.

Savings = cache-read tokens at the call's full input rate minus what they cost at the
cache-read rate (engine: ``CostResult.cache_read_savings``; recorder:
``inferops_cache_savings_usd_total``). Failed spend = the cost of calls with outcome
``error`` (``inferops_error_cost_usd_total``), also included in the cost counter.
"""

from __future__ import annotations

import math

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inferops.names import Metrics, Outcome
from inferops.processors.engine import CostEngine
from inferops.processors.recorder import Attribution, CostRecorder
from inferops.processors.usage import UsageRecord

ENGINE = CostEngine()


def _prices(provider: str, model: str) -> dict[str, float]:
    return ENGINE.resolve(provider, model).entry.prices["standard"]


@pytest.mark.parametrize("provider,model", [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5-20250929")])
def test_savings_are_cache_reads_at_input_minus_cache_read_price(provider, model):
    p = _prices(provider, model)
    cost = ENGINE.price(UsageRecord(provider, model, input_tokens=10_000, cache_read_tokens=6_000,
                                    cache_write_5m_tokens=1_000, output_tokens=500))
    assert p["cache_read"] < p["input"]
    assert math.isclose(cost.cache_read_savings, 6_000 * (p["input"] - p["cache_read"]), rel_tol=1e-12)
    # What was paid for the cache reads plus the savings is what they would have cost uncached.
    assert math.isclose(cost.components["cache_read"] + cost.cache_read_savings, 6_000 * p["input"], rel_tol=1e-12)


def test_no_cache_reads_no_savings_and_unpriced_has_none():
    assert ENGINE.price(UsageRecord("openai", "gpt-4o-mini", input_tokens=500, output_tokens=10)).cache_read_savings == 0
    unpriced = ENGINE.price(UsageRecord("openai", "acme-private-llm-7b", input_tokens=500, cache_read_tokens=400))
    assert unpriced.total is None and unpriced.cache_read_savings == 0


def _record(usage, outcome):
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    rec = CostRecorder(mp.get_meter("t"))
    cost = ENGINE.price(usage)
    rec.record_call(usage, cost, Attribution(team="alpha", project="p", feature="f", environment="prod",
                                             service_name="svc"),
                    provider=usage.provider, model=usage.model, operation="chat", outcome=outcome)
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points[m.name] = [(dict(dp.attributes), getattr(dp, "value", None)) for dp in m.data.data_points]
    mp.shutdown()
    return cost, points


def test_recorder_emits_savings_with_call_labels():
    usage = UsageRecord("openai", "gpt-4o-mini", input_tokens=2_000, cache_read_tokens=1_500, output_tokens=20)
    cost, points = _record(usage, Outcome.SUCCESS)
    [(labels, value)] = points[Metrics.CACHE_SAVINGS.otel_name]
    assert set(labels) == set(Metrics.CACHE_SAVINGS.labels) and labels["team"] == "alpha"
    assert math.isclose(value, cost.cache_read_savings)
    assert Metrics.ERROR_COST.otel_name not in points  # success: no failed spend


def test_recorder_emits_error_cost_for_failed_calls_only():
    usage = UsageRecord("openai", "gpt-4o-mini", input_tokens=300, output_tokens=40, usage_source="estimated")
    cost, points = _record(usage, Outcome.ERROR)
    [(labels, value)] = points[Metrics.ERROR_COST.otel_name]
    assert set(labels) == set(Metrics.ERROR_COST.labels)
    assert math.isclose(value, cost.total) and value > 0
    assert math.isclose(sum(v for _, v in points[Metrics.COST.otel_name]), cost.total)
    assert Metrics.CACHE_SAVINGS.otel_name not in points  # no cache reads
