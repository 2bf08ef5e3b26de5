"""Budgets -> Grafana-managed alert rules (grafanalib ``AlertGroup``/``AlertRulev9``) and the Ruler API client.

For teams that alert from Grafana instead of Prometheus. The rules query the
*recording rules* of ``prometheus-rules.yaml`` (period-to-date, forecast, burn
rate): a calendar-month accumulator cannot be expressed in a Grafana query, so
the recording groups must be loaded into Prometheus (or a ruler) either way.

grafanalib 0.7.1 emits the Ruler API shape (``grafana_alert: {...}``) with
four quirks fixed here (see FACTS.md): the rule ``uid`` is put at the rule's
top level (the API wants it inside ``grafana_alert``), the group carries a
``folder`` key the API rejects (it is the URL's namespace instead), a
query's ``datasourceUid`` is the whole datasource object (the API wants the uid string), and
no-data/error states default to Alerting (a comparison that returns nothing
is *not* an alert: we set OK and Error).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from grafanalib.core import (
    ALERTRULE_STATE_DATA_ERROR,
    ALERTRULE_STATE_DATA_OK,
    EXP_REDUCER_FUNC_DROP_NN,
    EXP_REDUCER_FUNC_LAST,
    EXP_TYPE_MATH,
    EXP_TYPE_REDUCE,
    AlertExpression,
    AlertGroup,
    AlertRulev9,
    Target,
)

from inferops.names import Label, RecordingRules

from .budgets import Budget, BudgetSet
from .rules import AlertName, RuleOptions, _budget_sel, _num, _q

DEFAULT_FOLDER = "inferops-budgets"


@dataclass(frozen=True)
class GrafanaOptions:
    datasource_uid: str = "prometheus"
    folder: str = DEFAULT_FOLDER
    interval: str = "1m"


def _uid(*parts: str) -> str:
    """Stable rule uid (Grafana allows at most 40 characters)."""
    return "inferops-" + hashlib.sha1("/".join(parts).encode()).hexdigest()[:24]


def _rule(b: Budget, name: str, title: str, exprs: dict[str, str], condition_math: str, severity: str,
          summary: str, description: str, opts: GrafanaOptions, for_: str,
          extra_labels: dict[str, str] | None = None) -> AlertRulev9:
    triggers: list[Any] = []
    reduced: dict[str, str] = {}
    for ref, expr in exprs.items():
        triggers.append(Target(expr=expr, refId=ref, instant=True,
                               datasource={"type": "prometheus", "uid": opts.datasource_uid}))
        red = ref + "R"
        triggers.append(AlertExpression(refId=red, expression=ref, expressionType=EXP_TYPE_REDUCE,
                                        reduceFunction=EXP_REDUCER_FUNC_LAST,
                                        reduceMode=EXP_REDUCER_FUNC_DROP_NN))
        reduced[ref] = red
    math = condition_math
    for ref, red in reduced.items():
        math = math.replace("${" + ref + "}", "$" + red)
    triggers.append(AlertExpression(refId="C", expression=math, expressionType=EXP_TYPE_MATH))
    return AlertRulev9(
        title=title, triggers=triggers, condition="C", evaluateFor=for_,
        labels={Label.BUDGET: b.name, Label.TEAM: b.team, Label.PROJECT: b.project, Label.SEVERITY: severity,
                **(extra_labels or {})},
        annotations={"summary": summary, "description": description,
                     "runbook_url": b.runbook_url, "dashboard_url": b.dashboard_url},
        noDataAlertState=ALERTRULE_STATE_DATA_OK, errorAlertState=ALERTRULE_STATE_DATA_ERROR,
        uid=_uid(b.name, title),
    )


def budget_alert_group(b: Budget, rule_opts: RuleOptions | None = None,
                       opts: GrafanaOptions | None = None) -> AlertGroup:
    rule_opts = rule_opts or RuleOptions()
    opts = opts or GrafanaOptions()
    ptd = f"{RecordingRules.BUDGET_PERIOD_TO_DATE.name}{_budget_sel(b)}"
    amount = _num(b.amount_usd)
    rules: list[AlertRulev9] = []
    f = rule_opts.for_
    for t in b.thresholds:
        rules.append(_rule(
            b, AlertName.THRESHOLD, f"{AlertName.THRESHOLD} {b.name} {t:g}%", {"A": ptd},
            f"${{A}} >= {_num(b.amount_usd * t / 100)}", "warning",
            f"Budget {b.name}: {t:g}% of ${b.amount_usd:,.2f} spent",
            f"{b.team} has spent ${{{{ $values.AR.Value | humanize }}}} of ${b.amount_usd:,.2f} ({b.name}).",
            opts, f[AlertName.THRESHOLD], {Label.THRESHOLD: f"{t:g}"}))
    rules.append(_rule(
        b, AlertName.EXHAUSTED, f"{AlertName.EXHAUSTED} {b.name}", {"A": ptd}, f"${{A}} >= {amount}", b.severity,
        f"Budget {b.name} exhausted: ${b.amount_usd:,.2f} spent",
        f"{b.team} has spent ${{{{ $values.AR.Value | humanize }}}}, the whole ${b.amount_usd:,.2f} ({b.name}).",
        opts, f[AlertName.EXHAUSTED]))
    if b.forecast:
        fc = f"{RecordingRules.BUDGET_PERIOD_FORECAST.name}{_budget_sel(b)}"
        rules.append(_rule(
            b, AlertName.FORECAST, f"{AlertName.FORECAST} {b.name}", {"A": fc}, f"${{A}} > {amount}", "warning",
            f"Budget {b.name} forecast to overrun ${b.amount_usd:,.2f}",
            f"Forecast at period end: ${{{{ $values.AR.Value | humanize }}}} ({b.name}).",
            opts, f[AlertName.FORECAST]))
    if b.burn_rate:
        for w in rule_opts.burn_windows:
            br = RecordingRules.BUDGET_BURN_RATE.name
            rules.append(_rule(
                b, AlertName.BURN_RATE, f"{AlertName.BURN_RATE} {b.name} {w.long}/{w.short}",
                {"A": f"{br}{_budget_sel(b, f'{Label.WINDOW}={_q(w.long)}')}",
                 "B": f"{br}{_budget_sel(b, f'{Label.WINDOW}={_q(w.short)}')}"},
                f"${{A}} > {_num(w.factor)} && ${{B}} > {_num(w.factor)}",
                b.severity if w.page else "warning",
                f"Budget {b.name} burning {w.factor:g}x too fast ({w.long}/{w.short})",
                f"Burn rate {{{{ $values.AR.Value | humanize }}}}x over {w.long} ({b.name}).",
                opts, f[AlertName.BURN_RATE], {Label.WINDOW: w.long}))
    return AlertGroup(name=f"inferops-budget-{b.name}", rules=rules, folder=opts.folder,
                      evaluateInterval=opts.interval)


def ruler_payload(group: AlertGroup) -> tuple[str, dict[str, Any]]:
    """(namespace, body) for ``POST /api/ruler/grafana/api/v1/rules/{namespace}``, grafanalib quirks fixed."""
    data = group.to_json_data()
    namespace = data.pop("folder")
    for rule in data["rules"]:
        uid = rule.pop("uid", None)
        if uid:
            rule["grafana_alert"]["uid"] = uid
        for query in rule["grafana_alert"]["data"]:
            # grafanalib copies Target.datasource (the {type, uid} object the query model wants) here too.
            if isinstance(query.get("datasourceUid"), dict):
                query["datasourceUid"] = query["datasourceUid"]["uid"]
    return namespace, data


def build_grafana_rules(budgets: BudgetSet, rule_opts: RuleOptions | None = None,
                        opts: GrafanaOptions | None = None) -> list[dict[str, Any]]:
    """All groups as ``{"namespace": ..., "group": <Ruler API body>}`` (the file ``apply-grafana`` reads)."""
    out = []
    for b in budgets.budgets:
        namespace, body = ruler_payload(budget_alert_group(b, rule_opts, opts))
        out.append({"namespace": namespace, "group": body})
    return out


class GrafanaApplyError(RuntimeError):
    pass


def apply_rules(url: str, token: str, groups: list[dict[str, Any]], *, namespace: str = "",
                timeout: float = 10.0) -> list[str]:
    """POST each group to Grafana's Ruler API; returns one line per group. Raises GrafanaApplyError."""
    results = []
    base = url.rstrip("/")
    for item in groups:
        ns = namespace or item["namespace"]
        body = json.dumps(item["group"]).encode()
        req = urllib.request.Request(
            f"{base}/api/ruler/grafana/api/v1/rules/{urllib.request.quote(ns, safe='')}", data=body,
            method="POST", headers={"Content-Type": "application/json", "Accept": "application/json",
                                    "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = resp.status
                text = resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise GrafanaApplyError(f"group {item['group']['name']}: Grafana answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise GrafanaApplyError(f"cannot reach Grafana at {base}: {exc}") from None
        results.append(f"{ns}/{item['group']['name']}: {status} {text.strip()[:120]}")
    return results
