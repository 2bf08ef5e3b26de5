"""Structure of the "Self-hosted GPU cost" dashboard: panels, units, queries, import inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inferops.alerts import gpu_sources
from inferops.alerts.gpu_config import load_gpu_config, parse_gpu_config_text
from inferops.dashboards import lint
from inferops.dashboards.build import DASHBOARDS, GPU_DASHBOARD, iter_panels, iter_targets, to_dict
from inferops.dashboards.gpu import TITLE, UID, gpu_dashboard
from inferops.dashboards.lint import parse
from inferops.names import GPU_SERIES_LABELS, RecordingRules, all_label_names

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "gpu.example.yaml"


def _external_metrics() -> set[str]:
    out: set[str] = set()
    for cls in (gpu_sources.DCGM, gpu_sources.VLLM, gpu_sources.NIM, gpu_sources.TGI):
        out.update(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))
    return out


def _external_labels() -> set[str]:
    labels = {v for k, v in vars(gpu_sources.DCGMLabel).items() if k.isupper() and isinstance(v, str)}
    return labels | {gpu_sources.ENGINE_MODEL_LABEL}


@pytest.fixture(params=["default", "example"])
def dashboard(request) -> dict:
    config = None if request.param == "default" else load_gpu_config(EXAMPLE)
    return to_dict(gpu_dashboard(config))


def test_every_panel_has_title_description_unit_and_datasource(dashboard):
    assert dashboard["title"] == TITLE and dashboard["uid"]
    panels = list(iter_panels(dashboard))
    assert len(panels) >= 15
    for p in panels:
        assert p["title"] and p.get("description"), p
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit") or p.get("format")
        assert unit and unit != "none", f"{p['title']}: no unit"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
        assert p["targets"], p["title"]


def test_import_inputs_match_the_datasources_used(dashboard):
    text = str(dashboard)
    used = set(re.findall(r"\$\{(DS_[A-Z_]+)\}", text))
    declared = {i["name"] for i in dashboard["__inputs"]}
    assert used == declared == {"DS_PROMETHEUS"}
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"


def test_queries_follow_the_linter_rules_and_name_only_known_series(dashboard):
    recorded = {r.name: set(r.labels) for r in RecordingRules.all()}
    external = _external_metrics()
    known_labels = all_label_names() | _external_labels() | set(GPU_SERIES_LABELS) | {"__name__"}
    for panel, target in iter_targets(dashboard):
        expr = target["expr"]
        q = parse(expr)
        assert q.selectors, expr
        for s in q.selectors:
            assert s.metric in recorded or s.metric in external, f"{panel['title']}: unknown series {s.metric}"
            if s.metric in gpu_sources.EXTERNAL_COUNTERS:
                assert s.function == "rate" and s.window == "$__rate_interval", \
                    f"{panel['title']}: counter {s.metric} outside rate(...[$__rate_interval])"
            if s.function == "rate":
                assert s.window == "$__rate_interval", expr
            for label, _, _ in s.matchers:
                assert label in known_labels, f"{panel['title']}: label {label}"
                if s.metric in recorded:
                    assert label in recorded[s.metric], f"{panel['title']}: {s.metric} has no label {label}"
        for label in q.grouping_labels:
            assert label in known_labels, f"{panel['title']}: grouping label {label}"
        # The dashboards' shared linter agrees (it runs on every dashboard in test_dashboards_structure;
        # here also on the example config's NIM and TGI panels, which the default build leaves out).
        assert lint.check(expr) == [], f"{panel['title']}: {lint.check(expr)}"
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            assert lint.check_label_values(var["query"]) == [], var["name"]


def test_part_of_inferops_dashboards_build():
    assert DASHBOARDS[GPU_DASHBOARD] is gpu_dashboard
    assert to_dict(DASHBOARDS[GPU_DASHBOARD]())["uid"] == UID == "inferops-gpu"


def test_panels_cover_the_issue(dashboard):
    titles = " | ".join(p["title"] for p in iter_panels(dashboard)).lower()
    for words in ("cost by cluster", "cost by namespace", "idle gpu cost", "served model", "utilisation",
                  "memory", "per 1m tokens", "tokens/s per gpu", "kv-cache", "queue depth", "by team"):
        assert words in titles, words


def test_config_without_power_or_comparable_drops_those_panels():
    config = parse_gpu_config_text("""
gpu:
  prices: [{usd_per_hour: 2.0}]
  serving: [{engine: vllm, model: m}]
""")
    titles = {p["title"] for p in iter_panels(to_dict(gpu_dashboard(config)))}
    assert "Energy cost" not in titles and "Savings vs API (USD/h)" not in titles
    assert "Tokens/s per GPU" in titles and "KV-cache usage (vllm)" in titles
    full = {p["title"] for p in iter_panels(to_dict(gpu_dashboard(None)))}
    assert "Energy cost" in full and "Savings vs API (USD/h)" in full
