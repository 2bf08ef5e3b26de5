"""Generated Alertmanager config (amtool) and Grafana rules (Ruler API, against a local HTTP server)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from inferops.alerts import cli as alerts_cli
from inferops.alerts.budgets import load_budgets
from inferops.alerts.rules import AlertName

AMTOOL = shutil.which("amtool")


@pytest.fixture
def built(tmp_path, repo_root, run_cli) -> Path:
    out = tmp_path / "out"
    status, stdout, err = run_cli("alerts", "build", "--budgets",
                                  str(repo_root / "alerts" / "data" / "budgets.example.yaml"), "--out", str(out))
    assert status == 0, err
    return out


def _amtool(*args: str) -> subprocess.CompletedProcess:
    assert AMTOOL, "amtool (Debian package prometheus-alertmanager) is required"
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_build_writes_every_output(built):
    for name in (alerts_cli.PROMETHEUS_RULES, alerts_cli.PROMETHEUS_RULE_RESOURCE, alerts_cli.ALERTMANAGER_FRAGMENT,
                 alerts_cli.ALERTMANAGER_CONFIG, alerts_cli.GRAFANA_RULES):
        assert (built / name).stat().st_size > 100, name
    resource = yaml.safe_load((built / alerts_cli.PROMETHEUS_RULE_RESOURCE).read_text())
    plain = yaml.safe_load((built / alerts_cli.PROMETHEUS_RULES).read_text())
    assert resource["kind"] == "PrometheusRule" and resource["spec"]["groups"] == plain["groups"]


def test_alertmanager_config_checks_and_routes_each_budget_to_its_receiver(built, repo_root):
    config = built / alerts_cli.ALERTMANAGER_CONFIG
    checked = _amtool("check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    budgets = load_budgets(repo_root / "alerts" / "data" / "budgets.example.yaml")
    for b in budgets.budgets:
        cases = [("warning", f"inferops-{b.name}")]
        cases.append(("critical", f"inferops-{b.name}-page" if b.receiver.pagerduty_routing_key_file
                      else f"inferops-{b.name}"))
        for severity, receiver in cases:
            for alert in (AlertName.THRESHOLD, AlertName.EXHAUSTED):
                r = _amtool("config", "routes", "test", f"--config.file={config}", f"--verify.receivers={receiver}",
                            f"alertname={alert}", f"budget={b.name}", f"team={b.team}", f"severity={severity}")
                assert r.returncode == 0, (b.name, severity, r.stdout, r.stderr)
    # A wrong expectation fails (the check can fail).
    r = _amtool("config", "routes", "test", f"--config.file={config}", "--verify.receivers=inferops-search-monthly",
                "alertname=InferopsBudgetExhausted", "budget=support-summaries-daily", "team=support",
                "severity=warning")
    assert r.returncode != 0
    # Non-inferops alerts go to the default receiver.
    r = _amtool("config", "routes", "test", f"--config.file={config}", "--verify.receivers=inferops-default",
                "alertname=HighCPU", "team=search")
    assert r.returncode == 0, r.stdout


def test_fragment_has_inhibition_and_no_secrets(built):
    frag = yaml.safe_load((built / alerts_cli.ALERTMANAGER_FRAGMENT).read_text())
    [inhibit] = frag["inhibit_rules"]
    assert inhibit["source_matchers"] == [f'alertname="{AlertName.EXHAUSTED}"']
    assert AlertName.THRESHOLD in inhibit["target_matchers"][0] and inhibit["equal"] == ["budget"]
    text = (built / alerts_cli.ALERTMANAGER_FRAGMENT).read_text()
    assert "routing_key_file: /etc/alertmanager/secrets/search-pagerduty-key" in text
    assert "routing_key:" not in text and "api_url:" not in text
    pagers = [r for r in frag["receivers"] if r["name"].endswith("-page")]
    assert [r["name"] for r in pagers] == ["inferops-search-monthly-page"]


class _FakeGrafana:
    """Speaks the documented Ruler API: POST /api/ruler/grafana/api/v1/rules/{namespace} -> 202."""

    def __init__(self, status: int = 202):
        self.requests: list[tuple[str, dict, dict]] = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, dict(self.headers), body))
                ok = (self.path.startswith("/api/ruler/grafana/api/v1/rules/")
                      and self.headers.get("Authorization") == "Bearer glsa_test"
                      and self.headers.get("Content-Type") == "application/json")
                code = status if ok else 400
                payload = json.dumps({"message": "rule group updated successfully" if code == 202 else "bad"})
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _check_ruler_group(body: dict) -> None:
    assert set(body) == {"name", "interval", "rules"}, "the Ruler API takes name, interval, rules"
    for rule in body["rules"]:
        assert set(rule) == {"for", "labels", "annotations", "grafana_alert"}
        ga = rule["grafana_alert"]
        assert ga["uid"].startswith("inferops-") and len(ga["uid"]) <= 40
        assert ga["condition"] == "C" and ga["no_data_state"] == "OK" and ga["exec_err_state"] == "Error"
        refs = {q["refId"]: q for q in ga["data"]}
        assert "C" in refs and refs["C"]["model"]["type"] == "math"
        queries = [q for q in ga["data"] if q["datasourceUid"] != "-100"]
        assert queries and all(isinstance(q["datasourceUid"], str) for q in queries)
        assert all(q["model"]["expr"].startswith("budget:inferops_") for q in queries)
        assert {"budget", "team", "project", "severity"} <= set(rule["labels"])


def test_apply_grafana_posts_the_ruler_api_shape(built, run_cli):
    fake = _FakeGrafana()
    try:
        status, out, err = run_cli("alerts", "apply-grafana", "--url", fake.url, "--token", "glsa_test",
                                   "--rules", str(built / alerts_cli.GRAFANA_RULES))
    finally:
        fake.close()
    assert status == 0, err
    assert len(fake.requests) == 4 and out.count(": 202") == 4
    paths = {p for p, _, _ in fake.requests}
    assert paths == {"/api/ruler/grafana/api/v1/rules/inferops-budgets"}
    for _, _, body in fake.requests:
        _check_ruler_group(body)
    titles = [r["grafana_alert"]["title"] for _, _, b in fake.requests for r in b["rules"]]
    assert any(t.startswith(AlertName.EXHAUSTED) for t in titles)
    assert any(t.startswith(AlertName.BURN_RATE) for t in titles)


def test_apply_grafana_reports_rejection(built, run_cli):
    fake = _FakeGrafana()
    try:
        status, out, err = run_cli("alerts", "apply-grafana", "--url", fake.url, "--token", "wrong",
                                   "--rules", str(built / alerts_cli.GRAFANA_RULES))
    finally:
        fake.close()
    assert status == 1 and "Grafana answered 400" in err
