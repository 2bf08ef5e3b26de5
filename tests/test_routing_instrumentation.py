"""Routing applied by the instrumentation: the request leaves with the routed model, span and metrics say so."""

from __future__ import annotations

import json

import httpx2
import pytest

import inferops
from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.names import Attr, GenAI, Metrics
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord
from inferops.settings import Settings

POLICY = """
rules:
  - name: faq-to-mini
    when: {provider: openai, model: gpt-4o, feature: faq}
    route_to: {model: gpt-4o-mini}
  - name: try-haiku
    when: {provider: anthropic, task: classification}
    route_to: {model: claude-haiku-4-5}
    dry_run: true
"""
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "what is the refund policy"}], "max_tokens": 8}
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "classify this"}]}


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def settings(srv, tmp_path):
    policy = tmp_path / "routing.yaml"
    policy.write_text(POLICY)
    return Settings(provider_endpoints=srv.endpoints(), routing_file=str(policy))


def _sent_models(srv) -> list[str]:
    return [json.loads(r.body)["model"] for r in srv.requests if r.body]


def _usage_of(span, provider: str, model: str) -> UsageRecord:
    a = span.attributes
    return UsageRecord(provider=provider, model=model, input_tokens=a[GenAI.USAGE_INPUT_TOKENS],
                       output_tokens=a[GenAI.USAGE_OUTPUT_TOKENS])


def test_matching_call_is_rewritten_and_savings_recorded(srv, settings):
    srv.reset()
    with instrumented(settings) as cap:
        with httpx2.Client() as client:
            with inferops.attribute(team="help", feature="faq"):
                routed = client.post(srv.base_url + "/openai/v1/chat/completions", json=CHAT)
            with inferops.attribute(team="help", feature="billing"):
                untouched = client.post(srv.base_url + "/openai/v1/chat/completions", json=CHAT)
        assert routed.status_code == untouched.status_code == 200
        # Exactly the matching call left with the routed model.
        assert _sent_models(srv) == ["gpt-4o-mini", "gpt-4o"]
        first, second = cap.spans()
        assert first.attributes[Attr.ROUTING_RULE] == "faq-to-mini"
        assert first.attributes[Attr.REQUESTED_MODEL] == "gpt-4o"
        assert first.attributes[GenAI.REQUEST_MODEL] == "gpt-4o-mini"
        assert Attr.ROUTING_RULE not in second.attributes
        # Savings: requested model's price minus the routed model's, for the tokens actually used.
        engine = CostEngine()
        used = _usage_of(first, "openai", first.attributes[GenAI.RESPONSE_MODEL])
        want = engine.price(_usage_of(first, "openai", "gpt-4o")).total - engine.price(used).total
        assert want > 0
        assert first.attributes[Attr.ROUTING_SAVINGS] == pytest.approx(want)
        got = cap.total(Metrics.ROUTING_SAVINGS.prom_name, requested_model="gpt-4o", feature="faq")
        assert got == pytest.approx(want)
        assert cap.total(Metrics.ROUTING_SAVINGS.prom_name, feature="billing") == 0


def test_dry_run_records_potential_savings_and_sends_unchanged(srv, settings):
    srv.reset()
    with instrumented(settings) as cap:
        with httpx2.Client() as client:
            resp = client.post(srv.base_url + "/anthropic/v1/messages", json=MSG,
                               headers={"X-Inferops-Task": "classification", "anthropic-version": "2023-06-01"})
        assert resp.status_code == 200
        assert _sent_models(srv) == ["claude-sonnet-4-5"]
        assert not any("x-inferops" in k for r in srv.requests for k in r.headers)
        [span] = cap.spans()
        assert span.attributes[Attr.ROUTING_DRY_RUN] is True
        assert span.attributes[Attr.ROUTING_TARGET_MODEL] == "claude-haiku-4-5"
        assert Attr.REQUESTED_MODEL not in span.attributes
        assert cap.total(Metrics.ROUTING_POTENTIAL_SAVINGS.prom_name) > 0
        assert cap.total(Metrics.ROUTING_SAVINGS.prom_name) == 0


def test_bad_policy_file_turns_routing_off_without_breaking_calls(srv, tmp_path, caplog):
    bad = tmp_path / "routing.yaml"
    bad.write_text("rules:\n  - name: x\n    route_to: {model: no-such-model-anywhere}\n")
    srv.reset()
    with instrumented(Settings(provider_endpoints=srv.endpoints(), routing_file=str(bad))) as cap:
        with httpx2.Client() as client:
            resp = client.post(srv.base_url + "/openai/v1/chat/completions", json=CHAT)
    assert resp.status_code == 200
    assert _sent_models(srv) == ["gpt-4o"]
    assert "routing is OFF" in caplog.text and str(bad) in caplog.text
    assert len(cap.spans()) == 1
