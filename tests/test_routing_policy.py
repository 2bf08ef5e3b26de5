"""Routing policy: validation with file:line errors, decisions, body rewrite, savings from catalog prices."""

from __future__ import annotations

import json
import textwrap

import pytest

from inferops.processors.engine import CostEngine
from inferops.processors.recorder import Attribution
from inferops.processors.routing import (
    RouteDecision,
    RoutingPolicy,
    counterfactual,
    estimate_input_tokens,
    rewrite_body,
    savings,
)
from inferops.processors.usage import UsageRecord
from inferops.settings import Settings
from inferops.yamlfile import ConfigError

POLICY = """\
dry_run: false
rules:
  - name: faq-to-mini
    when:
      provider: openai
      model: gpt-4o
      feature: [faq, search]
      operation: chat
      max_input_tokens: 2000
    route_to:
      model: gpt-4o-mini
  - name: classify-to-haiku
    when:
      task: classification
      provider: anthropic
    route_to: {model: claude-haiku-4-5}
  - name: batch-team-trial
    when:
      team: "batch-*"
      min_input_tokens: 100
    route_to: {model: gpt-4.1-mini, provider: openai}
    dry_run: true
"""


@pytest.fixture(scope="module")
def engine():
    return CostEngine()


@pytest.fixture
def policy(tmp_path, engine):
    path = tmp_path / "routing.yaml"
    path.write_text(POLICY)
    return RoutingPolicy.load(str(path), engine)


def who(**kw) -> Attribution:
    return Attribution(**kw)


def test_decisions_match_exactly_the_rules(policy):
    d = policy.decide(who(feature="faq"), "openai", "chat", "gpt-4o", 1500, "")
    assert d == RouteDecision("faq-to-mini", "gpt-4o-mini", False)
    # A dated snapshot of the model matches its catalog model; the size bound is inclusive.
    assert policy.decide(who(feature="search"), "openai", "chat", "gpt-4o-2024-08-06", 2000, "").rule == "faq-to-mini"
    assert policy.decide(who(feature="faq"), "openai", "chat", "gpt-4o", 2001, "") is None  # prompt too big
    assert policy.decide(who(feature="billing"), "openai", "chat", "gpt-4o", 10, "") is None  # other feature
    assert policy.decide(who(feature="faq"), "openai", "embeddings", "gpt-4o", 10, "") is None  # other operation
    assert policy.decide(who(feature="faq"), "openai", "chat", "gpt-4.1", 10, "") is None  # other model
    d = policy.decide(who(), "anthropic", "chat", "claude-sonnet-4-5-20250929", 90_000, "classification")
    assert d == RouteDecision("classify-to-haiku", "claude-haiku-4-5", False)
    assert policy.decide(who(), "anthropic", "chat", "claude-sonnet-4-5", 10, "summarize") is None
    # Glob on team, per-rule dry run, and the lower size bound.
    d = policy.decide(who(team="batch-nightly"), "openai", "chat", "gpt-4o", 500, "")
    assert d == RouteDecision("batch-team-trial", "gpt-4.1-mini", True)
    assert policy.decide(who(team="batch-nightly"), "openai", "chat", "gpt-4o", 99, "") is None
    # A matching rule whose target speaks another wire format is skipped (Anthropic call, OpenAI target).
    assert policy.decide(who(team="batch-x"), "anthropic", "chat", "claude-sonnet-4-5", 500, "") is None
    # Already the target model: nothing to route.
    assert policy.decide(who(team="batch-x"), "openai", "chat", "gpt-4.1-mini", 500, "") is None
    # Model in the URL path (Bedrock, Gemini, Azure deployments): never routed.
    assert policy.decide(who(team="batch-x"), "aws.bedrock", "chat", "gpt-4o", 500, "") is None


