"""`inferops reconcile`: provider exports (fixtures in their documented shapes) vs estimates in a real Prometheus.

Estimates (hourly samples 2026-10-19T22:00 .. 2026-10-22T02:00, window Oct 20-22):
openai gpt-4o/web 0.5 + 1.0 USD/h = 36/day (72), tokens 1100/h (26,400/day);
anthropic claude-sonnet-4-5/web 0.25/h = 6/day (12), 500 tokens/h (24,000);
aws.bedrock claude-3-5-haiku/web 0.1/h (4.8); azure gpt-4o-mini/lab 0.05/h (2.4);
vertex gemini-2.5-flash/lab 0.2/h (9.6).

Bills (tests/fixtures/billing): OpenAI 35 + 36 = 71 (usage 26,400 + 26,640 tokens);
Anthropic 500 + 300 + 200 cents = 10 USD (a web-search fee is not compared), usage
12,000 + 12,000 tokens; Bedrock 2.4 + 2.5 = 4.9 (an EC2 row and a tax row are not
compared); Azure 1.2 + 1.2; Vertex 4.8 + 4.8.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from inferops.processors.engine import CostEngine
from inferops.processors.reconcile import (
    parse_anthropic_costs,
    parse_anthropic_usage,
    parse_focus,
    parse_openai_costs,
    parse_openai_usage,
)
from test_report_prom import hourly, start_prometheus, ts

FIX = Path(__file__).parent / "fixtures" / "billing"
BASE = {"operation": "chat", "team": "t", "feature": "f", "environment": "prod", "service_name": "api", "job": "app"}
SECRET_OPENAI = "sk-admin-OPENAISECRET123"
SECRET_ANTHROPIC = "sk-ant-admin01-ANTHROPICSECRET456"


def history():
    start, end = ts(2026, 10, 19, 22), ts(2026, 10, 22, 2)
    n = (end - start) // 3600 + 1

    def call(provider, model, project):
        return {**BASE, "provider": provider, "model": model, "project": project}

    openai = call("openai", "gpt-4o", "web")
    claude = call("anthropic", "claude-sonnet-4-5", "web")
    return {
        "inferops_cost_usd": [
            ({**openai, "cost_type": "input"}, hourly(start, n, 0.0, 0.5)),
            ({**openai, "cost_type": "output"}, hourly(start, n, 0.0, 1.0)),
            ({**claude, "cost_type": "input"}, hourly(start, n, 0.0, 0.25)),
            ({**call("aws.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "web"), "cost_type": "input"},
             hourly(start, n, 0.0, 0.1)),
            ({**call("azure.ai.openai", "gpt-4o-mini", "lab"), "cost_type": "input"}, hourly(start, n, 0.0, 0.05)),
            ({**call("gcp.vertex_ai", "gemini-2.5-flash", "lab"), "cost_type": "input"}, hourly(start, n, 0.0, 0.2)),
        ],
        "inferops_tokens": [
            ({**openai, "token_type": "input", "usage_source": "provider"}, hourly(start, n, 0.0, 1000.0)),
            ({**openai, "token_type": "output", "usage_source": "provider"}, hourly(start, n, 0.0, 100.0)),
            ({**claude, "token_type": "input", "usage_source": "provider"}, hourly(start, n, 0.0, 500.0)),
        ],
    }


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = start_prometheus(tmp_path_factory, "reconcile", history())
    yield server
    server.stop()


WINDOW = ("--from", "2026-10-20", "--to", "2026-10-22")
MAPS = ("--project-map", "proj_web=web", "--project-map", "wrkspc_web=web")
EXPORTS = ("--openai-costs", str(FIX / "openai_costs_page1.json"), "--openai-costs", str(FIX / "openai_costs_page2.json"),
           "--openai-usage", str(FIX / "openai_usage_completions.json"),
           "--anthropic-costs", str(FIX / "anthropic_cost_report.json"),
           "--anthropic-usage", str(FIX / "anthropic_usage_report_messages.json"),
           "--focus", str(FIX / "focus_bedrock.csv"), "--focus", str(FIX / "focus_azure_openai.csv"),
           "--focus", str(FIX / "focus_vertex.csv"))


def load(name):
    return json.loads((FIX / name).read_text())


# -- parsers (no Prometheus) ----------------------------------------------------------


def test_parsers_read_the_documented_shapes():
    pm = {"proj_web": "web", "wrkspc_web": "web"}
    lines = parse_openai_costs([load("openai_costs_page1.json"), load("openai_costs_page2.json")], pm)
    assert [(ln.day, ln.model, ln.project, ln.cost_usd) for ln in lines] == [
        (ts(2026, 10, 20), "gpt-4o-2024-08-06", "web", 11.0), (ts(2026, 10, 20), "gpt-4o-2024-08-06", "web", 24.0),
        (ts(2026, 10, 21), "gpt-4o-2024-08-06", "web", 12.0), (ts(2026, 10, 21), "gpt-4o-2024-08-06", "web", 24.0)]
    usage = parse_openai_usage(load("openai_usage_completions.json"), pm)
    assert [(ln.input_tokens, ln.output_tokens) for ln in usage] == [(24000, 2400), (24000, 2640)]
    costs = parse_anthropic_costs(load("anthropic_cost_report.json"), pm)
    # Amounts are cents as decimal strings; the web-search fee is left out.
    assert [(ln.day, ln.cost_usd, ln.project) for ln in costs] == [
        (ts(2026, 10, 20), 5.0, "web"), (ts(2026, 10, 21), 3.0, "web"), (ts(2026, 10, 21), 2.0, "web")]
    au = parse_anthropic_usage(load("anthropic_usage_report_messages.json"), pm)
    assert [ln.input_tokens for ln in au] == [9000 + 2000 + 1000, 12000]
    engine = CostEngine()
    bedrock = parse_focus((FIX / "focus_bedrock.csv").read_text(), engine)
    assert [(ln.provider, ln.cost_usd, ln.project) for ln in bedrock] == [
        ("aws.bedrock", 2.4, "web"), ("aws.bedrock", 2.5, "web")]  # EC2 and tax rows skipped
    assert bedrock[0].model.endswith("anthropic.claude-3-5-haiku-20241022-v1:0")
    azure = parse_focus((FIX / "focus_azure_openai.csv").read_text(), engine)
    assert {(ln.provider, ln.project) for ln in azure} == {("azure.ai.openai", "lab")}
    assert azure[0].model == "gpt-4o-mini-0718"
    vertex = parse_focus((FIX / "focus_vertex.csv").read_text(), engine)
    assert {(ln.provider, ln.model) for ln in vertex} == {("gcp.vertex_ai", "gemini-2.5-flash")}


# -- end to end -------------------------------------------------------------------------


def _totals(doc):
    return {(t["provider"], t["model"], t["project"]): t for t in doc["totals"]}


@pytest.mark.e2e
def test_drift_per_provider_model_project_and_exit_status(run_cli, prom, tmp_path):
    prom_file = tmp_path / "drift.prom"
    status, out, err = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, *MAPS, *EXPORTS, "--format", "json",
                               "--textfile", str(prom_file))
    assert status == 1, err  # Anthropic is 20% off, beyond the 5% tolerance
    doc = json.loads(out)
    t = _totals(doc)
    o = t[("openai", "gpt-4o", "web")]
    assert (o["estimate_usd"], o["billed_usd"]) == (pytest.approx(72.0), pytest.approx(71.0))
    assert o["drift"] == pytest.approx(1 / 71)
    assert (o["estimate_tokens"], o["billed_tokens"]) == (52_800, 53_040)
    assert o["token_drift"] == pytest.approx(-240 / 53_040)
    a = t[("anthropic", "claude-sonnet-4-5", "web")]
    assert (a["estimate_usd"], a["billed_usd"], a["drift"]) == (pytest.approx(12.0), pytest.approx(10.0),
                                                                pytest.approx(0.2))
    assert (a["estimate_tokens"], a["billed_tokens"]) == (24_000, 24_000)
    b = t[("aws.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "web")]
    assert b["drift"] == pytest.approx((4.8 - 4.9) / 4.9)
    assert t[("azure.ai.openai", "gpt-4o-mini", "lab")]["drift"] == pytest.approx(0.0, abs=1e-9)
    assert t[("gcp.vertex_ai", "gemini-2.5-flash", "lab")]["drift"] == pytest.approx(0.0, abs=1e-9)
    assert [(x["provider"], x["model"]) for x in doc["breaches"]] == [("anthropic", "claude-sonnet-4-5")]
    daily = {(d["day"], d["provider"]): d for d in doc["daily"]}
    assert daily[("2026-10-20", "openai")]["drift"] == pytest.approx(1 / 35)
    assert daily[("2026-10-21", "openai")]["drift"] == pytest.approx(0.0, abs=1e-9)
    # The drift ratio as a metric for an alert, node-exporter textfile format.
    text = prom_file.read_text()
    assert "# TYPE inferops_billing_drift_ratio gauge" in text
    values = {}
    for line in text.splitlines():
        if line.startswith("inferops_billing_drift_ratio{"):
            labels, value = line.rsplit(" ", 1)
            values[labels] = float(value)
    assert values['inferops_billing_drift_ratio{model="claude-sonnet-4-5",project="web",provider="anthropic"}'] \
        == pytest.approx(0.2)
    assert len(values) == 5


@pytest.mark.e2e
def test_within_tolerance_exits_zero_and_table(run_cli, prom):
    status, out, err = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, *MAPS,
                               "--openai-costs", str(FIX / "openai_costs_page1.json"),
                               "--openai-costs", str(FIX / "openai_costs_page2.json"))
    assert status == 0, err
    assert "+1.41%" in out and "TOTAL" in out and "0 of 1 totals beyond tolerance" in out
    # Only the providers that were billed are compared.
    assert "anthropic" not in out
    status, out, _ = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, *MAPS, "--tolerance", "0.01",
                             "--openai-costs", str(FIX / "openai_costs_page1.json"),
                             "--openai-costs", str(FIX / "openai_costs_page2.json"), "--totals-only")
    assert status == 1 and "1 of 1 totals beyond tolerance" in out


def test_bad_exports_are_named(run_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"object": "page"}')
    status, _, err = run_cli("reconcile", "--prometheus", "http://127.0.0.1:1", *WINDOW, "--openai-costs", str(bad))
    assert status == 2 and f"{bad}: expected a page object" in err
    status, _, err = run_cli("reconcile", "--prometheus", "http://127.0.0.1:1", *WINDOW)
    assert status == 2 and "nothing to reconcile" in err


# -- the real fetch code path against a local server ----------------------------------


class _Provider(BaseHTTPRequestHandler):
    requests: list = []
    fail = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        type(self).requests.append((url.path, q, dict(self.headers)))
        auth_ok = (self.headers.get("Authorization") == f"Bearer {SECRET_OPENAI}"
                   if url.path.startswith("/v1/organization/")
                   else self.headers.get("x-api-key") == SECRET_ANTHROPIC
                   and self.headers.get("anthropic-version") == "2023-06-01")
        if type(self).fail or not auth_ok:
            key = self.headers.get("Authorization", "") or self.headers.get("x-api-key", "")
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}})
        pages = {
            "/v1/organization/costs": {None: "openai_costs_page1.json",
                                       "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=": "openai_costs_page2.json"},
            "/v1/organization/usage/completions": {None: "openai_usage_completions.json"},
            "/v1/organizations/cost_report": {None: "anthropic_cost_report.json"},
            "/v1/organizations/usage_report/messages": {None: "anthropic_usage_report_messages.json"},
        }.get(url.path)
        name = pages and pages.get(q.get("page", [None])[0])
        if not name:
            return self._send(404, {"error": {"message": "not found"}})
        self._send(200, load(name))

    def _send(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def provider_api():
    _Provider.requests = []
    _Provider.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.e2e
def test_fetch_paginates_with_admin_keys_and_matches_the_files(run_cli, prom, provider_api, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", SECRET_OPENAI)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", SECRET_ANTHROPIC)
    status, out, err = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, *MAPS, "--fetch", "openai,anthropic",
                               "--openai-base-url", provider_api, "--anthropic-base-url", provider_api,
                               "--format", "json", "--save-exports", str(tmp_path / "exports"))
    assert status == 1, err
    fetched = _totals(json.loads(out))
    status, out, _ = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, *MAPS, *EXPORTS[:10], "--format", "json")
    from_files = _totals(json.loads(out))
    assert fetched == from_files and len(fetched) == 2
    paths = [(p, q.get("page")) for p, q, _ in _Provider.requests]
    assert paths == [("/v1/organization/costs", None),
                     ("/v1/organization/costs", ["page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="]),
                     ("/v1/organization/usage/completions", None),
                     ("/v1/organizations/cost_report", None),
                     ("/v1/organizations/usage_report/messages", None)]
    q = _Provider.requests[0][1]
    assert q["start_time"] == [str(ts(2026, 10, 20))] and q["end_time"] == [str(ts(2026, 10, 22))]
    assert q["group_by"] == ["project_id", "line_item"] and q["bucket_width"] == ["1d"]
    q = _Provider.requests[4][1]
    assert q["starting_at"] == ["2026-10-20T00:00:00Z"] and q["group_by[]"] == ["model", "workspace_id"]
    saved = json.loads((tmp_path / "exports" / "openai-costs.json").read_text())
    assert len(saved) == 2
    assert SECRET_OPENAI not in out + err and SECRET_ANTHROPIC not in out + err


@pytest.mark.e2e
def test_fetch_errors_never_show_the_key(run_cli, prom, provider_api, monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", SECRET_OPENAI)
    _Provider.fail = True
    status, out, err = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, "--fetch", "openai",
                               "--openai-base-url", provider_api)
    assert status == 2
    assert "HTTP 401" in err and "Incorrect API key provided: Bearer ***" in err
    assert SECRET_OPENAI not in out + err
    monkeypatch.delenv("OPENAI_ADMIN_KEY")
    status, _, err = run_cli("reconcile", "--prometheus", prom.url, *WINDOW, "--fetch", "openai")
    assert status == 2 and "OPENAI_ADMIN_KEY" in err


def test_drift_of_an_unbilled_estimate_is_infinite():
    from inferops.processors.reconcile import DriftCell

    assert math.isinf(DriftCell(None, "openai", "m", "p", estimate_usd=1.0, billed_usd=0.0).drift)
    assert DriftCell(None, "openai", "m", "p", estimate_usd=1.0).drift is None
