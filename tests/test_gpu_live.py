"""GPU cost end to end: a fixture exporter scraped by a real Prometheus 2.42 running the generated rules.

The fixture serves, on 127.0.0.1, what dcgm-exporter, a vLLM server and an
instrumented app expose (real metric and label names from
``inferops.alerts.gpu_sources`` / ``inferops.names``), with counters that grow
with wall-clock time: a GPU reported with ``Hostname`` and Kubernetes labels,
one with the newer ``hostname`` and no Kubernetes labels, and a MIG instance
next to its parent's whole-GPU series. Prometheus scrapes it every second and
evaluates the rules every second; the test then checks the recorded costs
against hand-worked figures, runs every query of the GPU dashboard, and waits
for ``InferopsGPUIdleSpend`` to fire (``for:`` shortened with ``for_overrides``).
"""

from __future__ import annotations

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from inferops.alerts.gpu_config import parse_gpu_config_text
from inferops.alerts.gpu_rules import IDLE_ALERT, gpu_rule_groups
from inferops.alerts.gpu_sources import DCGM, VLLM
from inferops.dashboards.build import iter_targets, to_dict
from inferops.dashboards.gpu import gpu_dashboard, variable_names
from inferops.names import Label, Metrics, RecordingRules
from inferops.testing import PrometheusServer

PROMETHEUS = shutil.which("prometheus")
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian package) not installed")]
R = RecordingRules

CONFIG = """
gpu:
  rate_window: 10s
  prices:
    - node: node-a
      usd_per_hour: 4.0
    - model: NVIDIA H100 80GB HBM3
      usd_per_hour: 3.0
    - cluster: prod
      usd_per_hour: 2.0
  power: {usd_per_kwh: 0.2}
  serving:
    - engine: vllm
      model: llama-8b
      provider: vllm
      team: platform
      comparable_api: {provider: openai, model: gpt-4o-mini}
      estimate: {usd_per_1m_tokens: 0.5}
  teams:
    - team: platform
      project: serving
      namespaces: [llm]
  alerts:
    idle: {usd_per_day: 20, utilisation_below: 0.2, for: 2h}
"""

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
GPU_A = f'gpu="0",UUID="GPU-a",device="nvidia0",modelName="{H100}",Hostname="node-a",container="vllm",namespace="llm",pod="vllm-0"'
GPU_B = f'gpu="0",UUID="GPU-b",device="nvidia0",modelName="{H100}",hostname="node-b"'
GPU_C_MIG = (f'gpu="0",UUID="GPU-c",device="nvidia0",modelName="{A100}",Hostname="node-c",GPU_I_PROFILE="3g.40gb",'
             'GPU_I_ID="1",container="train",namespace="research",pod="trainer-0"')
GPU_C = f'gpu="0",UUID="GPU-c",device="nvidia0",modelName="{A100}",Hostname="node-c"'

#: Token rates per second the fixture's counters grow at.
PROMPT_PER_S, GENERATION_PER_S = 1000.0, 500.0
TEAM_TOKENS_PER_S = {("search", "ranking"): 30.0, ("ads", "bidding"): 10.0}
ENERGY_MJ_PER_S = 1_000_000.0  # 1 kW


