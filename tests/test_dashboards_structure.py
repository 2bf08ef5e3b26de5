"""Structure of the generated Grafana dashboards: contract, linter rules, import shape, links.

No Grafana runs here: these tests check the JSON Grafana's import API and
dashboard-linter consume. Every Prometheus query also runs against a real
Prometheus: the four API-cost dashboards in tests/test_dashboards_prometheus.py,
the GPU dashboard in tests/test_gpu_live.py.

Five dashboards: the rules every dashboard must meet are parametrized over
``DASHBOARDS``; the rules of issue 5 that only make sense for the API-cost
dashboards (team/project/feature/... variables, exemplars, Tempo, links between
the four) run on ``COST_DASHBOARDS``, and the GPU dashboard has its own
counterparts (cluster/namespace variables, no exemplars, links to and from the
overview). More GPU-specific checks: tests/test_gpu_dashboard.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inferops.alerts import gpu_sources
from inferops.alerts.gpu_config import load_gpu_config
from inferops.dashboards import common, gpu, lint, overview, promql, traceql
from inferops.dashboards.build import (
    COST_DASHBOARDS,
    DASHBOARDS,
    GENERATED_DIR,
    GPU_DASHBOARD,
    build_all,
    iter_panels,
    iter_targets,
    render,
    to_dict,
)
from inferops.names import Label, Metrics, RecordingRules

BOARDS = build_all()
BUILTIN_VARS = {"__all", "__range", "__rate_interval", "__interval", "__url_time_range", "__all_variables",
                "__value", "__data", "__field", "__series"}
VAR_REF = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)")
GPU_EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "gpu.example.yaml"
#: The filters of the API-cost dashboards (issue 5), in their chained order.
COST_FILTERS = ("environment", "team", "project", "feature", "provider", "model")


def _all_queries():
    for name, board in BOARDS.items():
        for panel, target in iter_targets(board):
            yield name, panel, target


def _var_names(board: dict) -> set[str]:
    return {v["name"] for v in board["templating"]["list"]}


# -- committed JSON and CLI -------------------------------------------------------------


def test_five_dashboards_with_distinct_uids():
    uids = {name: b["uid"] for name, b in BOARDS.items()}
    assert len(BOARDS) == 5 and len(set(uids.values())) == 5
    assert set(DASHBOARDS) == COST_DASHBOARDS | {GPU_DASHBOARD} and GPU_DASHBOARD not in COST_DASHBOARDS
    assert {uids[n] for n in COST_DASHBOARDS} == {common.UID_OVERVIEW, common.UID_CHARGEBACK, common.UID_MODELS,
                                                  common.UID_DRILLDOWN}
    assert uids[GPU_DASHBOARD] == common.UID_GPU == gpu.UID


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_title_tags_and_description(name):
    board = BOARDS[name]
    assert board["title"].startswith(common.TITLE_PREFIX) and len(board["title"]) > len(common.TITLE_PREFIX)
    assert common.TAG in board["tags"]  # the "inferops dashboards" dropdown lists dashboards by this tag
    assert len(board["description"]) > 40


def test_dashboard_titles_unique():
    titles = [b["title"] for b in BOARDS.values()]
    assert len(set(titles)) == len(titles)
    assert BOARDS[GPU_DASHBOARD]["title"] == gpu.TITLE and "Self-hosted GPU cost" in gpu.TITLE


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_committed_json_is_current(name):
    committed = GENERATED_DIR / name
    assert committed.exists(), f"{committed} missing: run `inferops dashboards build --out dashboards/generated`"
    assert committed.read_text() == render(BOARDS[name]), (
        f"{committed} is stale: run `inferops dashboards build --out dashboards/generated`")


def test_no_extra_committed_json():
    assert sorted(p.name for p in GENERATED_DIR.glob("*.json")) == sorted(DASHBOARDS)


def test_cli_build_writes_the_committed_files(run_cli, tmp_path):
    status, out, err = run_cli("dashboards", "build", "--out", str(tmp_path / "out"))
    assert status == 0, err
    for name in DASHBOARDS:
        assert (tmp_path / "out" / name).read_text() == (GENERATED_DIR / name).read_text()
    assert len(out.splitlines()) == len(DASHBOARDS)


def test_cli_build_refuses_a_file_as_out(run_cli, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    status, _, err = run_cli("dashboards", "build", "--out", str(f))
    assert status == 2 and "expected a directory" in err


def test_cli_build_gpu_tailors_only_the_gpu_dashboard(run_cli, tmp_path):
    status, out, err = run_cli("dashboards", "build", "--out", str(tmp_path), "--gpu", str(GPU_EXAMPLE))
    assert status == 0, err
    assert len(out.splitlines()) == len(DASHBOARDS)
    for name in COST_DASHBOARDS:
        assert (tmp_path / name).read_text() == (GENERATED_DIR / name).read_text()
    tailored = (tmp_path / GPU_DASHBOARD).read_text()
    assert tailored == render(to_dict(gpu.gpu_dashboard(load_gpu_config(GPU_EXAMPLE))))
    assert tailored != (GENERATED_DIR / GPU_DASHBOARD).read_text()
    titles = {p["title"] for p in iter_panels(json.loads(tailored))}
    assert {"Queue depth (vllm)", "Queue depth (nim)", "Queue depth (tgi)"} <= titles  # the example's engines


def test_cli_build_gpu_without_power_drops_the_energy_panels(run_cli, tmp_path):
    cfg = tmp_path / "gpu.yaml"
    cfg.write_text("gpu:\n  prices: [{usd_per_hour: 2.0}]\n  serving: [{engine: vllm, model: m}]\n")
    status, _, err = run_cli("dashboards", "build", "--out", str(tmp_path / "out"), "--gpu", str(cfg))
    assert status == 0, err
    titles = {p["title"] for p in iter_panels(json.loads((tmp_path / "out" / GPU_DASHBOARD).read_text()))}
    assert "GPU cost by cluster" in titles
    assert not titles & {"Energy cost", "GPU power draw", "Savings vs API (USD/h)"}


def test_cli_build_gpu_bad_config_names_file_line_and_field(run_cli, tmp_path):
    cfg = tmp_path / "gpu.yaml"
    cfg.write_text("gpu:\n  prices:\n    - usd_per_hour: -1\n")
    status, _, err = run_cli("dashboards", "build", "--out", str(tmp_path / "out"), "--gpu", str(cfg))
    assert status == 1
    assert f"{cfg}:3" in err and "usd_per_hour" in err and "-1" in err
    assert not (tmp_path / "out").exists()  # nothing written from a bad config
    status, _, err = run_cli("dashboards", "build", "--out", str(tmp_path / "out"), "--gpu",
                             str(tmp_path / "missing.yaml"))
    assert status == 1 and "missing.yaml" in err and "not found" in err


# -- import shape -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_import_shape(name):
    board = BOARDS[name]
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    assert board["id"] is None  # import creates a new dashboard
    assert board["panels"] and not board["rows"]
    text = json.dumps(board)
    used = set(re.findall(r"\$\{(DS_[A-Z0-9_]+)\}", text))
    declared = {i["name"] for i in board["__inputs"]}
    assert used == declared, f"__inputs {declared} != ${{DS_...}} used {used}"
    for i in board["__inputs"]:
        assert i["type"] == "datasource" and i["pluginId"] in ("prometheus", "tempo")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_gridpos_inside_grid_and_not_overlapping(name):
    cells: set[tuple[int, int]] = set()
    for panel in iter_panels(BOARDS[name]):
        g = panel["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and g["w"] > 0 and g["h"] > 0
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (cells & mine), f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_unique(name):
    ids = [p["id"] for p in iter_panels(BOARDS[name])]
    assert all(ids) and len(ids) == len(set(ids))


# -- panels -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_has_datasource_title_description_unit(name):
    board = BOARDS[name]
    variables = _var_names(board)
    for panel in iter_panels(board):
        title = panel.get("title")
        assert title, panel
        assert panel.get("description") and len(panel["description"]) > 20, title
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit, f"{title}: no unit"
        ds = panel["datasource"]
        assert ds["type"] in ("prometheus", "tempo"), title
        m = re.fullmatch(r"\$\{(\w+)\}", ds["uid"])
        assert m and m.group(1) in variables, f"{title}: datasource not templated ({ds})"  # linter rule
        assert panel["targets"], title
        for t in panel["targets"]:
            assert t["datasource"] == ds, f"{title}: target datasource differs from the panel's"


MONEY_WORDS = ("spend", "$", "cost", "usd", "saving", "saved")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_money_panels_are_usd(name):
    money = [p for p in iter_panels(BOARDS[name])
             if any(w in p["title"].lower() for w in MONEY_WORDS) and "share" not in p["title"].lower()]
    assert len(money) >= 2
    for p in money:
        assert p["fieldConfig"]["defaults"]["unit"] == common.USD, p["title"]


def test_money_panels_counted_across_dashboards():
    titles = [p["title"] for b in BOARDS.values() for p in iter_panels(b)
              if any(w in p["title"].lower() for w in MONEY_WORDS) and "share" not in p["title"].lower()]
    assert len(titles) >= 35
    assert "Idle GPU cost by namespace" in titles and "Spend in range" in titles


def test_bargauge_written_in_modern_shape():
    gauges = [p for b in BOARDS.values() for p in iter_panels(b) if p["type"] == "bargauge"]
    assert gauges
    for p in gauges:
        assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
        assert p["fieldConfig"]["defaults"]["unit"] == p["options"]["fieldOptions"]["defaults"]["unit"]


# -- queries: contract and linter rules ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_prometheus_query_meets_contract_and_linter_rules(name):
    """Known series only (contract, recording rules, gpu_sources), labels of those series,
    counters only in rate/increase, rate over $__rate_interval (grafana/dashboard-linter)."""
    problems = []
    count = 0
    for panel, target in iter_targets(BOARDS[name]):
        if target["datasource"]["type"] != "prometheus":
            continue
        count += 1
        for p in lint.check(target["expr"]):
            problems.append(f"{name} / {panel['title']}: {p}")
    assert count >= 4
    assert not problems, "\n".join(problems)


def test_query_count_across_dashboards():
    exprs = [t for _, _, t in _all_queries() if t["datasource"]["type"] == "prometheus"]
    assert len(exprs) >= 100  # 75 API-cost (8 of them model routing) + 26 GPU


def test_the_linter_rejects_what_it_should():
    cost = Metrics.COST.prom_name
    assert lint.check(f"sum({cost})")  # counter outside rate/increase
    assert lint.check(f"sum(rate({cost}[5m]))")  # not $__rate_interval
    assert lint.check("sum(rate(inferops_dollars_total[$__rate_interval]))")  # unknown metric
    assert lint.check(f'sum(rate({cost}{{teem="a"}}[$__rate_interval]))')  # unknown label
    assert lint.check(f"sum by (tean) (rate({cost}[$__rate_interval]))")  # unknown grouping label
    assert lint.check(f'label_replace(rate({cost}[$__rate_interval]), "mdl", "$1", "model", "(.*)")')
    assert not lint.check(f'sum by (team) (rate({cost}{{team=~"$team"}}[$__rate_interval]))')


def test_the_linter_accepts_external_gpu_metrics_only_as_gpu_sources_defines_them():
    dcgm, vllm, L = gpu_sources.DCGM, gpu_sources.VLLM, gpu_sources.DCGMLabel
    cost = Metrics.COST.prom_name
    ok = [
        f'sum by ({L.HOSTNAME}, {L.GPU}) ({dcgm.FB_USED}{{{L.CLUSTER}=~"$cluster"}})',
        f"sum by ({L.CLUSTER}) (rate({dcgm.TOTAL_ENERGY}[$__rate_interval]))",
        f"sum by (model_name) (rate({vllm.PROMPT_TOKENS}[$__rate_interval]))",
        f"max by (model_name, {L.POD}) ({vllm.KV_CACHE_USAGE})",
        f"sum by ({L.NAMESPACE}, {L.POD}) (rate({gpu_sources.TGI.INPUT_LENGTH_SUM}[$__rate_interval]))",
        f"sum by ({L.CLUSTER}) ({RecordingRules.GPU_COST.name})",  # GPU recording rules carry dcgm labels
    ]
    for expr in ok:
        assert lint.check(expr) == [], expr
    bad = {
        "unknown dcgm metric": "sum(DCGM_FI_DEV_GPU_UTILISATION)",
        "vLLM counter without _total": "sum(rate(vllm:prompt_tokens[$__rate_interval]))",
        "removed vLLM gauge": "max(vllm:gpu_cache_usage_perc)",
        "external counter outside rate": f"sum({dcgm.TOTAL_ENERGY})",
        "external counter, rate not over $__rate_interval": f"sum(rate({vllm.GENERATION_TOKENS}[5m]))",
        "unknown label on a dcgm series": f'sum({dcgm.FB_USED}{{host="a"}})',
        "model_name is not a dcgm label": f'sum({dcgm.FB_USED}{{model_name="m"}})',
        "TGI has no model_name": f'sum({gpu_sources.TGI.QUEUE_SIZE}{{model_name="m"}})',
        "dcgm grouping label on an inferops counter only":
            f"sum by ({L.POD}) (rate({cost}[$__rate_interval]))",
        "dcgm label on an inferops counter": f'sum(rate({cost}{{{L.HOSTNAME}="a"}}[$__rate_interval]))',
        "grouping label no series has": f"sum by (gpu_index) ({dcgm.FB_USED})",
    }
    for why, expr in bad.items():
        assert lint.check(expr), why
    assert lint.external_metric(dcgm.TOTAL_ENERGY) and not lint.external_metric(cost)
    assert not lint.external_metric("DCGM_FI_DEV_GPU_UTILISATION")


def test_external_names_do_not_shadow_the_contract():
    """An external name equal to an inferops series would let its kind/labels leak into the contract check."""
    for cls in (gpu_sources.DCGM, gpu_sources.VLLM, gpu_sources.NIM, gpu_sources.TGI):
        for k, v in vars(cls).items():
            if k.isupper():
                assert lint.external_metric(v) and lint.contract_metric(v) is None, v
    assert gpu_sources.EXTERNAL_COUNTERS and all(lint.external_metric(c) for c in gpu_sources.EXTERNAL_COUNTERS)


def test_cost_dashboards_name_only_inferops_series_and_use_cost_counters():
    """The API-cost dashboards must work without any GPU exporter: no external series."""
    names = set()
    for name in COST_DASHBOARDS:
        for _, t in iter_targets(BOARDS[name]):
            if t["datasource"]["type"] == "prometheus":
                names |= lint.metric_names(t["expr"])
    assert Metrics.COST.prom_name in names and Metrics.TOKENS.prom_name in names
    assert Metrics.CACHE_SAVINGS.prom_name in names and Metrics.ERROR_COST.prom_name in names
    rules = {r.name for r in RecordingRules.all()}
    for n in names:
        assert n in rules or lint.contract_metric(n) is not None, n
        assert not lint.external_metric(n), n


def test_gpu_dashboard_names_gpu_rules_and_external_series_only():
    names = set()
    for _, t in iter_targets(BOARDS[GPU_DASHBOARD]):
        names |= lint.metric_names(t["expr"])
    rules = {r.name for r in RecordingRules.all()}
    external = {n for n in names if lint.external_metric(n)}
    assert names - external <= rules, names - external - rules
    assert RecordingRules.GPU_COST.name in names and RecordingRules.GPU_IDLE_COST.name in names
    assert {gpu_sources.DCGM.FB_USED, gpu_sources.DCGM.TOTAL_ENERGY, gpu_sources.VLLM.KV_CACHE_USAGE} <= external


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_reference_resolves(name):
    board = BOARDS[name]
    defined = _var_names(board)
    text = json.dumps(board["panels"]) + json.dumps(board["templating"]) + json.dumps(board["links"])
    for m in VAR_REF.finditer(text):
        var = m.group(1) or m.group(2)
        if var.startswith("DS_") or var.isdigit():
            continue  # import inputs; label_replace's "$1"
        assert var in defined or var in BUILTIN_VARS, f"{name}: ${var} is not a variable"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_query_variables_resolve_against_their_series(name):
    """Every dashboard: Prometheus datasource variable from the import input; every query variable is
    multi-select with All = .*, reads the templated datasource, and lists a label its series has."""
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    prom = variables[common.PROM_VAR]
    assert prom["type"] == "datasource" and prom["query"] == "prometheus"
    assert prom["current"]["value"] == "${DS_PROMETHEUS}"
    query_vars = [v for v in variables.values() if v["type"] == "query"]
    assert query_vars
    for v in query_vars:
        assert v["multi"] and v["includeAll"] and v["allValue"] == ".*", v["name"]
        assert v["datasource"] == common.PROM_DS and v["definition"] == v["query"], v["name"]
        assert lint.check_label_values(v["query"]) == [], v["name"]


def test_label_values_checker_rejects():
    req, gpu_cost = Metrics.REQUESTS.prom_name, RecordingRules.GPU_COST.name
    assert lint.check_label_values(f"label_values({req}, team)") == []
    assert lint.check_label_values(f"label_values({gpu_cost}, cluster)") == []
    assert lint.check_label_values(f"label_values({req}, cluster)")  # not a label of the requests counter
    assert lint.check_label_values(f'label_values({req}{{teem="a"}}, team)')
    assert lint.check_label_values("label_values(inferops_dollars_total, team)")
    assert lint.check_label_values(f"label_values({gpu_cost} / {gpu_cost}, cluster)")
    assert lint.check_label_values(f"query_result({req})")


@pytest.mark.parametrize("name", sorted(COST_DASHBOARDS))
def test_cost_dashboard_variables(name):
    """Issue 5: the six chained attribution filters over the requests counter (cost dashboards only)."""
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for var in COST_FILTERS:
        v = variables[var]
        assert lint.check(re.sub(r"^label_values\((.*), \w+\)$", r"count(\1)", v["query"])) == [
            f"counter {Metrics.REQUESTS.prom_name} outside rate()/increase() (target-counter-agg)"]
        assert re.fullmatch(r"label_values\(\w+\{.*\}, (\w+)\)", v["query"]).group(1) in \
            Metrics.REQUESTS.labels
    if board["uid"] == common.UID_DRILLDOWN:
        assert variables[common.TEMPO_VAR]["current"]["value"] == "${DS_TEMPO}"
        assert float(variables[common.THRESHOLD_VAR]["current"]["value"]) > 0


def test_gpu_dashboard_variables():
    """The GPU dashboard filters by cluster and namespace (dcgm labels on the GPU cost rule), not by the
    API-cost filters: its series carry no environment/feature/provider labels."""
    variables = {v["name"]: v for v in BOARDS[GPU_DASHBOARD]["templating"]["list"]}
    assert set(variables) == {common.PROM_VAR, *gpu.variable_names()}
    assert not set(variables) & {"environment", "feature", "provider", common.TEMPO_VAR}
    for var in gpu.variable_names():
        assert f"{RecordingRules.GPU_COST.name}" in variables[var]["query"]
        assert variables[var]["query"].endswith(f", {var})")
    # namespace is restricted by the chosen cluster, as the cost filters are by the ones before them
    assert '=~"$cluster"' in variables["namespace"]["query"]


# -- model routing (issue 9) --------------------------------------------------------------

ROUTING_METRICS = {Metrics.ROUTING_SAVINGS.prom_name, Metrics.ROUTING_POTENTIAL_SAVINGS.prom_name}


def _routing_panels() -> dict[str, dict]:
    board = BOARDS["inferops-overview.json"]
    return {p["title"]: p for p in iter_panels(board)
            if any(lint.metric_names(t["expr"]) & ROUTING_METRICS for t in p["targets"])}


def test_routing_section_on_the_overview_only():
    """Issue 9: savings and dry-run potential savings are shown, on the overview (and nowhere else)."""
    panels = _routing_panels()
    assert set(panels) == {
        "Saved by model routing", "Dry-run routing rules would have saved", "Spend avoided by routing (share)",
        "Routing savings by model pair ($ per hour)", "Routing savings by team and feature ($ per hour)",
        "Dry-run routing: potential savings by model pair ($ per hour)",
        "Routing savings by team, feature and model pair"}
    for name, board in BOARDS.items():
        if name != "inferops-overview.json":
            assert not any(lint.metric_names(t["expr"]) & ROUTING_METRICS
                           for _, t in iter_targets(board) if t["datasource"]["type"] == "prometheus"), name
    # The section sits below every other overview panel.
    others = [p for p in iter_panels(BOARDS["inferops-overview.json"]) if p["title"] not in panels]
    assert min(p["gridPos"]["y"] for p in panels.values()) >= max(p["gridPos"]["y"] + p["gridPos"]["h"]
                                                                  for p in others)
    for title, p in panels.items():
        assert p["description"].startswith("Model routing:"), title
        want = common.PERCENT if "share" in title else common.USD
        assert p["fieldConfig"]["defaults"]["unit"] == want, title


def test_routing_queries_filter_group_and_window_right():
    panels = _routing_panels()
    names_by_title = {}
    for title, p in panels.items():
        for t in p["targets"]:
            q = lint.parse(t["expr"])
            names_by_title.setdefault(title, set()).update(s.metric for s in q.selectors)
            for sel in q.selectors:  # every variable applied, on every selector
                assert {(label, "=~", f"${var}") for label, var in promql.FILTERS} <= set(sel.matchers), title
                want = "$__range" if t["instant"] else "$__rate_interval"
                assert sel.window == want, title
    by = {title: set(lint.parse(p["targets"][0]["expr"]).grouping_labels) for title, p in panels.items()}
    pair = {Label.REQUESTED_MODEL, Label.ROUTED_MODEL}
    assert by["Routing savings by model pair ($ per hour)"] == pair
    assert by["Dry-run routing: potential savings by model pair ($ per hour)"] == pair
    assert by["Routing savings by team and feature ($ per hour)"] == {Label.TEAM, Label.FEATURE}
    assert by["Routing savings by team, feature and model pair"] == {Label.TEAM, Label.FEATURE} | pair
    assert names_by_title["Dry-run routing rules would have saved"] == {
        Metrics.ROUTING_POTENTIAL_SAVINGS.prom_name}
    assert names_by_title["Saved by model routing"] == {Metrics.ROUTING_SAVINGS.prom_name}
    assert names_by_title["Routing savings by team, feature and model pair"] == ROUTING_METRICS
    legends = {t["legendFormat"] for p in panels.values() for t in p["targets"]}
    assert "{{requested_model}} -> {{routed_model}}" in legends and "{{team}} / {{feature}}" in legends


# -- exemplars, links -------------------------------------------------------------------


def test_exemplars_on_spend_and_token_panels():
    """Issue 5 (cost dashboards): exemplars on the overview's and drill-down's spend and token panels."""
    for uid in (common.UID_OVERVIEW, common.UID_DRILLDOWN):
        board = next(BOARDS[n] for n in COST_DASHBOARDS if BOARDS[n]["uid"] == uid)
        ex = [p["title"] for p, t in iter_targets(board) if t.get("exemplar")]
        assert any("Spend" in t for t in ex) and any("Tokens" in t for t in ex), ex


def test_gpu_dashboard_requests_no_exemplars():
    """GPU series are recording rules and exporter gauges/counters without trace exemplars."""
    targets = list(iter_targets(BOARDS[GPU_DASHBOARD]))
    assert targets and not any(t["exemplar"] for _, t in targets)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_links_keep_time_range_and_variables(name):
    board = BOARDS[name]
    assert board["links"]
    for link in board["links"]:
        assert link["keepTime"] and link["includeVars"], link
    for panel in iter_panels(board):
        for link in panel.get("links", []):
            assert "${__url_time_range}" in link["url"] and "${__all_variables}" in link["url"], link


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_links_reach_every_dashboard(name):
    """The tag dropdown lists every dashboard (all carry the tag); direct links point at real uids."""
    board = BOARDS[name]
    uids = {b["uid"] for b in BOARDS.values()}
    [dropdown] = [l for l in board["links"] if l["type"] == "dashboards"]
    assert dropdown["tags"] == [common.TAG] and all(common.TAG in b["tags"] for b in BOARDS.values())
    for link in board["links"]:
        if link["type"] == "link":
            assert re.fullmatch(r"/d/([\w-]+)", link["url"]).group(1) in uids, link


def test_overview_links_to_drilldown():
    overview_board = BOARDS["inferops-overview.json"]
    urls = [l["url"] for p in iter_panels(overview_board) for l in p.get("links", [])]
    urls += [l["url"] for l in overview_board["links"]]
    assert any(f"/d/{common.UID_DRILLDOWN}" in u for u in urls)


def test_gpu_dashboard_and_overview_link_each_other():
    overview_links = {l["url"]: l for l in BOARDS["inferops-overview.json"]["links"]}
    gpu_links = {l["url"]: l for l in BOARDS[GPU_DASHBOARD]["links"]}
    to_gpu, to_overview = overview_links[f"/d/{common.UID_GPU}"], gpu_links[f"/d/{common.UID_OVERVIEW}"]
    assert to_gpu["title"] == overview.GPU_LINK.title and "GPU" in to_gpu["title"]
    assert to_overview["title"] == gpu.OVERVIEW_LINK.title and "overview" in to_overview["title"]
    for link in (to_gpu, to_overview):
        assert link["keepTime"] and link["includeVars"] and link["tooltip"]
    # The other cost dashboards reach the GPU dashboard through the tag dropdown only.
    for name in COST_DASHBOARDS - {"inferops-overview.json"}:
        assert f"/d/{common.UID_GPU}" not in {l["url"] for l in BOARDS[name]["links"]}


# -- Tempo / TraceQL --------------------------------------------------------------------


def test_traceql_queries_parse_and_use_contract_attributes():
    tempo = {p["title"]: (p, t) for _, p, t in _all_queries() if t["datasource"]["type"] == "tempo"}
    assert set(tempo) == {"Most expensive requests (Tempo)", "Routed calls (Tempo)"}
    for panel, t in tempo.values():
        attrs = traceql.check(t["query"])
        assert "span.gen_ai.usage.cost" in attrs  # the contract spelled out
        assert t["queryType"] == "traceql"
        links = [prop["value"] for o in panel["fieldConfig"]["overrides"] for prop in o["properties"]
                 if prop["id"] == "links"]
        assert links and all(l[0]["internal"]["datasourceUid"] == "${tempo_datasource}" for l in links)
    assert "$threshold" in tempo["Most expensive requests (Tempo)"][1]["query"]
    # Routed calls: spans where the routing rule attribute is set, with requested/routed model and savings.
    routed = tempo["Routed calls (Tempo)"][1]["query"]
    assert routed.startswith("{ span.inferops.routing.rule != nil }")
    assert {"span.inferops.request.model_requested", "span.gen_ai.request.model",
            "span.inferops.routing.savings", "span.inferops.routing.dry_run"} <= set(traceql.check(routed))


@pytest.mark.parametrize("bad", [
    "{ span.gen_ai.usage.cost > }",
    "{ span.gen_ai.usage.cost > 1 ",
    "span.gen_ai.usage.cost > 1",
    "{ span.gen_ai.usage.cost >> 1 }",
    "{ span.gen_ai.usage.cost > 1 } | select(span.gen_ai.usage.cost",
    "{ span.gen_ai.usage.cost > 1 } | sort(span.gen_ai.usage.cost)",
    "{ span.gen_ai.usage.dollars > 1 }",  # not in the contract
    "{ resource.k8s.secret = \"x\" }",
    "{ span.inferops.routing.rules != nil }",  # not in the contract
    "{ span.inferops.routing.rule != }",
])
def test_traceql_checker_rejects(bad):
    with pytest.raises(traceql.TraceQLError):
        traceql.check(bad)


@pytest.mark.parametrize("good", [
    '{ span.gen_ai.usage.cost > 0.5 && span.inferops.team = "alpha" }',
    '{ (span.gen_ai.usage.cost >= $threshold || duration > 2s) && status = error } | count() > 2',
    '{ span.inferops.team =~ "${team:regex}" } && { resource.service.name = "api" } | avg(span.gen_ai.usage.cost) > 1',
    '{ }',
    '{ span.inferops.routing.rule != nil && span.inferops.routing.dry_run = true }',
])
def test_traceql_checker_accepts(good):
    traceql.check(good)
