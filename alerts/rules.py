"""Budgets -> Prometheus recording and alerting rules (plain ``groups:`` and PrometheusRule).

Why the rules look the way they do:

* **Calendar periods.** PromQL has no "since the 1st of the month" range. The
  period-to-date series is a *self-referencing accumulator*: each evaluation
  keeps its own previous value while the previous sample lies in the same
  calendar period (a companion series records the period number) and adds
  ``rate(cost[rate_window]) * evaluation_interval``, i.e. the spend of the
  interval that just ended. An instant on a boundary (00:00:00) belongs to the
  period that ends there, so the first evaluation *after* midnight starts from
  zero. Fixed UTC offsets shift every calendar function by the offset. The
  previous value and period number are read with ``last_over_time(...[max_gap])``,
  so a Prometheus restart shorter than ``max_gap`` loses only the spend of the
  gap, not the month.
* **Burn rate** (Google SRE workbook, multi-window multi-burn-rate): spend rate
  divided by the rate that exactly uses the budget over its period; pages at
  14.4x over 1h (confirmed over 5m) and 6x over 6h (30m), tickets at 1x over
  3d (6h). Windows and factors are :class:`RuleOptions`.
* Every series and label name comes from :mod:`inferops.names`; the recording
  rules are declared there (:class:`~inferops.names.RecordingRules`) so
  dashboards can query them and the contract test can check them.
* Everything that decides *timing* (evaluation interval, windows, ``for:``)
  is an option, so an end-to-end test or demo can use a tiny budget and see an
  alert within seconds with the very same expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from inferops.names import (
    SCOPE_LABELS,
    UNATTRIBUTED,
    Label,
    Metrics,
    RecordingRules,
)

from .budgets import CALENDAR_DAY, CALENDAR_MONTH, Budget, BudgetSet


class AlertName:
    """Names of the generated alerts."""

    THRESHOLD = "InferopsBudgetThreshold"
    EXHAUSTED = "InferopsBudgetExhausted"
    FORECAST = "InferopsBudgetForecastExceeded"
    BURN_RATE = "InferopsBudgetBurnRate"
    SPIKE = "InferopsSpendSpike"
    UNPRICED = "InferopsUnpricedModel"
    UNATTRIBUTED = "InferopsUnattributedSpend"
    ABSENT = "InferopsTelemetryAbsent"

    ALL = (THRESHOLD, EXHAUSTED, FORECAST, BURN_RATE, SPIKE, UNPRICED, UNATTRIBUTED, ABSENT)


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate condition: both windows above ``factor``."""

    long: str
    short: str
    factor: float
    page: bool  # True: budget severity; False: a ticket (warning)


_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration (``1h30m``)."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a Prometheus duration like 5m or 1h30m, got {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


DEFAULT_FOR: dict[str, str] = {
    AlertName.THRESHOLD: "5m",
    AlertName.EXHAUSTED: "1m",
    AlertName.FORECAST: "30m",
    AlertName.BURN_RATE: "2m",
    AlertName.SPIKE: "15m",
    AlertName.UNPRICED: "15m",
    AlertName.UNATTRIBUTED: "30m",
    AlertName.ABSENT: "0s",
}


