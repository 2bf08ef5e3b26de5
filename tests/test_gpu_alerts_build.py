"""`inferops alerts build --gpu`: the GPU cost rules join the budget rules in every output."""

from __future__ import annotations

import subprocess

import yaml

from inferops.alerts.gpu_rules import ABOVE_API_ALERT, IDLE_ALERT
from inferops.names import RecordingRules

BUDGETS = "alerts/data/budgets.example.yaml"
GPU = "docs/examples/gpu.example.yaml"


def _alerts(groups: list[dict]) -> dict[str, dict]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def _records(groups: list[dict]) -> set[str]:
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def test_budgets_and_gpu_in_one_rule_file(run_cli, repo_root, tmp_path):
    status, out, err = run_cli("alerts", "build", "--budgets", str(repo_root / BUDGETS),
                               "--gpu", str(repo_root / GPU), "--out", str(tmp_path), "--for", f"{IDLE_ALERT}=7m")
    assert status == 0, err
    groups = yaml.safe_load((tmp_path / "prometheus-rules.yaml").read_text())["groups"]
    alerts = _alerts(groups)
    assert "InferopsBudgetExhausted" in alerts and IDLE_ALERT in alerts and ABOVE_API_ALERT in alerts
    assert alerts[IDLE_ALERT]["for"] == "7m"
    declared = {r.name for r in RecordingRules.all()}
    assert _records(groups) <= declared
    check = subprocess.run(["promtool", "check", "rules", str(tmp_path / "prometheus-rules.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    resource = yaml.safe_load((tmp_path / "prometheusrule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule"
    assert IDLE_ALERT in _alerts(resource["spec"]["groups"])
    # The per-token estimates of the served models, for in-process and OTLP pricing.
    status, out, err = run_cli("prices", "validate", str(tmp_path / "gpu-prices.yaml"))
    assert status == 0, err


def test_gpu_only_build_writes_rules_but_no_routes(run_cli, repo_root, tmp_path):
    status, out, err = run_cli("alerts", "build", "--gpu", str(repo_root / GPU), "--out", str(tmp_path))
    assert status == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["gpu-prices.yaml", "prometheus-rules.yaml", "prometheusrule.yaml"]
    groups = yaml.safe_load((tmp_path / "prometheus-rules.yaml").read_text())["groups"]
    assert "InferopsBudgetExhausted" not in _alerts(groups) and IDLE_ALERT in _alerts(groups)


def test_build_needs_budgets_or_gpu_and_reports_bad_gpu_file(run_cli, repo_root, tmp_path):
    status, _, err = run_cli("alerts", "build", "--out", str(tmp_path))
    assert status == 2 and "--budgets" in err and "--gpu" in err
    bad = tmp_path / "gpu.yaml"
    bad.write_text("gpu:\n  prices: 12\n")
    status, _, err = run_cli("alerts", "build", "--gpu", str(bad), "--out", str(tmp_path / "o"))
    assert status == 1 and f"{bad}:" in err
