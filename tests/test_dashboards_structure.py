"""Structure of the generated Grafana dashboards: contract, linter rules, import shape, links.

No Grafana runs here: these tests check the JSON Grafana's import API and
dashboard-linter consume. Every Prometheus query also runs against a real
Prometheus in tests/test_dashboards_prometheus.py.
"""

from __future__ import annotations

import json
import re

import pytest

from inferops.dashboards import common, lint, traceql
from inferops.dashboards.build import DASHBOARDS, GENERATED_DIR, build_all, iter_panels, iter_targets, render
from inferops.names import Metrics, RecordingRules

BOARDS = build_all()
BUILTIN_VARS = {"__all", "__range", "__rate_interval", "__interval", "__url_time_range", "__all_variables",
                "__value", "__data", "__field", "__series"}
VAR_REF = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)")


def _all_queries():
    for name, board in BOARDS.items():
        for panel, target in iter_targets(board):
            yield name, panel, target


def _var_names(board: dict) -> set[str]:
    return {v["name"] for v in board["templating"]["list"]}


# -- committed JSON and CLI -------------------------------------------------------------


def test_four_dashboards_with_distinct_uids():
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(BOARDS) == 4 and len(set(uids)) == 4
    assert {common.UID_OVERVIEW, common.UID_CHARGEBACK, common.UID_MODELS, common.UID_DRILLDOWN} == set(uids)


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


def test_money_panels_are_usd():
    money = [p for b in BOARDS.values() for p in iter_panels(b)
             if ("spend" in p["title"].lower() or "$" in p["title"] or "cost per request" in p["title"].lower())
             and "share" not in p["title"].lower()]
    assert len(money) >= 15
    for p in money:
        assert p["fieldConfig"]["defaults"]["unit"] == common.USD, p["title"]


def test_bargauge_written_in_modern_shape():
    gauges = [p for b in BOARDS.values() for p in iter_panels(b) if p["type"] == "bargauge"]
    assert gauges
    for p in gauges:
        assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
        assert p["fieldConfig"]["defaults"]["unit"] == p["options"]["fieldOptions"]["defaults"]["unit"]


# -- queries: contract and linter rules ---------------------------------------------------


def test_every_prometheus_query_meets_contract_and_linter_rules():
    problems = []
    count = 0
    for name, panel, target in _all_queries():
        if target["datasource"]["type"] != "prometheus":
            continue
        count += 1
        for p in lint.check(target["expr"]):
            problems.append(f"{name} / {panel['title']}: {p}")
    assert count >= 60
    assert not problems, "\n".join(problems)


def test_the_linter_rejects_what_it_should():
    cost = Metrics.COST.prom_name
    assert lint.check(f"sum({cost})")  # counter outside rate/increase
    assert lint.check(f"sum(rate({cost}[5m]))")  # not $__rate_interval
    assert lint.check("sum(rate(inferops_dollars_total[$__rate_interval]))")  # unknown metric
    assert lint.check(f'sum(rate({cost}{{teem="a"}}[$__rate_interval]))')  # unknown label
    assert lint.check(f"sum by (tean) (rate({cost}[$__rate_interval]))")  # unknown grouping label
    assert lint.check(f'label_replace(rate({cost}[$__rate_interval]), "mdl", "$1", "model", "(.*)")')
    assert not lint.check(f'sum by (team) (rate({cost}{{team=~"$team"}}[$__rate_interval]))')