@dataclass(frozen=True)
class RuleOptions:
    """Timing of the generated rules. Defaults suit production; :meth:`demo` suits tests and demos."""

    eval_interval: str = "1m"
    #: Window of the rate() whose x eval_interval feeds the period-to-date accumulator (>= 2 scrapes).
    rate_window: str = "5m"
    #: Window of the rate() extrapolated to the end of the period.
    forecast_window: str = "6h"
    burn_windows: tuple[BurnWindow, ...] = (
        BurnWindow("1h", "5m", 14.4, True),
        BurnWindow("6h", "30m", 6.0, True),
        BurnWindow("3d", "6h", 1.0, False),
    )
    spike_window: str = "1h"
    spike_baseline: str = "7d"
    #: Window of the unpriced-model and unattributed-spend alerts.
    hygiene_window: str = "1h"
    for_: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FOR))
    group_prefix: str = "inferops"
    #: Longest gap in rule evaluation (e.g. a Prometheus restart) the period-to-date survives.
    max_gap: str = "1h"

    @classmethod
    def demo(cls) -> "RuleOptions":
        """Seconds instead of hours: for the end-to-end tests and the demo (scrape every 1s)."""
        return cls(
            eval_interval="1s", rate_window="5s", forecast_window="10s",
            burn_windows=(BurnWindow("20s", "5s", 14.4, True), BurnWindow("1m", "10s", 6.0, True),
                          BurnWindow("3m", "30s", 1.0, False)),
            spike_window="5m", spike_baseline="1h", hygiene_window="30s",
            for_={name: "0s" for name in AlertName.ALL},
        )

    def with_for(self, overrides: dict[str, str]) -> "RuleOptions":
        merged = dict(self.for_)
        for name, value in overrides.items():
            if name not in AlertName.ALL:
                raise ValueError(f"unknown alert {name!r}; expected one of {', '.join(AlertName.ALL)}")
            duration_seconds(value)
            merged[name] = value
        return replace(self, for_=merged)

    def validate(self) -> None:
        for text in (self.max_gap, self.eval_interval, self.rate_window, self.forecast_window, self.spike_window,
                     self.spike_baseline, self.hygiene_window, *self.for_.values()):
            duration_seconds(text)
        for w in self.burn_windows:
            duration_seconds(w.long), duration_seconds(w.short)
        if self.spike_window not in ("5m", "1h", "1d"):
            raise ValueError("spike_window must be one of the recorded increases: 5m, 1h, 1d")
        if duration_seconds(self.rate_window) < duration_seconds(self.eval_interval):
            raise ValueError("rate_window must be at least the evaluation interval")


# ---------------------------------------------------------------------------
# PromQL building blocks
# ---------------------------------------------------------------------------

COST = Metrics.COST.prom_name
REQUESTS = Metrics.REQUESTS.prom_name
UNPRICED = Metrics.UNPRICED_REQUESTS.prom_name
R = RecordingRules
#: Spike windows: the recorded per-budget increases a spike is measured on.
_SPIKE_SERIES = {"5m": R.BUDGET_COST_INCREASE_5M.name, "1h": R.BUDGET_COST_INCREASE_1H.name,
                 "1d": R.BUDGET_COST_INCREASE_1D.name}


def _num(value: float) -> str:
    """A float as PromQL reads it back exactly."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _sel(metric: str, matchers: str) -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _offset(b: Budget) -> str:
    """`` + <offset> - 1``: local time, and an instant on a boundary belongs to the period it ends."""
    off = b.utc_offset_seconds
    return f" + {off} - 1" if off > 0 else (f" - {-off + 1}" if off < 0 else " - 1")


def _period_key(b: Budget, ts: str) -> str:
    """PromQL (instant vector) numbering the calendar period that contains timestamps ``ts``."""
    if b.period == CALENDAR_DAY:
        return f"floor(({ts}{_offset(b)}) / 86400)"
    return f"month({ts}{_offset(b)})"


def _local_now(b: Budget) -> str:
    return f"vector(time(){_offset(b)})"


def _period_seconds(b: Budget) -> str:
    """PromQL (instant vector or number) for the length of the current period in seconds."""
    if b.period == CALENDAR_MONTH:
        return f"(days_in_month({_local_now(b)}) * 86400)"
    if b.period == CALENDAR_DAY:
        return "86400"
    return str(b.rolling_days * 86400)


def _remaining_seconds(b: Budget) -> str:
    now = _local_now(b)
    if b.period == CALENDAR_MONTH:
        return (f"((days_in_month({now}) - day_of_month({now})) * 86400 + 86400 - ({now} % 86400) - 1)")
    if b.period == CALENDAR_DAY:
        return f"(86400 - ({now} % 86400) - 1)"
    return str(b.rolling_days * 86400)


def _budget_sel(b: Budget, extra: str = "") -> str:
    parts = [f"{Label.BUDGET}={_q(b.name)}"]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


# ---------------------------------------------------------------------------
# Rule generation
# ---------------------------------------------------------------------------


def _rec(name: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = dict(labels)
    return rule


def _gap(opts: RuleOptions) -> str:
    """Look-back for the accumulator's previous value: tolerates missed evaluations up to ``max_gap``."""
    seconds = max(duration_seconds(opts.max_gap), 2 * duration_seconds(opts.eval_interval))
    return f"{int(seconds)}s"


