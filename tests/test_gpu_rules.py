"""GPU cost rules: promtool check + promtool unit tests with hand-worked figures.

The series below use the real dcgm-exporter / vLLM names and labels: one GPU
reported with ``Hostname`` and Kubernetes labels, one reported with the newer
``hostname`` and no Kubernetes labels, one MIG instance (plus its parent's
whole-GPU series, which must not be priced twice). Every expected figure is
worked out by hand in the comments.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from inferops.alerts.gpu_config import load_gpu_config, parse_gpu_config_text
from inferops.alerts.gpu_rules import ABOVE_API_ALERT, IDLE_ALERT, gpu_rule_groups
from inferops.alerts.gpu_sources import DCGM, VLLM
from inferops.names import RecordingRules

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")

CONFIG = """
gpu:
  rate_window: 1m
  prices:
    - node: node-a                 # node beats the H100 model price
      usd_per_hour: 4.0
    - model: NVIDIA H100 80GB HBM3
      usd_per_hour: 3.0
    - cluster: prod                # the A100 MIG instance falls through to the cluster price
      usd_per_hour: 2.0
  power: {usd_per_kwh: 0.2}
  serving:
    - engine: vllm
      model: llama-8b
      provider: vllm
      team: platform
      project: serving
      comparable_api: {provider: openai, model: gpt-4o-mini}   # catalog: 0.15 in / 0.60 out per 1M
  teams:
    - team: platform
      project: serving
      namespaces: [llm]
  alerts:
    idle: {usd_per_day: 20, utilisation_below: 0.2, for: 2h}
    cost_above_api: {for: 30m}
