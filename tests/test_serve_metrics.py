"""Metrics of `inferops serve`: no double counting with in-process instrumentation, exemplars,
and two replicas scraped by a real Prometheus 2.42 summing to the hand-worked total."""

from __future__ import annotations

import shutil
import time

import pytest

from inferops.processors.serve.testing import ServeProcess, get, make_request, make_span, post
from inferops.testing import PrometheusServer, prometheus_config

SEMCONV = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
           "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1000,
           "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.output_tokens": 200,
           "inferops.team": "search"}
SEMCONV_USD = 0.0015 + 0.0005 + 0.002  # 600 x 2.5e-6 + 400 x 1.25e-6 + 200 x 10e-6
BEDROCK = {"gen_ai.system": "aws.bedrock", "gen_ai.operation.name": "chat",
           "gen_ai.request.model": "anthropic.claude-3-5-haiku-20241022-v1:0",
           "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 500}
BEDROCK_USD = 0.0016 + 0.002  # 2000 x 0.8e-6 + 500 x 4e-6
# Priced and counted by the in-process instrumentation already: must add nothing here.
IN_PROCESS = {**SEMCONV, "gen_ai.usage.cost": 1.0, "inferops.cost.status": "priced", "inferops.cost.total": 1.0,
              "inferops.cost.input": 1.0, "inferops.metrics_recorded": True}
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def _sum(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.split("#", 1)[0].split()[-1])
    return total


def _request():
    spans = [make_span(SEMCONV), make_span(SEMCONV), make_span(BEDROCK), make_span(IN_PROCESS)]
    return spans, make_request(spans, resource={"service.name": "checkout", "deployment.environment.name": "prod"})


def test_no_double_counting_and_exemplars():
    proc = ServeProcess()
    try:
        spans, req = _request()
        body = req.SerializeToString()
        assert post(proc.traces_url, body)[0] == 200
        status, metrics = get(proc.base + "/metrics", OPENMETRICS)
        text = metrics.decode()
        assert status == 200
        expected = 2 * SEMCONV_USD + BEDROCK_USD
        assert _sum(text, "inferops_cost_usd_total") == pytest.approx(expected, rel=1e-9)
        assert _sum(text, "inferops_requests_total") == 3  # the in-process span is not counted again
        # attribution labels from span and resource attributes
        assert 'team="search"' in text and 'service_name="checkout"' in text and 'environment="prod"' in text
        # exemplars carry the trace and span id of a priced span
        ours = {(s.trace_id.hex(), s.span_id.hex()) for s in spans[:3]}
        exemplars = [line.split("# ", 1)[1] for line in text.splitlines()
                     if line.startswith("inferops_cost_usd_total") and " # " in line]
        assert exemplars
        for ex in exemplars:
            labels = dict(p.split("=") for p in ex[ex.index("{") + 1:ex.index("}")].replace('"', "").split(","))
            assert (labels["trace_id"], labels["span_id"]) in ours
        # sending the same in-process span again changes nothing
        assert post(proc.traces_url, make_request([make_span(IN_PROCESS)]).SerializeToString())[0] == 200
        text2 = get(proc.base + "/metrics", OPENMETRICS)[1].decode()
        assert _sum(text2, "inferops_cost_usd_total") == pytest.approx(expected, rel=1e-9)
        assert _sum(text2, "inferops_serve_spans_received_total") == 5
    finally:
        proc.close()


@pytest.mark.e2e
def test_two_replicas_sum_in_prometheus():
    prom_bin = shutil.which("prometheus")
    assert prom_bin, "prometheus 2.42 (Debian package) is required: see .ci/run"
    replicas = [ServeProcess(), ServeProcess()]
    prom = PrometheusServer(prometheus_config(jobs={"inferops-serve": [f"127.0.0.1:{r.port}" for r in replicas]}),
                            exemplars=True)
    try:
        end = time.monotonic() + 30  # Prometheus' start counts in the 30 s, as it did
        prom.start()
        trace_ids: set[str] = set()
        n = 10
        for i in range(n):  # a load balancer alternating between the replicas
            spans, req = _request()
            trace_ids.update(s.trace_id.hex() for s in spans)
            assert post(replicas[i % 2].traces_url, req.SerializeToString())[0] == 200
        expected = n * (2 * SEMCONV_USD + BEDROCK_USD)
        result = None
        while time.monotonic() < end:
            try:
                up = prom.query('count(up{job="inferops-serve"} == 1)')
                result = prom.query("sum(inferops_cost_usd_total)")
                per = prom.query("count(count by (instance) (inferops_cost_usd_total))")
            except OSError:
                time.sleep(0.3)
                continue
            if up and up[0]["value"][1] == "2" and per and per[0]["value"][1] == "2" and result \
                    and abs(float(result[0]["value"][1]) - expected) < 1e-9:
                break
            time.sleep(0.3)
        assert result and float(result[0]["value"][1]) == pytest.approx(expected, rel=1e-9)
        assert per and per[0]["value"][1] == "2"  # both replicas contributed
        # exemplars were scraped (OpenMetrics) and point at our traces
        now = time.time()
        exemplars = prom.query_exemplars("inferops_cost_usd_total", now - 120, now + 5)
        found = {ex["labels"]["trace_id"] for series in exemplars for ex in series["exemplars"]}
        assert found and found <= trace_ids
    finally:
        prom.stop()
        for r in replicas:
            r.close()