def scope_group(opts: RuleOptions) -> dict[str, Any]:
    """Budget-independent spend series for dashboards: increases by scope labels, month to date by team."""
    by = ", ".join(SCOPE_LABELS)
    interval = duration_seconds(opts.eval_interval)
    mtd = R.TEAM_PROJECT_COST_MONTH_TO_DATE.name
    month_id = R.UTC_MONTH_ID.name
    gap = _gap(opts)
    carried = (f"(last_over_time({mtd}[{gap}]) and on() "
               f"(last_over_time({month_id}[{gap}]) == scalar(month(vector(time() - 1)))))")
    inc = f"(sum by ({Label.TEAM}, {Label.PROJECT}) (rate({COST}[{opts.rate_window}])) * {_num(interval)})"
    month_to_date = f"({carried} or {inc} * 0)\n+ ({inc} or {carried} * 0)"
    return {
        "name": f"{opts.group_prefix}-spend",
        "interval": opts.eval_interval,
        "rules": [
            _rec(R.SCOPE_COST_INCREASE_5M.name, f"sum by ({by}) (increase({COST}[5m]))"),
            _rec(R.SCOPE_COST_INCREASE_1H.name, f"sum by ({by}) (increase({COST}[1h]))"),
            _rec(R.SCOPE_COST_INCREASE_1D.name, f"sum by ({by}) (increase({COST}[1d]))"),
            _rec(mtd, month_to_date),
            # After the accumulator: it reads the previous evaluation's month number.
            _rec(month_id, "month(vector(time() - 1))"),
        ],
    }


def budget_group(b: Budget, opts: RuleOptions) -> dict[str, Any]:
    """Recording rules and alerts of one budget (one group: evaluated in order, alerts see fresh values)."""
    series_labels = {Label.BUDGET: b.name, Label.TEAM: b.team, Label.PROJECT: b.project, Label.PERIOD: b.period}
    scope = b.selector()
    cost = _sel(COST, scope)
    amount = _num(b.amount_usd)
    interval = duration_seconds(opts.eval_interval)
    ptd = R.BUDGET_PERIOD_TO_DATE.name
    bsel = _budget_sel(b)

    rules: list[dict[str, Any]] = [
        _rec(R.BUDGET_AMOUNT.name, f"vector({amount})", series_labels),
        _rec(R.BUDGET_COST_INCREASE_5M.name, f"sum(increase({cost}[5m])) or vector(0)", series_labels),
        _rec(R.BUDGET_COST_INCREASE_1H.name, f"sum(increase({cost}[1h])) or vector(0)", series_labels),
        _rec(R.BUDGET_COST_INCREASE_1D.name, f"sum(increase({cost}[1d])) or vector(0)", series_labels),
    ]
    period_id = R.BUDGET_PERIOD_ID.name
    if b.rolling_days:
        ptd_expr = f"sum(increase({cost}[{b.rolling_days}d])) or vector(0)"
    else:
        gap = _gap(opts)
        same_period = (f"last_over_time({period_id}{bsel}[{gap}]) "
                       f"== scalar({_period_key(b, 'vector(time())')})")
        ptd_expr = (f"(sum(last_over_time({ptd}{bsel}[{gap}]) and on({Label.BUDGET}) ({same_period})) or vector(0))\n"
                    f"+ ((sum(rate({cost}[{opts.rate_window}])) * {_num(interval)}) or vector(0))")
    rules.append(_rec(ptd, ptd_expr, series_labels))
    if not b.rolling_days:
        # After the accumulator, which compares with the previous evaluation's period number.
        rules.append(_rec(period_id, _period_key(b, "vector(time())"), series_labels))
    forecast_expr = (f"sum({ptd}{bsel})\n+ ((sum(rate({cost}[{opts.forecast_window}])) or vector(0))"
                     f" * {_remaining_seconds(b)})")
    if b.rolling_days:
        forecast_expr = f"(sum(rate({cost}[{opts.forecast_window}])) or vector(0)) * {_remaining_seconds(b)}"
    rules.append(_rec(R.BUDGET_PERIOD_FORECAST.name, forecast_expr, series_labels))
    rules.append(_rec(R.BUDGET_PERIOD_RATIO.name, f"sum({ptd}{bsel}) / {amount}", series_labels))
    windows: list[str] = []
    for w in opts.burn_windows:
        for win in (w.long, w.short):
            if win not in windows:
                windows.append(win)
    for win in windows:
        rules.append(_rec(
            R.BUDGET_BURN_RATE.name,
            f"(sum(rate({cost}[{win}])) or vector(0)) / ({amount} / {_period_seconds(b)})",
            {**series_labels, Label.WINDOW: win}))

    rules.extend(_alerts(b, opts))
    return {"name": f"{opts.group_prefix}-budget-{b.name}", "interval": opts.eval_interval, "rules": rules}


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.6g}"