class FixtureExporter:
    """dcgm-exporter, vLLM and app exposition text whose counters grow with time."""

    def __init__(self) -> None:
        self.t0 = time.time()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = exporter.render(self.path).encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def render(self, path: str) -> str:
        dt = time.time() - self.t0
        if path == "/dcgm/metrics":
            return "\n".join([
                f"# TYPE {DCGM.GR_ENGINE_ACTIVE} gauge",
                f"{DCGM.GR_ENGINE_ACTIVE}{{{GPU_A}}} 0.9",
                f"{DCGM.GR_ENGINE_ACTIVE}{{{GPU_C_MIG}}} 0.5",
                f"# TYPE {DCGM.GPU_UTIL} gauge",
                f"{DCGM.GPU_UTIL}{{{GPU_A}}} 90",
                f"{DCGM.GPU_UTIL}{{{GPU_B}}} 5",
                f"{DCGM.GPU_UTIL}{{{GPU_C}}} 40",
                f"# TYPE {DCGM.FB_USED} gauge",
                f"{DCGM.FB_USED}{{{GPU_A}}} 60000",
                f"{DCGM.FB_USED}{{{GPU_B}}} 1000",
                f"{DCGM.FB_USED}{{{GPU_C_MIG}}} 20000",
                f"{DCGM.FB_USED}{{{GPU_C}}} 20000",
                f"# TYPE {DCGM.FB_FREE} gauge",
                f"{DCGM.FB_FREE}{{{GPU_A}}} 21000",
                f"{DCGM.FB_FREE}{{{GPU_B}}} 80000",
                f"{DCGM.FB_FREE}{{{GPU_C}}} 61000",
                f"# TYPE {DCGM.TOTAL_ENERGY} counter",
                f"{DCGM.TOTAL_ENERGY}{{{GPU_A}}} {5e9 + ENERGY_MJ_PER_S * dt:.3f}",
                "",
            ])
        if path == "/vllm/metrics":
            labels = 'model_name="llama-8b"'
            return "\n".join([
                f"# TYPE {VLLM.PROMPT_TOKENS} counter",
                f"{VLLM.PROMPT_TOKENS}{{{labels}}} {PROMPT_PER_S * dt:.3f}",
                f"# TYPE {VLLM.GENERATION_TOKENS} counter",
                f"{VLLM.GENERATION_TOKENS}{{{labels}}} {GENERATION_PER_S * dt:.3f}",
                f"# TYPE {VLLM.KV_CACHE_USAGE} gauge",
                f"{VLLM.KV_CACHE_USAGE}{{{labels}}} 0.42",
                f"# TYPE {VLLM.REQUESTS_WAITING} gauge",
                f"{VLLM.REQUESTS_WAITING}{{{labels}}} 3",
                f"# TYPE {VLLM.REQUESTS_RUNNING} gauge",
                f"{VLLM.REQUESTS_RUNNING}{{{labels}}} 5",
                "",
            ])
        if path == "/app/metrics":
            name = Metrics.TOKENS.prom_name
            lines = [f"# TYPE {name} counter"]
            for (team, project), per_s in TEAM_TOKENS_PER_S.items():
                lines.append(f'{name}{{{Label.PROVIDER}="vllm",{Label.MODEL}="llama-8b",{Label.TEAM}="{team}",'
                             f'{Label.PROJECT}="{project}",{Label.TOKEN_TYPE}="input"}} {per_s * dt:.3f}')
            lines.append(f'{name}{{{Label.PROVIDER}="openai",{Label.MODEL}="gpt-4o-mini",{Label.TEAM}="ads",'
                         f'{Label.PROJECT}="bidding",{Label.TOKEN_TYPE}="input"}} {500 * dt:.3f}')
            return "\n".join(lines) + "\n"
        return ""


def wait_for_series(prom: PrometheusServer, expr: str, count: int = 1, timeout: float = 60.0) -> list[dict]:
    """The result of ``expr`` once it has ``count`` series (a query error fails at once)."""
    return prom.wait_for(lambda: prom.query(expr), until=lambda result: len(result) >= count, timeout=timeout,
                         what=f"{expr}: {count} series")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-prom")
    config = parse_gpu_config_text(CONFIG, "live-gpu.yaml")
    groups = gpu_rule_groups(config, for_overrides={IDLE_ALERT: "5s"})
    (tmp / "gpu-rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000))
    exporter = FixtureExporter()
    target = f"127.0.0.1:{exporter.port}"
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "gpu-rules.yaml")],
        "scrape_configs": [
            {"job_name": "dcgm", "metrics_path": "/dcgm/metrics",
             "static_configs": [{"targets": [target], "labels": {"cluster": "prod"}}]},
            # What Kubernetes service discovery + the usual relabelling put on a vLLM pod's series.
            {"job_name": "vllm", "metrics_path": "/vllm/metrics",
             "static_configs": [{"targets": [target],
                                 "labels": {"cluster": "prod", "namespace": "llm", "pod": "vllm-0"}}]},
            {"job_name": "app", "metrics_path": "/app/metrics", "static_configs": [{"targets": [target]}]},
        ],
    }
    try:
        with PrometheusServer(prom_config, workdir=tmp) as prom:
            # rate() only gives the true slope once its 10s window lies inside the series' life
            # (before that it extrapolates at most half a scrape interval): wait for 13s of samples,
            # then two more rule evaluations.
            for counter in (DCGM.TOTAL_ENERGY, VLLM.PROMPT_TOKENS, Metrics.TOKENS.prom_name):
                wait_for_series(prom, f"count_over_time({counter}[13s]) >= 12")
            time.sleep(2.5)
            wait_for_series(prom, R.MODEL_TEAM_SELF_HOSTED_COST.name, 2)
            wait_for_series(prom, R.MODEL_COMPARABLE_API_COST_PER_1M.name, 1)
            yield config, prom
    finally:
        exporter.close()


def _values(result: list[dict], key: str) -> dict[str, float]:
    return {r["metric"].get(key, ""): float(r["value"][1]) for r in result}