def test_rewrites_exactly_the_matching_calls(policy):
    """Simulate the instrumentation over a batch of calls: only matching, non-dry-run calls get a new body."""
    calls = [
        (who(feature="faq"), "openai", "gpt-4o", ""),
        (who(feature="faq"), "openai", "gpt-4o", "x" * 20_000),  # too long for the rule
        (who(feature="other"), "openai", "gpt-4o", ""),
        (who(), "anthropic", "claude-sonnet-4-5", "classification"),
        (who(team="batch-a"), "openai", "gpt-4o", "y" * 1_000),  # dry run: decided, not rewritten
    ]
    sent = []
    for attribution, provider, model, extra in calls:
        body = {"model": model, "messages": [{"role": "user", "content": "hello " + extra}], "temperature": 0.2}
        if provider == "anthropic":
            task = extra
            body["messages"][0]["content"] = "hello"
        else:
            task = ""
        raw = json.dumps(body).encode()
        decision = policy.decide(attribution, provider, "chat", model, estimate_input_tokens(body), task)
        if decision is not None and not decision.dry_run:
            raw = rewrite_body(raw, decision.target_model)
        sent.append((json.loads(raw)["model"], decision.rule if decision else None))
    assert sent == [
        ("gpt-4o-mini", "faq-to-mini"),
        ("gpt-4o", None),
        ("gpt-4o", None),
        ("claude-haiku-4-5", "classify-to-haiku"),
        ("gpt-4o", "batch-team-trial"),
    ]


def test_rewrite_body_keeps_everything_else():
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "héllo"}],
                       "stream": True, "n": 2}).encode()
    out = json.loads(rewrite_body(body, "gpt-4o-mini"))
    assert out == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo"}], "stream": True, "n": 2}
    assert rewrite_body(b"not json", "m") is None
    assert rewrite_body(b'{"input": "no model"}', "m") is None


def test_estimate_input_tokens_counts_text_only():
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "a" * 40},
                                            {"role": "user", "content": [{"type": "text", "text": "b" * 41},
                                                                         {"type": "image_url",
                                                                          "image_url": {"url": "http://x/" + "c" * 400}}]}]}
    assert estimate_input_tokens(body) == 21  # ceil(81 / 4); the URL is not prompt text
    assert estimate_input_tokens({"model": "m", "input": ["abcd", "efgh"]}) == 2


def test_savings_hand_worked_from_catalog_prices(engine):
    # gpt-4o: 8000 x 2.5e-6 + 2000 x 1.25e-6 + 1000 x 1e-5 = 0.0325
    # gpt-4o-mini: 8000 x 1.5e-7 + 2000 x 7.5e-8 + 1000 x 6e-7 = 0.00195
    routed = UsageRecord(provider="openai", model="gpt-4o-mini", input_tokens=10_000, cache_read_tokens=2_000,
                         output_tokens=1_000)
    requested = counterfactual(routed, "gpt-4o")
    assert requested.model == "gpt-4o" and requested.input_tokens == 10_000 and routed.model == "gpt-4o-mini"
    assert savings(engine, requested, routed) == pytest.approx(0.0325 - 0.00195, abs=1e-12)
    # claude-sonnet-4-5: 4000 x 3e-6 + 1000 x 3.75e-6 + 500 x 1.5e-5 = 0.02325
    # claude-haiku-4-5: 4000 x 1e-6 + 1000 x 1.25e-6 + 500 x 5e-6 = 0.00775
    routed = UsageRecord(provider="anthropic", model="claude-haiku-4-5", input_tokens=5_000,
                         cache_write_5m_tokens=1_000, output_tokens=500)
    assert savings(engine, counterfactual(routed, "claude-sonnet-4-5"), routed) == pytest.approx(0.0155, abs=1e-12)
    # An unpriced side gives no figure (never $0).
    assert savings(engine, counterfactual(routed, "no-such-model-xyz"), routed) is None


def test_from_settings(tmp_path, engine):
    assert RoutingPolicy.from_settings(Settings()) is None
    path = tmp_path / "r.yaml"
    path.write_text(POLICY)
    policy = RoutingPolicy.from_settings(Settings(routing_file=str(path)), engine)
    assert [r.name for r in policy.rules] == ["faq-to-mini", "classify-to-haiku", "batch-team-trial"]