#: Template: a dollar figure, ``humanize``d (1.234k, 2.5M) and plain below $1 (humanize would say 343.3u).
_VALUE_USD = '{{ if lt $value 1.0 }}{{ printf "%.4g" $value }}{{ else }}{{ $value | humanize }}{{ end }}'


def _dashboard_link(b: Budget) -> str:
    sep = "&" if "?" in b.dashboard_url else "?"
    return f"{b.dashboard_url}{sep}var-team={b.team}" + (f"&var-project={b.project}" if b.project != "all" else "")


def _alert(name: str, expr: str, b: Budget, opts: RuleOptions, severity: str, summary: str, description: str,
           extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {Label.BUDGET: b.name, Label.TEAM: b.team, Label.PROJECT: b.project, Label.SEVERITY: severity,
              **(extra_labels or {})}
    return {
        "alert": name,
        "expr": expr,
        "for": opts.for_.get(name, "0s"),
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{b.runbook_url}#{name.lower()}" if "#" not in b.runbook_url else b.runbook_url,
            "dashboard_url": _dashboard_link(b),
        },
    }


def _query_value(promql: str) -> str:
    """Template snippet: the dollar value of an instant query (Go raw string, so quotes are fine)."""
    return (f"{{{{ with query `{promql}` }}}}{{{{ with . | first | value }}}}"
            '{{ if lt . 1.0 }}{{ printf "%.4g" . }}{{ else }}{{ . | humanize }}{{ end }}'
            "{{ end }}{{ else }}0{{ end }}")


