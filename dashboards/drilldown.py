"""Dashboard 4: Request drill-down, from dollars to the single request.

* Spend and token panels with exemplars: each exemplar carries the
  ``trace_id`` of the call, which the Prometheus datasource links to Tempo
  (``exemplarTraceIdDestinations``, see deploy/grafana).
* A Tempo (TraceQL) table of the requests above the ``$threshold`` cost, with
  a link from each row to its trace.
* A Tempo table of the calls a routing rule matched (rewritten or dry run):
  requested and routed model, rule, savings (issue 9).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from inferops.names import Attr, GenAI, Label, Metrics

from . import common as c, promql as q, traceql
from .common import USD, prom_target as T


def _trace_link(value: str) -> list[dict]:
    """Internal data link that opens a trace id in the Tempo datasource of the dashboard."""
    return [{"title": "Open trace in Tempo", "url": "",
             "internal": {"datasourceUid": f"${{{c.TEMPO_VAR}}}", "datasourceName": "Tempo",
                          "query": {"queryType": "traceql", "query": value, "refId": "A"}}}]


#: Tempo table links: each row opens its trace.
TRACE_LINK_OVERRIDES: list[dict] = [
    {"matcher": {"id": "byName", "options": "traceID"},
     "properties": [{"id": "links", "value": _trace_link("${__value.raw}")}]},
    {"matcher": {"id": "byName", "options": "spanID"},
     "properties": [{"id": "links", "value": _trace_link("${__data.fields.traceIdHidden}")}]},
]


def _usd_column(attribute: str, name: str) -> dict:
    """Override showing the ``span.<attribute>`` column of a Tempo table in US dollars as ``name``."""
    return {"matcher": {"id": "byName", "options": f"span.{attribute}"},
            "properties": [{"id": "unit", "value": USD}, {"id": "displayName", "value": name}]}


def build() -> Dashboard:
    L = c.Layout()
    model_legend = f"{{{{{Label.MODEL}}}}}"
    tempo_overrides = [*TRACE_LINK_OVERRIDES, _usd_column(traceql.SELECTED[0], "Cost (USD)")]
    routed_overrides = [*TRACE_LINK_OVERRIDES, _usd_column(Attr.ROUTING_SAVINGS, "Routing savings (USD)"),
                        _usd_column(GenAI.USAGE_COST, "Cost (USD)")]
    panels = [
        c.timeseries("Spend rate by model, with exemplars ($ per hour)",
                     "US dollars per hour by model. Each exemplar dot is one call: hover it and follow "
                     "the trace_id link to the trace in Tempo.",
                     [T(q.spend_rate_per_hour((Label.MODEL,)), model_legend, exemplar=True)], USD, L.pos(12, 9)),
        c.timeseries("Spend rate by feature, with exemplars ($ per hour)",
                     "US dollars per hour by feature; exemplars link to the traces of single calls.",
                     [T(q.spend_rate_per_hour((Label.FEATURE,)), f"{{{{{Label.FEATURE}}}}}", exemplar=True)],
                     USD, L.pos(12, 9)),
        c.timeseries("Tokens by model, with exemplars (tokens per second)",
                     "Token throughput by model (all token types); exemplars link to traces.",
                     [T(q.sum_(q.rate(q.sel(Metrics.TOKENS)), (Label.MODEL,)), model_legend, exemplar=True)],
                     "short", L.pos(12, 8)),
        c.table("Most expensive team x feature x model combinations",
                "Spend in the range per team, feature and model: pick a combination, then find its "
                "requests in the Tempo table below or through the exemplars above.",
                [T(f"topk(20, {q.spend((Label.TEAM, Label.FEATURE, Label.MODEL))})", "", "A", instant=True,
                   table=True)], USD, L.pos(12, 8),
                overrides=[{"matcher": {"id": "byName", "options": "Value"},
                            "properties": [{"id": "displayName", "value": "Spend (USD)"}]}],
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
                sort_by="Spend (USD)"),
        c.table("Most expensive requests (Tempo)",
                "Requests whose gen_ai.usage.cost is above $threshold USD in the range, from Tempo (TraceQL), "
                "sorted by cost; follow the link on a row to open its trace. Filters only on the threshold "
                "(spans of unattributed calls lack team attributes); use the column filters for team, "
                "feature and model.",
                [c.tempo_target(traceql.expensive_requests(), limit=100)], USD, L.pos(24, 12),
                datasource=c.TEMPO_DS, overrides=tempo_overrides, sort_by="Cost (USD)"),
        c.table("Routed calls (Tempo)",
                "Calls a model routing rule matched, from Tempo (TraceQL): the rule, the model requested "
                "and the model sent (request/response model), the savings (requested model's price minus "
                "the routed model's, USD) and cost; dry-run rows have dry_run=true, the rule's target "
                "model and no savings (the call was sent unchanged). Follow a row's link to its trace.",
                [c.tempo_target(traceql.routed_calls(), limit=100)], USD, L.pos(24, 10),
                datasource=c.TEMPO_DS, overrides=routed_overrides, sort_by="Routing savings (USD)"),
    ]
    return c.dashboard(c.UID_DRILLDOWN, "inferops: Request drill-down",
                       "From dollars to the request: exemplars linked to Tempo by trace_id and the most "
                       "expensive requests from Tempo. Generated by `inferops dashboards build`.",
                       panels, with_tempo=True, with_threshold=True, time_from="now-6h")
