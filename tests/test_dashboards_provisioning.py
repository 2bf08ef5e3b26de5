"""Grafana provisioning files (deploy/grafana/provisioning): in sync, wired together, names from the contract.

No Grafana runs here; the trace-to-metrics queries run against a real Prometheus in
tests/test_dashboards_prometheus.py.
"""

from __future__ import annotations

import yaml

from inferops.dashboards import lint, provisioning
from inferops.names import Metrics, all_span_attributes

DEPLOY = "deploy/grafana/provisioning"


def test_committed_provisioning_is_current(repo_root):
    for rel, text in provisioning.files().items():
        path = repo_root / DEPLOY / rel
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale: run `inferops dashboards provisioning --out {DEPLOY}`")


def test_cli_writes_provisioning(run_cli, tmp_path, repo_root):
    status, out, err = run_cli("dashboards", "provisioning", "--out", str(tmp_path))
    assert status == 0, err
    for rel in provisioning.files():
        assert (tmp_path / rel).read_text() == (repo_root / DEPLOY / rel).read_text()


def _datasources(repo_root) -> dict[str, dict]:
    data = yaml.safe_load((repo_root / DEPLOY / "datasources/inferops.yaml").read_text())
    assert data["apiVersion"] == 1
    return {d["type"]: d for d in data["datasources"]}


def test_prometheus_exemplars_link_trace_id_to_tempo(repo_root):
    ds = _datasources(repo_root)
    [dest] = ds["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert dest["name"] == "trace_id" and dest["datasourceUid"] == ds["tempo"]["uid"]
    assert ds["prometheus"]["isDefault"] is True


def test_tempo_traces_to_metrics_back_to_prometheus(repo_root):
    ds = _datasources(repo_root)
    t2m = ds["tempo"]["jsonData"]["tracesToMetrics"]
    assert t2m["datasourceUid"] == ds["prometheus"]["uid"]
    assert ds["tempo"]["jsonData"]["serviceMap"]["datasourceUid"] == ds["prometheus"]["uid"]
    for tag in t2m["tags"]:
        assert tag["key"] in all_span_attributes()
        assert tag["value"] in Metrics.COST.labels and tag["value"] in Metrics.TOKENS.labels
    assert t2m["queries"]
    for query in t2m["queries"]:
        assert "{$__tags}" in query["query"]
        assert lint.check(query["query"].replace("{$__tags}", "")) == []


def test_alertmanager_datasource(repo_root):
    am = _datasources(repo_root)["alertmanager"]
    assert am["jsonData"]["implementation"] == "prometheus" and am["url"].startswith("http")


def test_dashboard_provider_points_at_a_file_path(repo_root):
    data = yaml.safe_load((repo_root / DEPLOY / "dashboards/inferops.yaml").read_text())
    [provider] = data["providers"]
    assert data["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"] == provisioning.DASHBOARDS_PATH