def _alerts(b: Budget, opts: RuleOptions) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ptd = f"{R.BUDGET_PERIOD_TO_DATE.name}{_budget_sel(b)}"
    amount = b.amount_usd
    who = f"Team {b.team}" + (f" (project {b.project})" if b.project != "all" else "")
    where = f'budget "{b.name}" ({b.describe_scope()}; {b.describe_period()})'
    for t in b.thresholds:
        pct = f"{t:g}"
        out.append(_alert(
            AlertName.THRESHOLD, f"{ptd} >= {_num(amount * t / 100)}", b, opts, "warning",
            f"Budget {b.name}: {pct}% of {_money(amount)} spent",
            f"{who} has spent ${_VALUE_USD} of the {_money(amount)} {where}: "
            f"the {pct}% threshold is crossed.",
            {Label.THRESHOLD: pct}))
    action = b.enforcement.action
    consequence = {
        "none": "No enforcement is configured.",
        "block": "Enforcement: further calls in this scope are blocked (BudgetExceededError).",
        "downgrade": f"Enforcement: calls in this scope are downgraded to {b.enforcement.model}.",
        "throttle": f"Enforcement: calls in this scope are throttled to "
                    f"{b.enforcement.requests_per_minute:g} requests per minute.",
    }[action]
    out.append(_alert(
        AlertName.EXHAUSTED, f"{ptd} >= {_num(amount)}", b, opts, b.severity,
        f"Budget {b.name} exhausted: {_money(amount)} spent",
        f"{who} has spent ${_VALUE_USD}, the whole {_money(amount)} of {where}. {consequence}"))
    if b.forecast:
        fc = f"{R.BUDGET_PERIOD_FORECAST.name}{_budget_sel(b)}"
        out.append(_alert(
            AlertName.FORECAST, f"{fc} > {_num(amount)}", b, opts, "warning",
            f"Budget {b.name} forecast to overrun {_money(amount)}",
            f"At the spend rate of the last {opts.forecast_window}, {who} will have spent "
            f"${_VALUE_USD} by the end of the period, above the {_money(amount)} {where}; "
            f"spent so far: ${_query_value(ptd)}."))
    if b.burn_rate:
        for w in opts.burn_windows:
            long_sel = f"{R.BUDGET_BURN_RATE.name}{_budget_sel(b, f'{Label.WINDOW}={_q(w.long)}')}"
            short_sel = f"{R.BUDGET_BURN_RATE.name}{_budget_sel(b, f'{Label.WINDOW}={_q(w.short)}')}"
            f = _num(w.factor)
            spend_long = f"sum(increase({_sel(COST, b.selector())}[{w.long}]))"
            out.append(_alert(
                AlertName.BURN_RATE,
                f"{long_sel} > {f}\nand on({Label.BUDGET})\n{short_sel} > {f}",
                b, opts, b.severity if w.page else "warning",
                f"Budget {b.name} burning {f}x too fast ({w.long}/{w.short})",
                f"{who} is spending at {{{{ $value | humanize }}}}x the rate that would use exactly the "
                f"{_money(amount)} {where} (${_query_value(spend_long)} in the last {w.long}; "
                f"also above {f}x over the last {w.short}).",
                {Label.WINDOW: w.long}))
    if b.spike_factor:
        sw, bl = opts.spike_window, opts.spike_baseline
        inc = f"{_SPIKE_SERIES[sw]}{_budget_sel(b)}"
        # The baseline averages the recorded series, so a young scope is compared with the history it has.
        baseline = f"avg_over_time({inc}[{bl}] offset {sw})"
        out.append(_alert(
            AlertName.SPIKE,
            f"{inc} > {_num(b.spike_factor)} * {baseline}\nand {inc} > {_num(b.spike_min_usd)}",
            b, opts, "warning",
            f"Spend spike in budget {b.name}",
            f"{who} spent ${_VALUE_USD} in the last {sw}, more than {b.spike_factor:g}x the "
            f"trailing {bl} baseline of ${_query_value(baseline)} per {sw} ({where})."))
    unpriced = _sel(UNPRICED, b.selector())
    out.append(_alert(
        AlertName.UNPRICED,
        f"sum by ({Label.PROVIDER}, {Label.MODEL}) (increase({unpriced}[{opts.hygiene_window}])) > 0",
        b, opts, "warning",
        "Calls to an unpriced model in budget " + b.name,
        f"{{{{ $value | humanize }}}} calls to {{{{ $labels.{Label.PROVIDER} }}}}/{{{{ $labels.{Label.MODEL} }}}} "
        f"in the last {opts.hygiene_window} had no price, so {where} under-counts spend (unpriced is never $0). "
        "Add the model to a price overrides file (inferops prices validate)."))
    fixed = {m.label for m in b.matchers if m.op == "="}
    checked = [lab for lab in (Label.TEAM, Label.PROJECT, Label.FEATURE) if lab not in fixed]
    if b.unattributed_share and checked:
        w = opts.hygiene_window
        parts = [f"increase({_sel(COST, b.selector(f'{lab}={_q(UNATTRIBUTED)}'))}[{w}])" for lab in checked]
        unattributed = "sum(" + " or ".join(parts) + ")"
        total = f"sum(increase({_sel(COST, b.selector())}[{w}]))"
        out.append(_alert(
            AlertName.UNATTRIBUTED, f"{unattributed} / {total} > {_num(b.unattributed_share)}", b, opts, "warning",
            f"Unattributed spend in budget {b.name}",
            f"{{{{ $value | humanizePercentage }}}} of the spend in {where} over the last {w} "
            f"(${_query_value(unattributed)}) has no {'/'.join(checked)} label: tag the calls "
            "(baggage or resource attributes) so it can be charged back."))
    if b.absent_after:
        out.append(_alert(
            AlertName.ABSENT, f"absent_over_time({_sel(REQUESTS, b.selector())}[{b.absent_after}])", b, opts,
            "warning",
            f"No LLM telemetry for budget {b.name}",
            f"No inferops request metrics matched {where} for {b.absent_after}: the instrumentation or the "
            "scrape is down, so the budget can neither alert nor enforce."))
    return out


def build_groups(budgets: BudgetSet, opts: RuleOptions | None = None) -> dict[str, Any]:
    """The plain Prometheus rule file (also valid for the Thanos and Mimir rulers)."""
    opts = opts or RuleOptions()
    opts.validate()
    return {"groups": [scope_group(opts), *(budget_group(b, opts) for b in budgets.budgets)]}


def prometheus_rule_resource(groups: dict[str, Any], name: str = "inferops-budgets",
                             namespace: str = "") -> dict[str, Any]:
    """The same groups as a prometheus-operator ``PrometheusRule`` (monitoring.coreos.com/v1)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "inferops",
                                                         "app.kubernetes.io/component": "budgets"}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": groups["groups"]}}


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: Any, header: str = "") -> str:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return (header + text) if header else text