def test_every_query_names_only_contract_metrics_and_uses_cost_counter():
    names = set()
    for _, _, t in _all_queries():
        if t["datasource"]["type"] == "prometheus":
            names |= lint.metric_names(t["expr"])
    assert Metrics.COST.prom_name in names and Metrics.TOKENS.prom_name in names
    assert Metrics.CACHE_SAVINGS.prom_name in names and Metrics.ERROR_COST.prom_name in names
    rules = {r.name for r in RecordingRules.all()}
    for n in names:
        assert n in rules or lint.contract_metric(n) is not None, n


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
def test_variables(name):
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for var in ("environment", "team", "project", "feature", "provider", "model"):
        v = variables[var]
        assert v["multi"] and v["includeAll"] and v["allValue"] == ".*"
        assert v["datasource"] == common.PROM_DS
        assert lint.check(re.sub(r"^label_values\((.*), \w+\)$", r"count(\1)", v["query"])) == [
            f"counter {Metrics.REQUESTS.prom_name} outside rate()/increase() (target-counter-agg)"]
        assert re.fullmatch(r"label_values\(\w+\{.*\}, (\w+)\)", v["query"]).group(1) in \
            Metrics.REQUESTS.labels
    assert variables[common.PROM_VAR]["current"]["value"] == "${DS_PROMETHEUS}"
    if board["uid"] == common.UID_DRILLDOWN:
        assert variables[common.TEMPO_VAR]["current"]["value"] == "${DS_TEMPO}"
        assert float(variables[common.THRESHOLD_VAR]["current"]["value"]) > 0


# -- exemplars, links -------------------------------------------------------------------


def test_exemplars_on_spend_and_token_panels():
    for uid in (common.UID_OVERVIEW, common.UID_DRILLDOWN):
        board = next(b for b in BOARDS.values() if b["uid"] == uid)
        ex = [p["title"] for p, t in iter_targets(board) if t.get("exemplar")]
        assert any("Spend" in t for t in ex) and any("Tokens" in t for t in ex), ex


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_links_keep_time_range_and_variables(name):
    board = BOARDS[name]
    assert board["links"]
    for link in board["links"]:
        assert link["keepTime"] and link["includeVars"], link
    for panel in iter_panels(board):
        for link in panel.get("links", []):
            assert "${__url_time_range}" in link["url"] and "${__all_variables}" in link["url"], link


def test_overview_links_to_drilldown():
    overview = next(b for b in BOARDS.values() if b["uid"] == common.UID_OVERVIEW)
    urls = [l["url"] for p in iter_panels(overview) for l in p.get("links", [])]
    urls += [l["url"] for l in overview["links"]]
    assert any(f"/d/{common.UID_DRILLDOWN}" in u for u in urls)


# -- Tempo / TraceQL --------------------------------------------------------------------


def test_traceql_queries_parse_and_use_contract_attributes():
    tempo = [(p, t) for _, p, t in _all_queries() if t["datasource"]["type"] == "tempo"]
    assert tempo
    for panel, t in tempo:
        attrs = traceql.check(t["query"])
        assert "span.gen_ai.usage.cost" in attrs  # the contract spelled out
        assert t["queryType"] == "traceql" and "$threshold" in t["query"]
        links = [prop["value"] for o in panel["fieldConfig"]["overrides"] for prop in o["properties"]
                 if prop["id"] == "links"]
        assert links and all(l[0]["internal"]["datasourceUid"] == "${tempo_datasource}" for l in links)


@pytest.mark.parametrize("bad", [
    "{ span.gen_ai.usage.cost > }",
    "{ span.gen_ai.usage.cost > 1 ",
    "span.gen_ai.usage.cost > 1",
    "{ span.gen_ai.usage.cost >> 1 }",
    "{ span.gen_ai.usage.cost > 1 } | select(span.gen_ai.usage.cost",
    "{ span.gen_ai.usage.cost > 1 } | sort(span.gen_ai.usage.cost)",
    "{ span.gen_ai.usage.dollars > 1 }",  # not in the contract
    "{ resource.k8s.secret = \"x\" }",
])
def test_traceql_checker_rejects(bad):
    with pytest.raises(traceql.TraceQLError):
        traceql.check(bad)


@pytest.mark.parametrize("good", [
    '{ span.gen_ai.usage.cost > 0.5 && span.inferops.team = "alpha" }',
    '{ (span.gen_ai.usage.cost >= $threshold || duration > 2s) && status = error } | count() > 2',
    '{ span.inferops.team =~ "${team:regex}" } && { resource.service.name = "api" } | avg(span.gen_ai.usage.cost) > 1',
    '{ }',
])
def test_traceql_checker_accepts(good):
    traceql.check(good)
