"""`inferops serve` prices spans of every instrumentation shape correctly (hand-worked catalog figures).

Prices used (catalog litellm-1.110.2, USD per million tokens):
gpt-4o-2024-08-06 input 2.50, cache read 1.25, output 10.00;
gpt-4o-mini input 0.15, output 0.60;
claude-sonnet-4-5-20250929 input 3.00, cache read 0.30, cache write (5m) 3.75, output 15.00;
bedrock anthropic.claude-3-5-haiku-20241022-v1:0 input 0.80, output 4.00.
"""

from __future__ import annotations

import json

import pytest

from inferops.names import Attr, CostSource, GenAI, PricingStatus
from inferops.processors.engine import CostEngine
from inferops.processors.serve import AttributionResolver, Enricher
from inferops.processors.serve.otlp import JSON, to_otlp_json
from inferops.processors.serve.testing import (
    OtlpReceiver, ServeProcess, make_request, make_span, post, spans_of,
)
from inferops.settings import load_settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

SEMCONV = {  # GenAI semconv 1.37+ (what inferops' own names contract uses)
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.usage.output_tokens": 200,
}
# 600 x 2.50e-6 + 400 x 1.25e-6 + 200 x 10e-6
SEMCONV_USD = 0.0015 + 0.0005 + 0.002

OPENLLMETRY_ANTHROPIC = {  # opentelemetry-instrumentation-anthropic: input already includes the cache
    "gen_ai.system": "Anthropic", "llm.request.type": "chat",
    "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.usage.input_tokens": 2100, "gen_ai.usage.output_tokens": 300, "llm.usage.total_tokens": 2400,
    "gen_ai.usage.cache_read_input_tokens": 1500, "gen_ai.usage.cache_creation_input_tokens": 500,
}
# 100 x 3e-6 + 1500 x 0.3e-6 + 500 x 3.75e-6 + 300 x 15e-6
OPENLLMETRY_USD = 0.0003 + 0.00045 + 0.001875 + 0.0045

OPENLLMETRY_AZURE = {  # opentelemetry-instrumentation-openai against Azure OpenAI, pre-1.37 names
    "gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.openai.api_base":
    "https://myco.openai.azure.com/openai/deployments/prod-mini", "gen_ai.request.model": "prod-mini",
    "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.prompt_tokens": 10000,
    "gen_ai.usage.completion_tokens": 1000,
}
# 10000 x 0.15e-6 + 1000 x 0.6e-6
AZURE_USD = 0.0015 + 0.0006

OPENLIT_ANTHROPIC = {  # OpenLIT writes Anthropic's raw input_tokens (cache excluded) and its own cost
    "gen_ai.system": "anthropic", "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "claude-sonnet-4-5-20250929", "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 50, "gen_ai.usage.cache_creation.input_tokens": 20,
    "gen_ai.usage.cost": 0.0123,
}
# our own figure: 100 x 3e-6 + 50 x 0.3e-6 + 20 x 3.75e-6 + 300 x 15e-6
OPENLIT_OURS_USD = 0.0003 + 0.000015 + 0.000075 + 0.0045

BEDROCK = {  # opentelemetry-instrumentation-botocore, Bedrock Converse
    "gen_ai.system": "aws.bedrock", "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 500,
    "gen_ai.response.finish_reasons": "end_turn",
}
BEDROCK_USD = 0.0016 + 0.002


def _enricher(**env) -> Enricher:
    s = load_settings(env)
    return Enricher(CostEngine.from_settings(s), None, AttributionResolver(s.baggage_keys, s.resource_keys, ()),
                    reprice=s.serve_reprice)


def _one(attrs, *, resource=None, scope="test", **env) -> dict:
    req = make_request([attrs], resource=resource, scope=scope)
    _enricher(**env).process(req)
    [(_, out)] = spans_of(req)
    return out


def test_semconv_span_gets_cost_attributes():
    out = _one(SEMCONV, resource={"service.name": "api", "deployment.environment.name": "prod", "team": "search"})
    assert out[GenAI.USAGE_COST] == pytest.approx(SEMCONV_USD, rel=1e-12)
    assert out[Attr.COST_TOTAL] == pytest.approx(SEMCONV_USD, rel=1e-12)
    assert out["inferops.cost.input"] == pytest.approx(0.0015)
    assert out["inferops.cost.cache_read"] == pytest.approx(0.0005)
    assert out["inferops.cost.output"] == pytest.approx(0.002)
    assert out[Attr.COST_STATUS] == PricingStatus.PRICED
    assert out[Attr.COST_SOURCE] == CostSource.INFEROPS
    assert out[Attr.CATALOG_KEY] == "gpt-4o-2024-08-06"
    assert out[Attr.CATALOG_VERSION].startswith("litellm-")
    assert out[Attr.TEAM] == "search" and out[Attr.ENVIRONMENT] == "prod"  # from resource attributes
    assert out[Attr.METRICS_RECORDED] is True


def test_openllmetry_anthropic_cache_counted_once():
    out = _one(OPENLLMETRY_ANTHROPIC, scope="opentelemetry.instrumentation.anthropic")
    assert out[GenAI.USAGE_COST] == pytest.approx(OPENLLMETRY_USD, rel=1e-12)
    assert out["inferops.cost.cache_write"] == pytest.approx(0.001875)
    assert out[Attr.CATALOG_KEY] == "claude-sonnet-4-5-20250929"


