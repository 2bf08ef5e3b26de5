"""The names contract agrees with what the real OpenTelemetry Prometheus exporter emits.

``inferops.names.Metric.prom_name`` is what dashboards and alert rules query, so it must be
exactly the series name ``opentelemetry-exporter-prometheus`` produces from the instrument
name, unit and kind. The test creates every instrument of ``inferops.names.Metrics`` on a
real ``MeterProvider`` with a ``PrometheusMetricReader`` bound to its own registry, records
once, renders ``generate_latest`` and compares the family names.
"""

from __future__ import annotations

import re

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest

from inferops import names
from inferops.names import Metrics

# The contract the dashboards, rules and users depend on, spelled out on purpose.
COUNTER_NAMES = {
    "COST": "inferops_cost_usd_total",
    "TOKENS": "inferops_tokens_total",
    "REQUESTS": "inferops_requests_total",
    "UNPRICED_REQUESTS": "inferops_unpriced_requests_total",
    "UNATTRIBUTED_REQUESTS": "inferops_unattributed_requests_total",
}


@pytest.mark.parametrize("attr,expected", sorted(COUNTER_NAMES.items()))
def test_inferops_counter_names(attr, expected):
    metric = getattr(Metrics, attr)
    assert metric.kind == "counter"
    assert metric.prom_name == expected


def _exported_families() -> dict[str, str]:
    """Family name -> TYPE, as the real exporter renders every metric of the contract."""
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "t"}))
    meter = provider.get_meter("inferops-names-contract")
    for m in Metrics.all():
        attrs = {label: "x" for label in m.labels}
        if m.kind == "counter":
            meter.create_counter(m.otel_name, unit=m.unit, description=m.description).add(1, attrs)
        elif m.kind == "updown_counter":
            meter.create_up_down_counter(m.otel_name, unit=m.unit, description=m.description).add(1, attrs)
        elif m.kind == "histogram":
            meter.create_histogram(
                m.otel_name, unit=m.unit, description=m.description,
                explicit_bucket_boundaries_advisory=list(m.buckets) or None,
            ).record(1, attrs)
        elif m.kind == "gauge":
            meter.create_gauge(m.otel_name, unit=m.unit, description=m.description).set(0.5, attrs)
        else:  # pragma: no cover - a new kind must be added here
            raise AssertionError(f"unknown instrument kind {m.kind}")
    text = generate_latest(registry).decode()
    provider.shutdown()
    families = {}
    for line in text.splitlines():
        match = re.match(r"^# TYPE (\S+) (\S+)$", line)
        if match:
            families[match.group(1)] = match.group(2)
    return families, text


def test_prom_names_match_the_real_exporter():
    families, text = _exported_families()
    series = {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines()
              if line and not line.startswith("#")}
    for m in Metrics.all():
        for name in m.prom_series_names:
            assert name in series, f"{m.otel_name}: contract says {name}, exporter emitted {sorted(series)}"
    # Every exported family (except the exporter's own target_info) is in the contract.
    contract_series = names.all_prom_series_names()
    for name in series - {"target_info"}:
        assert name in contract_series, f"exporter emitted {name}, not in the names contract"


def test_counter_types_and_totals_as_exported():
    families, text = _exported_families()
    for attr, expected in COUNTER_NAMES.items():
        # The text format names the counter family with or without _total (client versions differ).
        kind = families.get(expected) or families.get(expected.removesuffix("_total"))
        assert kind == "counter", (expected, families)
        assert re.search(rf"^{expected}\{{", text, re.M), f"{expected} series not rendered"


def test_labels_are_prometheus_safe_and_known():
    allowed = names.all_label_names()
    for m in Metrics.all():
        for label in m.labels:
            assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label), (m.otel_name, label)
            assert label in allowed
