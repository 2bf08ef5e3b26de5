"""Shared pieces of the inferops dashboards: datasources, variables, links, panels, layout.

grafanalib 0.7.1 gaps handled here (see FACTS.md):

* ``Target`` has no ``exemplar`` field, so targets are plain dicts built by
  :func:`prom_target` / :func:`tempo_target`;
* ``extraJson`` replaces whole lists, so it is only used for dicts
  (``fieldConfig``, ``options``) that grafanalib deep-merges;
* field-level data links only go through ``fieldConfig`` (see :func:`field_links`);
* ``__inputs`` come from :class:`grafanalib.core.DataSourceInput`;
* there is no automatic layout: :class:`Layout` places panels on the 24-column grid;
* grafanalib emits schemaVersion 12; we emit :data:`SCHEMA_VERSION` and
  write modern (``fieldConfig``) panel JSON so Grafana runs no migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafanalib.core import (
    BarGauge,
    Dashboard,
    DashboardLink,
    DataSourceInput,
    GridPos,
    Panel,
    Stat,
    Table,
    Templating,
    Time,
    TimeSeries,
)

from inferops.names import Metrics

from . import promql

#: Grafana 10.4 / 11 dashboard schema.
SCHEMA_VERSION = 39
TAG = "inferops"
USD = "currencyUSD"
PERCENT = "percentunit"

#: Import inputs (``__inputs``): Grafana's import asks for these datasources.
DS_PROMETHEUS = "DS_PROMETHEUS"
DS_TEMPO = "DS_TEMPO"
#: Dashboard variables holding the datasource uids.
PROM_VAR = "datasource"
TEMPO_VAR = "tempo_datasource"
THRESHOLD_VAR = "threshold"

PROM_DS = {"type": "prometheus", "uid": f"${{{PROM_VAR}}}"}
TEMPO_DS = {"type": "tempo", "uid": f"${{{TEMPO_VAR}}}"}

#: Dashboard uids (stable: links and provisioning rely on them).
UID_OVERVIEW = "inferops-overview"
UID_CHARGEBACK = "inferops-chargeback"
UID_MODELS = "inferops-models"
UID_DRILLDOWN = "inferops-drilldown"
UID_GPU = "inferops-gpu"

#: Every inferops dashboard title starts with this, so they sort together in Grafana's lists.
TITLE_PREFIX = "inferops: "

#: Grafana keeps the time range and every variable with these URL macros.
KEEP_CONTEXT = "${__url_time_range}&${__all_variables}"


def drilldown_url() -> str:
    """URL of the request drill-down keeping time range and variables."""
    return f"/d/{UID_DRILLDOWN}/inferops-request-drill-down?{KEEP_CONTEXT}"


# --------------------------------------------------------------------------
# Inputs and variables
# --------------------------------------------------------------------------


def inputs(with_tempo: bool) -> list[DataSourceInput]:
    out = [DataSourceInput(name=DS_PROMETHEUS, label="Prometheus", pluginId="prometheus",
                           pluginName="Prometheus",
                           description="Prometheus that scrapes the inferops_* metrics (exemplar storage on "
                                       "for trace links).")]
    if with_tempo:
        out.append(DataSourceInput(name=DS_TEMPO, label="Tempo", pluginId="tempo", pluginName="Tempo",
                                   description="Tempo holding the GenAI spans (gen_ai.usage.cost)."))
    return out


def datasource_variable(name: str, label: str, plugin: str, input_name: str) -> dict:
    """A datasource variable whose default is the import input ``${input_name}``."""
    placeholder = f"${{{input_name}}}"
    return {
        "name": name, "label": label, "type": "datasource", "query": plugin,
        "current": {"selected": True, "text": placeholder, "value": placeholder},
        "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
        "regex": "", "skipUrlSync": False,
    }


def _label_variable(label: str, var: str, title: str) -> dict:
    """Multi-select query variable over the values of ``label`` on the requests counter.

    The requests counter is used (not cost) so unpriced models still appear.
    Restricted by the variables before it (environment -> team -> ... -> model).
    """
    matchers = promql.var_matchers(upto=var)
    selector = f"{Metrics.REQUESTS.prom_name}{{{', '.join(matchers)}}}"
    query = f"label_values({selector}, {label})"
    return {
        "name": var, "label": title, "type": "query", "datasource": PROM_DS,
        "query": query,
        "definition": query,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "includeAll": True, "multi": True, "allValue": ".*",
        "hide": 0, "options": [], "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False,
    }


_TITLES = {"environment": "Environment", "team": "Team", "project": "Project", "feature": "Feature",
           "provider": "Provider", "model": "Model"}


def variables(with_tempo: bool = False, with_threshold: bool = False) -> Templating:
    """Datasources first, then the chained filters; the drill-down adds Tempo and the threshold."""
    out = [datasource_variable(PROM_VAR, "Prometheus", "prometheus", DS_PROMETHEUS)]
    if with_tempo:
        out.append(datasource_variable(TEMPO_VAR, "Tempo", "tempo", DS_TEMPO))
    for label, var in promql.FILTERS:
        out.append(_label_variable(label, var, _TITLES[var]))
    if with_threshold:
        out.append({
            "name": THRESHOLD_VAR, "label": "Min cost per request (USD)", "type": "textbox",
            "query": "0.01", "current": {"selected": True, "text": "0.01", "value": "0.01"},
            "options": [{"selected": True, "text": "0.01", "value": "0.01"}],
            "hide": 0, "skipUrlSync": False,
            "description": "Requests costing more than this (USD) are listed from Tempo.",
        })
    return Templating(list=out)


def dashboard_link(title: str, uid: str, tooltip: str, icon: str = "dashboard") -> DashboardLink:
    """A link to another inferops dashboard keeping the time range and the variables.

    Variables the target does not define are ignored by Grafana, so the link is
    safe between dashboards with different filters (cost: team...; GPU: cluster...).
    """
    return DashboardLink(title=title, type="link", uri=f"/d/{uid}", includeVars=True, keepTime=True,
                         icon=icon, tooltip=tooltip)


def links(*extra: DashboardLink) -> list[DashboardLink]:
    """One dropdown of every inferops dashboard, the request drill-down, then ``extra`` links."""
    return [DashboardLink(title="inferops dashboards", type="dashboards", tags=[TAG], asDropdown=True,
                          includeVars=True, keepTime=True, icon="dashboard"),
            dashboard_link("Request drill-down", UID_DRILLDOWN, "Most expensive requests and their traces",
                           icon="bolt"),
            *extra]


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def prom_target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False,
                table: bool = False, exemplar: bool = False) -> dict:
    """A Prometheus query as Grafana stores it (``exemplar`` is not in grafanalib's Target)."""
    return {
        "datasource": PROM_DS, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
        "range": not instant, "instant": instant, "format": "table" if table else "time_series",
        "exemplar": exemplar, "editorMode": "code",
    }


def tempo_target(query: str, ref: str = "A", *, limit: int = 50, spss: int = 3) -> dict:
    """A Tempo TraceQL search as Grafana stores it."""
    return {"datasource": TEMPO_DS, "refId": ref, "queryType": "traceql", "query": query,
            "limit": limit, "spss": spss, "tableType": "spans"}


# --------------------------------------------------------------------------
# Layout and panels
# --------------------------------------------------------------------------


@dataclass
class Layout:
    """Left-to-right placement on Grafana's 24-column grid, wrapping to a new row."""

    x: int = 0
    y: int = 0
    row_h: int = 0

    def pos(self, w: int, h: int) -> GridPos:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        gp = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return gp

    def newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0


def field_links(links: list[dict], field_name: str | None = None) -> dict:
    """``fieldConfig`` with data links (grafanalib has no field-level links)."""
    if field_name is None:
        return {"fieldConfig": {"defaults": {"links": links}}}
    return {"fieldConfig": {"overrides": [
        {"matcher": {"id": "byName", "options": field_name},
         "properties": [{"id": "links", "value": links}]}]}}


def _merge(a: dict | None, b: dict | None) -> dict:
    out = dict(a or {})
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def stat(title: str, description: str, targets: list[dict], unit: str, gp: GridPos, *,
         time_from: str | None = None, decimals: int | None = 2, extra: dict | None = None,
         links_: list[dict] | None = None) -> Stat:
    return Stat(title=title, description=description, dataSource=PROM_DS, targets=targets, format=unit,
                gridPos=gp, timeFrom=time_from, decimals=decimals, reduceCalc="lastNotNull",
                graphMode="none", noValue="No data", links=links_ or [], extraJson=extra)


def timeseries(title: str, description: str, targets: list[dict], unit: str, gp: GridPos, *,
               stacked: bool = False, extra: dict | None = None, links_: list[dict] | None = None) -> TimeSeries:
    return TimeSeries(title=title, description=description, dataSource=PROM_DS, targets=targets, unit=unit,
                      gridPos=gp, fillOpacity=20 if stacked else 0,
                      stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
                      legendDisplayMode="table", legendPlacement="right", legendCalcs=["mean", "max"],
                      tooltipMode="multi", tooltipSort="desc", links=links_ or [], extraJson=extra)


def table(title: str, description: str, targets: list[dict], unit: str, gp: GridPos, *,
          overrides: list[dict] | None = None, transformations: list[dict] | None = None,
          sort_by: str | None = None, datasource: dict | None = None, extra: dict | None = None) -> Table:
    extra_json = dict(extra or {})
    if sort_by:
        extra_json = _merge(extra_json, {"options": {"sortBy": [{"displayName": sort_by, "desc": True}],
                                                     "footer": {"show": False}}})
    return Table(title=title, description=description, dataSource=datasource or PROM_DS, targets=targets,
                 unit=unit, gridPos=gp, overrides=overrides or [], transformations=transformations or [],
                 filterable=True, extraJson=extra_json or None)


def bargauge(title: str, description: str, targets: list[dict], unit: str, gp: GridPos) -> BarGauge:
    """Horizontal bars per series; modern ``fieldConfig``/``reduceOptions`` set through extraJson
    because grafanalib's BarGauge still writes the Grafana 6 ``fieldOptions`` shape."""
    return BarGauge(title=title, description=description, dataSource=PROM_DS, targets=targets, format=unit,
                    gridPos=gp, displayMode="gradient", thresholds=[], max=None, min=0,
                    extraJson={"fieldConfig": {"defaults": {"unit": unit, "min": 0,
                                                            "color": {"mode": "continuous-GrYlRd"}}},
                               "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                             "values": False},
                                           "showUnfilled": True, "valueMode": "color"}})


def dashboard(uid: str, title: str, description: str, panels: list[Panel], *, with_tempo: bool = False,
              with_threshold: bool = False, time_from: str = "now-24h",
              extra_links: tuple[DashboardLink, ...] = ()) -> Dashboard:
    return Dashboard(
        uid=uid, title=title, description=description, tags=[TAG, "finops", "llm"],
        panels=panels, templating=variables(with_tempo, with_threshold), links=links(*extra_links),
        inputs=inputs(with_tempo), time=Time(time_from, "now"), timezone="browser",
        refresh="1m", schemaVersion=SCHEMA_VERSION, graphTooltip=1, editable=True,
    ).auto_panel_ids()