def test_openllmetry_azure_old_names():
    out = _one(OPENLLMETRY_AZURE, scope="opentelemetry.instrumentation.openai.v1")
    assert out[GenAI.USAGE_COST] == pytest.approx(AZURE_USD, rel=1e-12)


def test_openlit_cost_kept_and_cache_added_back():
    out = _one(OPENLIT_ANTHROPIC, resource={"service.name": "bot", "telemetry.sdk.name": "openlit"},
               scope="openlit.otel.tracing")
    assert out[GenAI.USAGE_COST] == 0.0123  # kept, untouched
    assert out[Attr.COST_SOURCE] == CostSource.SPAN
    assert out[Attr.COST_TOTAL] == pytest.approx(0.0123)
    # The breakdown is ours (cache tokens added back to OpenLIT's exclusive input), scaled to the kept total.
    assert out["inferops.cost.input"] == pytest.approx(0.0003 * 0.0123 / OPENLIT_OURS_USD)
    assert out["inferops.cost.cache_read"] == pytest.approx(0.000015 * 0.0123 / OPENLIT_OURS_USD)


def test_openlit_cost_repriced_when_configured():
    req = make_request([OPENLIT_ANTHROPIC], resource={"telemetry.sdk.name": "openlit"}, scope="openlit.otel.tracing")
    _enricher(INFEROPS_SERVE_REPRICE="true").process(req)
    [(span, out)] = spans_of(req)
    assert [kv.key for kv in span.attributes].count(GenAI.USAGE_COST) == 1
    assert out[GenAI.USAGE_COST] == pytest.approx(OPENLIT_OURS_USD, rel=1e-12)
    assert out[Attr.COST_SOURCE] == CostSource.INFEROPS


def test_bedrock_botocore_span():
    out = _one(BEDROCK, scope="opentelemetry.instrumentation.botocore.bedrock-runtime")
    assert out[GenAI.USAGE_COST] == pytest.approx(BEDROCK_USD, rel=1e-12)


def test_priced_in_process_is_left_alone_and_unknown_model_is_unpriced():
    in_process = {**SEMCONV, GenAI.USAGE_COST: 0.25, Attr.COST_STATUS: "priced", Attr.COST_TOTAL: 0.25,
                  Attr.METRICS_RECORDED: True}
    req = make_request([in_process, {**SEMCONV, "gen_ai.response.model": "acme-llm-9", "gen_ai.request.model": "acme-llm-9"},
                        {"http.method": "GET"}])
    res = _enricher().process(req)
    (s1, a1), (s2, a2), (s3, a3) = spans_of(req)
    assert len(s1.attributes) == len(in_process) and a1[GenAI.USAGE_COST] == 0.25
    assert a2[Attr.COST_STATUS] == PricingStatus.UNPRICED
    assert GenAI.USAGE_COST not in a2 and Attr.COST_TOTAL not in a2  # unknown is never $0
    assert a3 == {"http.method": "GET"}
    assert res.spans == 3 and res.genai_spans == 2
    assert dict(res.priced) == {(PricingStatus.UNPRICED, CostSource.INFEROPS): 1}  # the in-process one is not re-priced


def test_real_process_prices_every_shape_protobuf_and_json():
    receiver = OtlpReceiver()
    proc = ServeProcess(downstream=receiver.url)
    try:
        shapes = [SEMCONV, OPENLLMETRY_ANTHROPIC, OPENLLMETRY_AZURE, BEDROCK]
        spans = [make_span(a) for a in shapes]
        status, _, body = post(proc.traces_url, make_request(spans).SerializeToString())
        assert status == 200
        resp = ExportTraceServiceResponse()
        resp.ParseFromString(body)
        assert resp.partial_success.rejected_spans == 0
        # OTLP/JSON (hex ids, lowerCamelCase), gzip-compressed, from an OpenLIT app.
        lit = make_span(OPENLIT_ANTHROPIC)
        doc = to_otlp_json(make_request([lit], resource={"service.name": "bot", "telemetry.sdk.name": "openlit"}))
        assert lit.span_id.hex() in doc.decode()
        status, headers, body = post(proc.traces_url, doc, content_type=JSON, gzip_body=True)
        assert status == 200 and headers["Content-Type"].startswith(JSON)
        assert json.loads(body) == {}
        proc.terminate()  # flushes
        expected = {spans[0].span_id.hex(): SEMCONV_USD, spans[1].span_id.hex(): OPENLLMETRY_USD,
                    spans[2].span_id.hex(): AZURE_USD, spans[3].span_id.hex(): BEDROCK_USD,
                    lit.span_id.hex(): 0.0123}
        assert dict(receiver.counts) == {k: 1 for k in expected}
        for sid, usd in expected.items():
            assert receiver.attrs[sid][GenAI.USAGE_COST] == pytest.approx(usd, rel=1e-12), sid
        assert receiver.attrs[lit.span_id.hex()][Attr.COST_SOURCE] == CostSource.SPAN
    finally:
        proc.close()
        receiver.stop()