"""

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
GPU_A = f'Hostname="node-a",cluster="prod",gpu="0",UUID="GPU-a",device="nvidia0",modelName="{H100}",namespace="llm",pod="vllm-0",container="vllm"'
GPU_B = f'hostname="node-b",cluster="prod",gpu="0",UUID="GPU-b",device="nvidia0",modelName="{H100}"'
GPU_C_MIG = (f'Hostname="node-c",cluster="prod",gpu="0",UUID="GPU-c",device="nvidia0",modelName="{A100}",'
             'GPU_I_ID="1",GPU_I_PROFILE="3g.40gb",namespace="research",pod="trainer-0",container="train"')
GPU_C_PARENT = f'Hostname="node-c",cluster="prod",gpu="0",UUID="GPU-c",device="nvidia0",modelName="{A100}"'
VLLM_POD = 'cluster="prod",namespace="llm",pod="vllm-0",model_name="llama-8b"'

INPUT_SERIES = [
    # GPU A: 90 % busy, 1 kW (60e6 mJ per minute = 1e6 mJ/s).
    (f"{DCGM.GR_ENGINE_ACTIVE}{{{GPU_A}}}", "0.9x200"),
    (f"{DCGM.FB_USED}{{{GPU_A}}}", "40000x200"),
    (f"{DCGM.TOTAL_ENERGY}{{{GPU_A}}}", "1000000000+60000000x200"),
    # GPU B: 5 % (DCGM_FI_DEV_GPU_UTIL is a percentage), no pod.
    (f"{DCGM.GPU_UTIL}{{{GPU_B}}}", "5x200"),
    (f"{DCGM.FB_USED}{{{GPU_B}}}", "100x200"),
    # GPU C: one MIG instance 3g.40gb at 50 %; the parent also reports whole-GPU memory.
    (f"{DCGM.GR_ENGINE_ACTIVE}{{{GPU_C_MIG}}}", "0.5x200"),
    (f"{DCGM.FB_USED}{{{GPU_C_MIG}}}", "20000x200"),
    (f"{DCGM.FB_USED}{{{GPU_C_PARENT}}}", "20000x200"),
    # ... and a whole-GPU utilisation that must not dilute the unallocated GPUs' average.
    (f"{DCGM.GPU_UTIL}{{{GPU_C_PARENT}}}", "40x200"),
    # vLLM on GPU A's pod: 1000 prompt + 500 generated tokens per second.
    (f"{VLLM.PROMPT_TOKENS}{{{VLLM_POD}}}", "0+60000x200"),
    (f"{VLLM.GENERATION_TOKENS}{{{VLLM_POD}}}", "0+30000x200"),
    # inferops' own token counter for calls to the self-hosted server: search 3/4, ads 1/4.
    ('inferops_tokens_total{provider="vllm",model="llama-8b",team="search",project="ranking",token_type="input"}',
     "0+300x200"),
    ('inferops_tokens_total{provider="vllm",model="llama-8b",team="ads",project="bidding",token_type="input"}',
     "0+100x200"),
    # A call to an API provider must not count as self-hosted tokens.
    ('inferops_tokens_total{provider="openai",model="llama-8b",team="ads",project="bidding",token_type="input"}',
     "0+900x200"),
]

R = RecordingRules
GPU_A_OUT = ('cluster="prod",Hostname="node-a",modelName="NVIDIA H100 80GB HBM3",gpu="0",UUID="GPU-a",'
             'namespace="llm",pod="vllm-0",container="vllm",team="platform",project="serving"')
GPU_B_OUT = ('cluster="prod",Hostname="node-b",modelName="NVIDIA H100 80GB HBM3",gpu="0",UUID="GPU-b",'
             'namespace="unallocated",pod="unallocated",team="unattributed",project="unattributed"')
GPU_C_OUT = ('cluster="prod",Hostname="node-c",modelName="NVIDIA A100-SXM4-80GB",gpu="0",UUID="GPU-c",'
             'GPU_I_ID="1",GPU_I_PROFILE="3g.40gb",namespace="research",pod="trainer-0",container="train",'
             'team="unattributed",project="unattributed"')

#: (expression, eval time, [(labels, hand-worked value)])
EXPECTED: list[tuple[str, str, list[tuple[str, float]]]] = [
    # Price: node-a 4.0 (node level); node-b 3.0 (model level); MIG 3/7 of the cluster price 2.0.
    (R.GPU_HARDWARE_COST.name, "10m",
     [(GPU_A_OUT, 4.0), (GPU_B_OUT, 3.0), (GPU_C_OUT, 2.0 * 3 / 7)]),
    (R.GPU_UTILISATION.name, "10m", [(GPU_A_OUT, 0.9), (GPU_B_OUT, 0.05), (GPU_C_OUT, 0.5)]),
    # Energy: 1e6 mJ/s = 1 kW x 0.2 USD/kWh = 0.2 USD/h (only GPU A reports energy).
    (R.GPU_ENERGY_COST.name, "10m", [(GPU_A_OUT, 0.2)]),
    (R.GPU_COST.name, "10m", [(GPU_A_OUT, 4.2), (GPU_B_OUT, 3.0), (GPU_C_OUT, 2.0 * 3 / 7)]),
    # Idle = hardware x (1 - utilisation): 4 x 0.1, 3 x 0.95, 0.857 x 0.5.
    (R.GPU_IDLE_COST.name, "10m",
     [(GPU_A_OUT, 4.0 * (1 - 0.9)), (GPU_B_OUT, 3.0 * (1 - 0.05)), (GPU_C_OUT, 2.0 * 3 / 7 * 0.5)]),
    (R.GPU_BUSY_COST.name, "10m", [(GPU_A_OUT, 4.0 * 0.9), (GPU_B_OUT, 3.0 * 0.05), (GPU_C_OUT, 2.0 * 3 / 7 * 0.5)]),
    (R.NODE_GPU_COST.name, "10m",
     [('cluster="prod",Hostname="node-a",modelName="NVIDIA H100 80GB HBM3"', 4.2),
      ('cluster="prod",Hostname="node-b",modelName="NVIDIA H100 80GB HBM3"', 3.0),
      ('cluster="prod",Hostname="node-c",modelName="NVIDIA A100-SXM4-80GB"', 2.0 * 3 / 7)]),
    (R.NAMESPACE_GPU_COST.name, "10m",
     [('cluster="prod",namespace="llm",team="platform",project="serving"', 4.2),
      ('cluster="prod",namespace="unallocated",team="unattributed",project="unattributed"', 3.0),
      ('cluster="prod",namespace="research",team="unattributed",project="unattributed"', 2.0 * 3 / 7)]),
    (R.MODEL_SERVED_TOKENS.name, "10m",
     [('model="llama-8b",token_type="input"', 1000.0), ('model="llama-8b",token_type="output"', 500.0)]),
    (R.MODEL_GPU_COST.name, "10m", [('model="llama-8b",engine="vllm"', 4.2)]),
    # 4.2 USD/h / 3600 s = 0.0011667 USD/s over 1500 tokens/s = 0.7778 USD per 1M tokens.
    (R.MODEL_SELF_HOSTED_COST_PER_1M.name, "10m", [('model="llama-8b"', 4.2 / 3600 / 1500 * 1e6)]),
    # Same mix at gpt-4o-mini: (1000 x 0.15 + 500 x 0.60) / 1500 = 0.30 USD per 1M.
    (R.MODEL_COMPARABLE_API_COST_PER_1M.name, "10m",
     [('model="llama-8b",comparable_provider="openai",comparable_model="gpt-4o-mini"', 0.30)]),
    # Team split by inferops' token counter (provider vllm only): 300:100.
    (R.MODEL_TEAM_SELF_HOSTED_COST.name, "10m",
     [('model="llama-8b",team="search",project="ranking"', 4.2 * 0.75),
      ('model="llama-8b",team="ads",project="bidding"', 4.2 * 0.25)]),
]


def _round_expr(expr: str) -> str:
    # promtool compares sample values exactly: compare at 1e-6 USD resolution instead.
    return f"round({expr}, 0.000001)"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _write_rules(tmp_path: Path, groups: list[dict]) -> Path:
    path = tmp_path / "gpu-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000))
    return path


def _unit_test_doc(config_alerts: list[dict], promql: list[dict]) -> dict:
    return {
        "rule_files": ["gpu-rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in INPUT_SERIES],
            "promql_expr_test": promql,
            "alert_rule_test": config_alerts,
        }],
    }


def _samples(rows: list[tuple[str, float]]) -> list[dict]:
    return [{"labels": "{" + labels + "}", "value": round(value, 6)} for labels, value in rows]


@pytest.fixture
def config():
    return parse_gpu_config_text(CONFIG, "test-gpu.yaml")


def test_generated_rules_pass_promtool_check(tmp_path):
    groups = gpu_rule_groups(load_gpu_config(Path(__file__).parent.parent / "docs/examples/gpu.example.yaml"))
    path = _write_rules(tmp_path, groups)
    result = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_recorded_series_is_declared_in_the_names_contract(config):
    declared = {r.name for r in RecordingRules.all()}
    records = {r["record"] for g in gpu_rule_groups(config) for r in g["rules"] if "record" in r}
    assert records, "no recording rules generated"
    assert records <= declared, records - declared
    # ... and every expression only reads declared recording rules (no typo'd intermediate series).
    for g in gpu_rule_groups(config):
        for rule in g["rules"]:
            for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+(?::[a-z0-9_]+)?\b", rule["expr"]):
                if name.startswith("vllm:"):
                    continue
                assert name in declared, f"{rule.get('record') or rule.get('alert')} reads undeclared {name}"


def test_recorded_costs_match_hand_worked_figures(tmp_path, config):
    _write_rules(tmp_path, gpu_rule_groups(config))
    promql = [{"expr": _round_expr(expr), "eval_time": at, "exp_samples": _samples(rows)}
              for expr, at, rows in EXPECTED]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(_unit_test_doc([], promql), sort_keys=False, width=10_000))
    result = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_when_they_should_and_not_before(tmp_path, config):
    _write_rules(tmp_path, gpu_rule_groups(config))
    idle_labels = {"alertname": IDLE_ALERT, "severity": "warning", "cluster": "prod", "namespace": "unallocated",
                   "pod": "unallocated", "team": "unattributed", "project": "unattributed"}
    above_labels = {"alertname": ABOVE_API_ALERT, "severity": "warning", "model": "llama-8b", "team": "platform",
                    "project": "serving", "engine": "vllm", "comparable_provider": "openai",
                    "comparable_model": "gpt-4o-mini"}
    alerts = [
        # GPU B idles from t=0 (2.85 USD/h idle = 68.40 USD/day > 20): pending until 2h.
        {"eval_time": "1h58m", "alertname": IDLE_ALERT, "exp_alerts": []},
        {"eval_time": "2h02m", "alertname": IDLE_ALERT, "exp_alerts": [{
            "exp_labels": idle_labels,
            "exp_annotations": {
                "summary": "Idle GPUs of unallocated/unallocated cost 68.40 USD/day",
                "description": ("GPUs held by pod unallocated in namespace unallocated (cluster prod, team "
                                "unattributed) stayed below 20% utilisation for 2h; their idle share costs 68.40 "
                                "USD/day, above the 20 USD/day threshold. Scale the deployment down, share the "
                                "GPU (MIG/time-slicing) or release it."),
                "runbook_url": "https://github.com/inferops/inferops/blob/main/docs/gpu.md#runbook",
            }}]},
        # 0.778 USD per 1M > 0.30 from the first rate (t=1m): pending 30m.
        {"eval_time": "29m", "alertname": ABOVE_API_ALERT, "exp_alerts": []},
        {"eval_time": "33m", "alertname": ABOVE_API_ALERT, "exp_alerts": [{
            "exp_labels": above_labels,
            "exp_annotations": {
                "summary": "Self-hosted llama-8b costs 0.778 USD per 1M tokens, more than openai/gpt-4o-mini",
                "description": ("vllm serving llama-8b cost 0.778 USD per 1M tokens (GPU cost / served tokens) for "
                                "30m, above what the same token mix costs at openai/gpt-4o-mini. Raise "
                                "utilisation (batch more traffic onto fewer GPUs) or move the traffic to the API."),
                "runbook_url": "https://github.com/inferops/inferops/blob/main/docs/gpu.md#runbook",
            }}]},
    ]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(_unit_test_doc(alerts, []), sort_keys=False, width=10_000))
    result = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_idle_alert_stays_quiet_below_the_daily_threshold(tmp_path):
    # Same GPUs, threshold 100 USD/day: GPU B's 68.40 USD/day idle is not enough.
    quiet = parse_gpu_config_text(CONFIG.replace("usd_per_day: 20", "usd_per_day: 100"), "quiet.yaml")
    _write_rules(tmp_path, gpu_rule_groups(quiet))
    alerts = [{"eval_time": "3h", "alertname": IDLE_ALERT, "exp_alerts": []}]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(_unit_test_doc(alerts, []), sort_keys=False, width=10_000))
    result = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_for_overrides_shorten_the_wait(config):
    groups = gpu_rule_groups(config, for_overrides={IDLE_ALERT: "5s"})
    fors = {r["alert"]: r["for"] for g in groups for r in g["rules"] if "alert" in r}
    assert fors == {IDLE_ALERT: "5s", ABOVE_API_ALERT: "30m"}