@pytest.mark.parametrize("text, where, message", [
    ("rules: []\n", ":1: rules", "non-empty list"),
    ("rules:\n  - name: a\n    when: {feature: x}\n    route_to: {model: gpt-4o-mini}\n    colour: red\n",
     ":5: rules[0].colour", "unknown key"),
    ("rules:\n  - name: a\n    when:\n      feature: x\n      size: 3\n    route_to: {model: gpt-4o-mini}\n",
     ":5: rules[0].when.size", "unknown condition"),
    ("rules:\n  - name: a\n    when:\n      min_input_tokens: 10\n      max_input_tokens: 5\n"
     "    route_to: {model: gpt-4o-mini}\n", ":4: rules[0].when.min_input_tokens", "above max_input_tokens"),
    ("rules:\n  - name: a\n    when: {provider: openai}\n    route_to:\n      model: gpt-99-imaginary\n",
     ":5: rules[0].route_to.model", "not in the price catalog"),
    ("rules:\n  - name: a\n    when:\n      provider: gcp.gemini\n    route_to: {model: gemini-2.5-flash}\n",
     ":4: rules[0].when.provider", "URL path"),
    ("rules:\n  - name: a\n    when: {provider: openai}\n    route_to:\n      model: claude-haiku-4-5\n"
     "      provider: anthropic\n", ":6: rules[0].route_to.provider", "wire format"),
    ("rules:\n  - name: a\n    when: {feature: x}\n    route_to: {model: gpt-4o-mini}\n"
     "  - name: a\n    when: {feature: y}\n    route_to: {model: gpt-4o-mini}\n", ":5: rules[1].name", "duplicate"),
    ("rules:\n  - name: a\n    when: {feature: x}\n    route_to: {model: gpt-4o-mini}\n    dry_run: maybe\n",
     ":5: dry_run", "expected true or false"),
    ("rules:\n  - name: a\n    when: {}\n    route_to: {model: gpt-4o-mini}\n", ":3: rules[0].when",
     "at least one condition"),
])
def test_invalid_policies_name_file_line_and_field(tmp_path, engine, text, where, message):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        RoutingPolicy.load(str(path), engine)
    assert f"{path}{where}" in str(info.value)
    assert message in str(info.value)


def test_decide_never_raises(policy):
    class Broken:
        @property
        def team(self):
            raise RuntimeError("boom")

    assert policy.decide(Broken(), "openai", "chat", "gpt-4o", 10, "") is None


def test_routing_metrics_record_savings_and_potential_savings(engine):
    """Savings land in the contract's counters with the call's labels plus requested/routed model."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from inferops.names import Metrics
    from inferops.processors.routing import RoutingMetrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = RoutingMetrics(provider.get_meter("test"))
    labels = {"provider": "openai", "model": "gpt-4o-mini", "team": "search"}
    used = UsageRecord(provider="openai", model="gpt-4o-mini", input_tokens=10_000, cache_read_tokens=2_000,
                       output_tokens=1_000)
    value = metrics.record(engine, RouteDecision("faq-to-mini", "gpt-4o-mini", False), used,
                           requested_model="gpt-4o", requested_provider="openai", labels=labels)
    assert value == pytest.approx(0.03055, abs=1e-12)
    # Dry run: gpt-4o served the call; the rule would have sent it to gpt-4o-mini.
    served = counterfactual(used, "gpt-4o")
    value = metrics.record(engine, RouteDecision("trial", "gpt-4o-mini", True), served, requested_model="gpt-4o",
                           requested_provider="openai", labels={**labels, "model": "gpt-4o"})
    assert value == pytest.approx(0.03055, abs=1e-12)
    # A rule routing to a pricier model: negative figure, nothing added to the counter.
    value = metrics.record(engine, RouteDecision("up", "gpt-4o", False), served, requested_model="gpt-4o-mini",
                           requested_provider="openai", labels=labels)
    assert value == pytest.approx(-0.03055, abs=1e-12)
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    points[(m.name, p.attributes["requested_model"], p.attributes["routed_model"])] = p.value
    assert points == {
        (Metrics.ROUTING_SAVINGS.otel_name, "gpt-4o", "gpt-4o-mini"): pytest.approx(0.03055, abs=1e-12),
        (Metrics.ROUTING_POTENTIAL_SAVINGS.otel_name, "gpt-4o", "gpt-4o-mini"): pytest.approx(0.03055, abs=1e-12),
    }
