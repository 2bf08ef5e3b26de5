"""End to end on 127.0.0.1: instrumented app -> Prometheus (generated rules) -> Alertmanager -> webhook,
then the same app's enforcement blocks / downgrades the next call for the spent teams only.

Real processes: the app runs under ``opentelemetry-instrument`` with ``OTEL_METRICS_EXPORTER=inferops_prometheus``
and budget enforcement configured through ``INFEROPS_ENFORCEMENT_*``; its LLM provider is
``inferops.mock_providers.MockProviderServer``; Prometheus 2.42 evaluates the rules built with the demo
profile (1s evaluation, ``for: 0s``); Alertmanager 0.25 uses the generated ``alertmanager.yml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inferops.alerts.alertmanager import AlertmanagerOptions, complete_config
from inferops.alerts.budgets import load_budgets
from inferops.alerts.rules import AlertName, RuleOptions, build_groups, dump_yaml
from inferops.alerts.testing import WebhookSink, free_port, run_alertmanager, run_prometheus, wait_until
from inferops.mock_providers import MockProviderServer

pytestmark = pytest.mark.e2e

APP = textwrap.dedent("""
    import json, os, time
    import openai
    import inferops
    from inferops.errors import BudgetExceededError

    client = openai.OpenAI(base_url=os.environ["MOCK_BASE"] + "/openai/v1", api_key="sk-e2e", max_retries=0)

    def call(team, feature, model="gpt-4o"):
        with inferops.attribute(team=team, feature=feature):
            try:
                r = client.chat.completions.create(model=model, max_tokens=20,
                                                   messages=[{"role": "user", "content": "hello " * 50}])
                return {"ok": True, "model": r.model}
            except BudgetExceededError as exc:
                return {"ok": False, "budget": exc.budget, "action": exc.action}

    # Steady traffic until the budget alerts arrived: rate() needs the counters to rise between scrapes
    # (a counter first scraped at its final value shows no increase).
    while not os.path.exists(os.environ["GO_FILE"]):
        for team, feature in (("growth", "search"), ("support", "summary"), ("other", "chat")):
            call(team, feature)
        time.sleep(0.3)
    print("CALLS-DONE", flush=True)
    # Enforcement state arrives by polling Alertmanager (every second): retry until it shows.
    deadline = time.time() + 20
    while time.time() < deadline:
        growth = call("growth", "search")
        support = call("support", "summary")
        if not growth["ok"] and support.get("model", "").startswith("gpt-4o-mini"):
            break
        time.sleep(0.3)
    other = call("other", "chat")
    print("RESULT " + json.dumps({"growth": growth, "support": support, "other": other}), flush=True)
