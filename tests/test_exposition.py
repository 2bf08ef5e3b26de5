"""OpenMetrics exposition with exemplars, and the inferops_prometheus reader."""

from __future__ import annotations

import re
import urllib.request

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from inferops.instrumentation.prometheus_reader import InferopsPrometheusMetricReader
from inferops.names import Metrics
from inferops.processors.engine import CostEngine
from inferops.processors.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    OpenMetricsReader,
    wants_openmetrics,
)
from inferops.processors.recorder import Attribution, CostRecorder
from inferops.processors.usage import UsageRecord

PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
               "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def _record(mp: MeterProvider, tp: TracerProvider) -> tuple[str, str]:
    rec = CostRecorder(mp.get_meter("inferops"))
    usage = UsageRecord("openai", "gpt-4o", input_tokens=1200, output_tokens=300, cache_read_tokens=1000,
                        reasoning_tokens=100)
    cost = CostEngine().price(usage)
    with tp.get_tracer("t").start_as_current_span("chat gpt-4o") as span:
        rec.record_call(usage, cost, Attribution(team="search", service_name="api"), provider="openai",
                        model="gpt-4o", operation="chat", duration_s=0.3,
                        semconv_attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"})
        ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _providers(*readers):
    mp = MeterProvider(metric_readers=list(readers), resource=Resource.create({"service.name": "svc"}))
    return mp, TracerProvider()


def test_text_format_is_byte_identical_to_the_otel_exporter():
    registry = CollectorRegistry()
    reference = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    ours = OpenMetricsReader()
    mp, tp = _providers(reference, ours)
    _record(mp, tp)
    body, ctype = ours.render("text/plain;version=0.0.4")
    assert ctype == TEXT_CONTENT_TYPE
    assert body == generate_latest(registry)
    for metric in (Metrics.COST, Metrics.TOKENS, Metrics.REQUESTS):
        assert f"\n{metric.prom_name}{{".encode() in body
    assert b"inferops_cost_usd_total{" in body  # the contract spelled out
    assert b"target_info{" in body and b'service_name="svc"' in body
    assert b"# {" not in body  # no exemplars in the 0.0.4 format


def test_openmetrics_has_exemplars_of_the_recording_span():
    ours = OpenMetricsReader()
    mp, tp = _providers(ours)
    trace_id, span_id = _record(mp, tp)
    body, ctype = ours.render(PROM_ACCEPT)
    assert ctype == OPENMETRICS_CONTENT_TYPE
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}  # strict parser
    for name in (Metrics.COST.prom_name, Metrics.TOKENS.prom_name):
        fam = families[name.removesuffix("_total")]
        samples = [s for s in fam.samples if s.name == name]
        assert samples and all(s.exemplar is not None for s in samples)
        for s in samples:
            assert s.exemplar.labels == {"trace_id": trace_id, "span_id": span_id}
            assert s.exemplar.value == s.value  # one call: the exemplar is that call's measurement
    hist = families[Metrics.GENAI_OPERATION_DURATION.prom_name]
    with_ex = [s for s in hist.samples if s.exemplar is not None]
    assert len(with_ex) == 1 and with_ex[0].name.endswith("_bucket") and with_ex[0].labels["le"] == "0.32"
    assert with_ex[0].exemplar.labels["trace_id"] == trace_id


def test_no_exemplar_without_a_sampled_span():
    ours = OpenMetricsReader()
    mp, _ = _providers(ours)
    CostRecorder(mp.get_meter("inferops")).record_call(
        UsageRecord("openai", "gpt-4o", input_tokens=5), None, Attribution(), provider="openai",
        model="gpt-4o", operation="chat")
    body, _ = ours.render(PROM_ACCEPT)
    assert b"inferops_tokens_total{" in body and b"trace_id" not in body


def test_accept_negotiation():
    assert wants_openmetrics(PROM_ACCEPT)
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("application/openmetrics-text;q=0")
    assert not wants_openmetrics("")


def test_reader_serves_metrics_over_http():
    reader = InferopsPrometheusMetricReader(host="127.0.0.1", port=0)
    try:
        mp, tp = _providers(reader)
        trace_id, _ = _record(mp, tp)
        host, port = reader.address
        req = urllib.request.Request(f"http://{host}:{port}/metrics", headers={"Accept": PROM_ACCEPT})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
            text = resp.read().decode()
        assert re.search(r'inferops_cost_usd_total\{[^}]*\} [0-9.e-]+ # \{span_id="[0-9a-f]{16}",trace_id="'
                         + trace_id, text)
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:
            assert resp.headers["Content-Type"] == TEXT_CONTENT_TYPE
            assert b"trace_id" not in resp.read()
    finally:
        reader.shutdown()


def test_reader_reads_otel_prometheus_env(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    reader = InferopsPrometheusMetricReader()
    try:
        assert reader.address[0] == "127.0.0.1" and reader.address[1] > 0
    finally:
        reader.shutdown()


def test_entry_point_is_found_by_the_sdk_configurator():
    from opentelemetry.sdk._configuration import _import_exporters

    _, metric_exporters, _ = _import_exporters([], ["inferops_prometheus"], [])
    assert metric_exporters["inferops_prometheus"] is InferopsPrometheusMetricReader
