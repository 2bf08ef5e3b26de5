"""Enforcer against a real Alertmanager 0.25 on 127.0.0.1 (alerts POSTed to /api/v2/alerts)."""

from __future__ import annotations

import datetime as dt
import logging
import textwrap

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inferops.alerts.alertmanager import AlertmanagerOptions, complete_config
from inferops.alerts.budgets import parse_budgets_text
from inferops.alerts.enforcement import Decision, Enforcer, TokenBucket
from inferops.alerts.rules import AlertName, dump_yaml
from inferops.alerts.testing import free_port, http_json, post_alerts, run_alertmanager
from inferops.names import Metrics
from inferops.processors.recorder import Attribution
from inferops.settings import Settings

pytestmark = pytest.mark.e2e

BUDGETS = textwrap.dedent("""\
    defaults:
      receiver: {webhook: "http://127.0.0.1:9/unused"}
    budgets:
      - name: growth-monthly
        scope: {team: growth}
        amount_usd: 10
        enforcement: block
      - name: support-daily
        scope: {team: support, feature: summary}
        period: calendar_day
        amount_usd: 5
        enforcement: {downgrade: gpt-4o-mini}
      - name: research-frontier
        scope: {team: research, model: "=~gpt-5.*"}
        amount_usd: 5
        enforcement: {throttle: 2}
      - name: search-monthly
        scope: {team: search}
        amount_usd: 5
        enforcement: block
      - name: ads-monthly
        scope: {team: ads}
        amount_usd: 5
""")


def _alert(budget: str, team: str, name: str = AlertName.EXHAUSTED) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    return {"labels": {"alertname": name, "budget": budget, "team": team, "project": "all",
                       "severity": "critical"},
            "annotations": {"summary": f"{budget} exhausted"},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=10)).isoformat()}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("am")
    budgets = parse_budgets_text(BUDGETS)
    (tmp / "am.yml").write_text(dump_yaml(complete_config(budgets, AlertmanagerOptions.demo())))
    with run_alertmanager(tmp / "am.yml", tmp) as url:
        post_alerts(url, [_alert("growth-monthly", "growth"), _alert("support-daily", "support"),
                          _alert("research-frontier", "research"), _alert("ads-monthly", "ads"),
                          # Not exhausted: a threshold warning must not enforce anything.
                          _alert("search-monthly", "search", AlertName.THRESHOLD)])
        yield url, budgets


def _enforcer(url: str, budgets, **kw) -> tuple[Enforcer, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    enforcer = Enforcer(budgets, url, poll_seconds=1.0, meter_provider=MeterProvider(metric_readers=[reader]), **kw)
    return enforcer, reader


def test_exhausted_budgets_block_downgrade_and_throttle_only_their_scope(alertmanager):
    url, budgets = alertmanager
    enforcer, _ = _enforcer(url, budgets, start=False)
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o") == Decision("allow")  # not polled yet
    assert enforcer.poll_once()
    assert enforcer.exhausted == {"growth-monthly", "support-daily", "research-frontier"}
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o") == Decision("block", "growth-monthly")
    assert enforcer.decide(Attribution(team="search"), "openai", "gpt-4o") == Decision("allow")  # only a threshold
    assert enforcer.decide(Attribution(team="ads"), "openai", "gpt-4o") == Decision("allow")  # action none
    assert enforcer.decide(Attribution(team="support", feature="summary"), "openai", "gpt-4o") == \
        Decision("downgrade", "support-daily", "gpt-4o-mini")
    assert enforcer.decide(Attribution(team="support", feature="chat"), "openai", "gpt-4o") == Decision("allow")
    assert enforcer.decide(Attribution(team="support", feature="summary"), "openai", "gpt-4o-mini") == \
        Decision("allow")
    # Throttle at 2 requests/minute: a burst of 2, then "throttle"; other models of the team are not in scope.
    research = Attribution(team="research")
    got = [enforcer.decide(research, "openai", "gpt-5.4").action for _ in range(3)]
    assert got == ["allow", "allow", "throttle"]
    assert enforcer.decide(research, "anthropic", "claude-sonnet-4-5").action == "allow"


def test_background_thread_polls_and_a_silence_lifts_enforcement(alertmanager):
    url, budgets = alertmanager
    enforcer, _ = _enforcer(url, budgets)
    try:
        assert enforcer.wait_polled(10)
        assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "block"
        now = dt.datetime.now(dt.timezone.utc)
        silence = http_json(f"{url}/api/v2/silences", {
            "matchers": [{"name": "budget", "value": "growth-monthly", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=5)).isoformat(),
            "createdBy": "test", "comment": "raise the budget by hand"})
        assert silence["silenceID"]
        enforcer.wait_polled(10)
        enforcer.wait_polled(10)
        assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "allow"
        http_json_delete(f"{url}/api/v2/silence/{silence['silenceID']}")
    finally:
        enforcer.close()


def http_json_delete(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5):
        pass


def test_unreachable_alertmanager_fails_open_logs_once_and_counts(caplog):
    budgets = parse_budgets_text(BUDGETS)
    enforcer, reader = _enforcer(f"http://127.0.0.1:{free_port()}", budgets, start=False, timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="inferops.alerts.enforcement"):
        assert not enforcer.poll_once()
        assert not enforcer.poll_once()
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "allow"
    warnings = [r for r in caplog.records if "fails open" in r.getMessage()]
    assert len(warnings) == 1
    points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == Metrics.ENFORCEMENT_FAILURES.otel_name for p in m.data.data_points]
    assert sum(p.value for p in points) == 2 and points[0].attributes == {"reason": "unreachable"}


def test_state_expires_when_polls_keep_failing(alertmanager):
    url, budgets = alertmanager
    clock = [1000.0]
    enforcer, _ = _enforcer(url, budgets, start=False, clock=lambda: clock[0])
    assert enforcer.poll_once()
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "block"
    enforcer.url = f"http://127.0.0.1:{free_port()}"
    assert not enforcer.poll_once()
    clock[0] += 1.5  # one missed poll: the last state still holds
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "block"
    clock[0] += 10  # beyond 2 polls + timeout: unknown -> fail open
    assert enforcer.decide(Attribution(team="growth"), "openai", "gpt-4o").action == "allow"


def test_from_settings_needs_both_url_and_file(tmp_path):
    assert Enforcer.from_settings(Settings()) is None
    assert Enforcer.from_settings(Settings(enforcement_alertmanager_url="http://127.0.0.1:9")) is None
    path = tmp_path / "b.yaml"
    path.write_text(BUDGETS)
    enforcer = Enforcer.from_settings(Settings(enforcement_alertmanager_url=f"http://127.0.0.1:{free_port()}",
                                               enforcement_budgets_file=str(path), enforcement_poll_seconds=5))
    try:
        assert isinstance(enforcer, Enforcer) and enforcer.poll_seconds == 5
        assert set(enforcer.budgets) == {"growth-monthly", "support-daily", "research-frontier", "search-monthly"}
    finally:
        enforcer.close()


def test_token_bucket_refills_at_the_configured_rate():
    now = [0.0]
    bucket = TokenBucket(60, clock=lambda: now[0])  # 1 per second, burst 60
    assert all(bucket.take() for _ in range(60)) and not bucket.take()
    now[0] += 1.0
    assert bucket.take() and not bucket.take()