""")


def _budgets(sink: str) -> str:
    return textwrap.dedent(f"""\
        defaults:
          burn_rate: false
          forecast: false
          spike_sensitivity: off
          unattributed_share_percent: 0
          thresholds: [50]
          runbook_url: https://runbooks.example.com/budgets
          dashboard_url: http://grafana.local/d/inferops-overview
        budgets:
          - name: growth-daily
            scope: {{team: growth}}
            period: calendar_day
            amount_usd: 0.0001
            severity: critical
            receiver: {{webhook: "{sink}/growth"}}
            enforcement: block
          - name: support-daily
            scope: {{team: support, feature: summary}}
            period: calendar_day
            amount_usd: 0.0001
            receiver: {{webhook: "{sink}/support"}}
            enforcement: {{downgrade: gpt-4o-mini}}
          - name: other-monthly
            scope: {{team: other}}
            amount_usd: 1000
            receiver: {{webhook: "{sink}/other"}}
            enforcement: block
        """)


def _diagnose(prom_url: str, sink: WebhookSink, tmp_path: Path) -> str:
    import urllib.parse

    from inferops.alerts.testing import http_json

    def q(expr: str):
        try:
            return http_json(f"{prom_url}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]
        except Exception as exc:  # diagnostics only
            return repr(exc)

    return (f"cost: {q('inferops_cost_usd_total')}\nptd: {q('budget:inferops_cost_usd:period_to_date')}\n"
            f"ALERTS: {q('ALERTS')}\nwebhook: {sink.payloads}\napp: {(tmp_path / 'app.out').read_text()[-2000:]}\n"
            f"prometheus: {(tmp_path / 'prometheus.log').read_text()[-1500:]}")


def test_budget_alert_reaches_the_team_and_enforcement_blocks_and_downgrades(tmp_path: Path):
    otel_instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    assert otel_instrument.exists()
    metrics_port = free_port()
    with WebhookSink() as sink, MockProviderServer(host="127.0.0.1", port=0) as srv:
        (tmp_path / "budgets.yaml").write_text(_budgets(sink.url))
        budgets = load_budgets(tmp_path / "budgets.yaml")
        (tmp_path / "rules.yaml").write_text(dump_yaml(build_groups(budgets, RuleOptions.demo())))
        (tmp_path / "am.yml").write_text(dump_yaml(complete_config(budgets, AlertmanagerOptions.demo())))
        with run_alertmanager(tmp_path / "am.yml", tmp_path) as am_url:
            (tmp_path / "prometheus.yml").write_text(textwrap.dedent(f"""\
                global: {{scrape_interval: 1s, evaluation_interval: 1s}}
                rule_files: ["{tmp_path / 'rules.yaml'}"]
                alerting:
                  alertmanagers: [{{static_configs: [{{targets: ["{am_url.removeprefix('http://')}"]}}]}}]
                scrape_configs:
                  - job_name: app
                    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
                """))
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFEROPS_"))},
                "MOCK_BASE": srv.base_url, "GO_FILE": str(tmp_path / "go"),
                "OTEL_SERVICE_NAME": "budget-e2e", "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "inferops_prometheus",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
                "INFEROPS_PROVIDER_ENDPOINTS": f"{srv.base_url}/openai/v1=openai",
                "INFEROPS_ENFORCEMENT_ALERTMANAGER_URL": am_url,
                "INFEROPS_ENFORCEMENT_BUDGETS_FILE": str(tmp_path / "budgets.yaml"),
                "INFEROPS_ENFORCEMENT_POLL_SECONDS": "1",
            }
            with open(tmp_path / "app.out", "w") as out:
                app = subprocess.Popen([str(otel_instrument), sys.executable, "-c", APP], stdout=out,
                                       stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
            try:
                with run_prometheus(tmp_path / "prometheus.yml", tmp_path) as prom_url:
                    def delivered():
                        if app.poll() is not None:
                            raise AssertionError((tmp_path / "app.out").read_text()[-3000:])
                        got = {a["labels"]["budget"]: a for a in sink.alerts()
                               if a["labels"]["alertname"] == AlertName.EXHAUSTED and a["status"] == "firing"}
                        return got if {"growth-daily", "support-daily"} <= set(got) else None
                    try:
                        exhausted = wait_until(delivered, 40, 0.3, "InferopsBudgetExhausted at the webhook")
                    except TimeoutError as exc:
                        raise AssertionError(_diagnose(prom_url, sink, tmp_path)) from exc
                    (tmp_path / "go").write_text("go")
                    app.wait(40)
            finally:
                if app.poll() is None:
                    app.kill()
                    app.wait(5)
    log = (tmp_path / "app.out").read_text()
    # The right receiver got the right alert, with labels and dollar figures.
    growth = exhausted["growth-daily"]
    assert growth["labels"] == {"alertname": AlertName.EXHAUSTED, "budget": "growth-daily", "team": "growth",
                                "project": "all", "severity": "critical", "period": "calendar_day"}
    description = growth["annotations"]["description"]
    m = re.match(r"Team growth has spent \$([0-9.e-]+), the whole \$0\.0001 of budget \"growth-daily\"", description)
    assert m, description
    assert float(m.group(1)) >= 0.0001  # the figure Prometheus computed, at least the budget
    assert "blocked" in description
    assert growth["annotations"]["runbook_url"].endswith("#inferopsbudgetexhausted")
    paths = {p["path"] for p in sink.payloads for a in p["body"]["alerts"]
             if a["labels"]["budget"] == "growth-daily"}
    assert paths == {"/growth"}
    assert not [a for a in sink.alerts("/other") if a["labels"]["alertname"] == AlertName.EXHAUSTED]
    # Enforcement in the same app: growth blocked, support downgraded, other untouched.
    [line] = [ln for ln in log.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["growth"] == {"ok": False, "budget": "growth-daily", "action": "block"}, log[-2000:]
    assert result["support"]["ok"] and result["support"]["model"].startswith("gpt-4o-mini"), result
    assert result["other"]["ok"] and result["other"]["model"].startswith("gpt-4o")
    assert not result["other"]["model"].startswith("gpt-4o-mini")