def test_recorded_gpu_costs_match_hand_worked_figures(live):
    _, prom = live
    # Hardware: node-a by node price 4.0; node-b (lowercase hostname) by model price 3.0;
    # the MIG instance 3/7 of the cluster price 2.0. The MIG parent is not priced again.
    hardware = prom.query(R.GPU_HARDWARE_COST.name)
    assert _values(hardware, "Hostname") == pytest.approx({"node-a": 4.0, "node-b": 3.0, "node-c": 2.0 * 3 / 7})
    by_host = {r["metric"]["Hostname"]: r["metric"] for r in hardware}
    assert by_host["node-b"]["namespace"] == "unallocated" and by_host["node-b"]["team"] == "unattributed"
    assert by_host["node-c"]["GPU_I_ID"] == "1"
    assert by_host["node-a"]["team"] == "platform" and by_host["node-a"]["project"] == "serving"
    # Energy: 1e6 mJ/s = 1 kW x 0.2 USD/kWh = 0.2 USD/h (a rate: within 2 %).
    energy = _values(prom.query(R.GPU_ENERGY_COST.name), "Hostname")
    assert energy == pytest.approx({"node-a": 0.2}, rel=0.02)
    # Idle = hardware x (1 - utilisation): 4 x 0.1, 3 x 0.95 (GPU_UTIL 5 %), 0.857 x 0.5.
    idle = _values(prom.query(R.GPU_IDLE_COST.name), "Hostname")
    assert idle == pytest.approx({"node-a": 0.4, "node-b": 2.85, "node-c": 2.0 * 3 / 7 * 0.5})
    node = _values(prom.query(R.NODE_GPU_COST.name), "Hostname")
    assert node == pytest.approx({"node-a": 4.2, "node-b": 3.0, "node-c": 2.0 * 3 / 7}, rel=0.01)
    namespaces = _values(prom.query(R.NAMESPACE_GPU_COST.name), "namespace")
    assert namespaces == pytest.approx({"llm": 4.2, "unallocated": 3.0, "research": 2.0 * 3 / 7}, rel=0.01)


def test_served_model_cost_per_million_tokens_and_team_split(live):
    _, prom = live
    tokens = {r["metric"]["token_type"]: float(r["value"][1]) for r in prom.query(R.MODEL_SERVED_TOKENS.name)}
    assert tokens == pytest.approx({"input": PROMPT_PER_S, "output": GENERATION_PER_S}, rel=0.02)
    model_cost = _values(prom.query(R.MODEL_GPU_COST.name), "model")
    assert model_cost == pytest.approx({"llama-8b": 4.2}, rel=0.01)
    # 4.2 USD/h / 3600 / 1500 tokens/s x 1e6 = 0.7778 USD per 1M tokens.
    per_1m = _values(prom.query(R.MODEL_SELF_HOSTED_COST_PER_1M.name), "model")
    assert per_1m == pytest.approx({"llama-8b": 4.2 / 3600 / 1500 * 1e6}, rel=0.03)
    # Same mix at gpt-4o-mini (0.15 in, 0.60 out): (1000 x 0.15 + 500 x 0.6) / 1500 = 0.30.
    api = _values(prom.query(R.MODEL_COMPARABLE_API_COST_PER_1M.name), "model")
    assert api == pytest.approx({"llama-8b": 0.30}, rel=0.02)
    # Team split by inferops' own token counter (provider vllm only): 30:10 -> 3/4 and 1/4 of 4.2.
    teams = _values(prom.query(R.MODEL_TEAM_SELF_HOSTED_COST.name), "team")
    assert teams == pytest.approx({"search": 4.2 * 0.75, "ads": 4.2 * 0.25}, rel=0.03)


def test_idle_alert_fires_in_the_live_run(live):
    _, prom = live
    firing = prom.wait_for(
        lambda: [a for a in prom.alerts() if a["labels"]["alertname"] == IDLE_ALERT and a["state"] == "firing"],
        timeout=60, what=f"{IDLE_ALERT} firing")
    assert len(firing) == 1, firing
    alert = firing[0]
    # Only GPU B idles (GPU A's idle share is 0.4 x 24 = 9.6 USD/day, under 20).
    assert alert["labels"]["namespace"] == "unallocated" and alert["labels"]["cluster"] == "prod"
    assert alert["labels"]["team"] == "unattributed" and alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) == pytest.approx(2.85 * 24)
    assert "68.40 USD/day" in alert["annotations"]["summary"]
    assert alert["annotations"]["runbook_url"].startswith("https://")


def _grafana_substitute(expr: str) -> str:
    """What Grafana sends for "All" with allValue .* and a 1s scrape interval."""
    for var in variable_names():
        expr = expr.replace(f"${var}", ".*")
    return expr.replace("$__rate_interval", "10s")


def test_every_gpu_dashboard_query_returns_data(live):
    config, prom = live
    dashboard = to_dict(gpu_dashboard(config))
    checked = 0
    for panel, target in iter_targets(dashboard):
        expr = _grafana_substitute(target["expr"])
        assert "$" not in expr, expr
        result = prom.query(expr)
        assert result, f"panel {panel['title']!r}: {expr} returned no series"
        checked += 1
    assert checked >= 20
