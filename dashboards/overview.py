"""Dashboard 1: LLM spend overview.

Where the money goes and how fast: totals for the range and the month so far,
burn rate, month-end forecast against the budget, spend over time by every
attribution dimension, top features and models, cost per request, tokens,
caching, the shares that need attention (unpriced, unattributed, failed), and
the "Model routing" section (dashboards/routing.py: what routing saved and what
its dry-run rules would have saved).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from inferops.names import UNATTRIBUTED, CostType, Label, Metrics, PricingStatus, TokenType

from . import budget, common as c, promql as q, routing
from .common import PERCENT, USD, prom_target as T

#: Grafana relative time "this month so far" (panel time override).
MONTH_SO_FAR = "now/M"
#: API spend here, GPU spend of self-hosted models there (and back: dashboards/gpu.py).
GPU_LINK = c.dashboard_link("Self-hosted GPU cost", c.UID_GPU,
                            "GPU cost of self-hosted models: idle cost, cost per 1M tokens against the API")


def month_end_forecast() -> str:
    """Month-to-date spend extrapolated linearly to the end of the calendar month.

    The panel's time override is "this month so far", so ``$__range`` is the
    month to date; ``days_in_month() * 86400`` over the seconds elapsed since
    the 1st (UTC, as PromQL's calendar functions are) scales it to a full month.
    """
    elapsed = "scalar((day_of_month() - 1) * 86400 + time() % 86400)"
    return f"{q.spend()} * scalar(days_in_month() * 86400) / {elapsed}"


def build() -> Dashboard:
    L = c.Layout()
    cost_priced = q.sel(Metrics.REQUESTS, q.ne(Label.PRICING_STATUS, PricingStatus.UNPRICED))
    requests_total = q.total(Metrics.REQUESTS)
    drill = [{"title": "Request drill-down (most expensive requests, traces)", "url": c.drilldown_url()}]
    panels = [
        c.stat("Spend in range", "US dollars spent on LLM calls in the selected time range (all cost "
               "components, estimated by inferops from the price catalog).",
               [T(q.spend(), "spend", instant=True)], USD, L.pos(4, 4), links_=drill),
        c.stat("Spend this month so far", "US dollars spent since the 1st of the current calendar month "
               "(panel time override: this month so far).",
               [T(q.spend(), "month to date", instant=True)], USD, L.pos(4, 4), time_from=MONTH_SO_FAR),
        c.stat("Burn rate ($ per hour)", "Current spend rate in US dollars per hour, from the last "
               "rate interval.", [T(q.spend_rate_per_hour(), "$/h", instant=True)], USD, L.pos(4, 4)),
        budget.forecast_stat(month_end_forecast(), L.pos(4, 4), time_from=MONTH_SO_FAR),
        c.stat("Cost per request", "Average US dollars per priced LLM call in the range (unpriced calls "
               "have no cost and are left out).",
               [T(f"{q.spend()} / {q.sum_(q.increase(cost_priced))}", "USD/request", instant=True)],
               USD, L.pos(4, 4), decimals=4),
        c.stat("Spend on failed requests", "US dollars billed for calls whose outcome was error "
               "(e.g. streams interrupted after the provider started billing).",
               [T(f"{q.total(Metrics.ERROR_COST)} or vector(0)", "failed", instant=True)], USD, L.pos(4, 4)),
    ]
    L.newline()
    shares = [
        c.stat("Unpriced share of requests", "Share of calls whose model has no price in the catalog: their "
               "cost is unknown (never counted as $0). Add the model to a price overrides file.",
               [T(q.ratio_or_zero(q.total(Metrics.UNPRICED_REQUESTS), requests_total), "unpriced",
                  instant=True)], PERCENT, L.pos(4, 4)),
        c.stat("Unattributed share of requests", "Share of calls missing a required attribution tag "
               "(team, project, feature...): spend nobody can be charged for.",
               [T(q.ratio_or_zero(q.total(Metrics.UNATTRIBUTED_REQUESTS), requests_total), "unattributed",
                  instant=True)], PERCENT, L.pos(4, 4)),
        c.stat("Unattributed spend", "US dollars spent by calls with no team label value "
               "(label value `unattributed`).",
               [T(f"{q.spend((), q.RANGE, q.eq(Label.TEAM, UNATTRIBUTED))} or vector(0)", "unattributed",
                  instant=True)], USD, L.pos(4, 4)),
        c.stat("Cache hit ratio", "Share of input tokens served from the prompt cache in the range "
               "(cache_read over all input-side tokens).",
               [T(f"{q.total(Metrics.TOKENS, (), q.eq(Label.TOKEN_TYPE, TokenType.CACHE_READ))} / "
                  f"{q.total(Metrics.TOKENS, (), q.re_(Label.TOKEN_TYPE, TokenType.INPUT_SIDE))}",
                  "cache hit", instant=True)], PERCENT, L.pos(4, 4)),
        c.stat("Saved by prompt caching", "US dollars caching saved in the range: cache-read tokens priced "
               "at the full input rate minus what they cost at the cache-read rate (cache-write premiums "
               "are not subtracted).",
               [T(f"{q.total(Metrics.CACHE_SAVINGS)} or vector(0)", "saved", instant=True)], USD, L.pos(4, 4)),
        c.stat("Requests in range", "LLM calls (one per attempt, retries included) in the range.",
               [T(requests_total, "requests", instant=True)], "short", L.pos(4, 4), decimals=0),
    ]
    panels += shares
    L.newline()
    panels.append(budget.budgets_table(L.pos(24, 7)))
    L.newline()
    for label, what in ((Label.TEAM, "team"), (Label.PROJECT, "project"), (Label.FEATURE, "feature"),
                        (Label.MODEL, "model"), (Label.PROVIDER, "provider")):
        panels.append(c.timeseries(
            f"Spend rate by {what} ($ per hour)",
            f"US dollars per hour by {what}; stacked, so the top line is the total. Exemplar dots link a "
            f"dollar to the trace of the call in Tempo.",
            [T(q.spend_rate_per_hour((label,)), f"{{{{{label}}}}}", exemplar=True)],
            USD, L.pos(24 if what == "provider" else 12, 8), stacked=True, links_=drill))
    L.newline()
    panels += [
        c.bargauge("Top features by spend", "The 10 features that spent the most in the range (USD).",
                   [T(f"topk(10, {q.spend((Label.FEATURE,))})", f"{{{{{Label.FEATURE}}}}}", instant=True)],
                   USD, L.pos(8, 8)),
        c.bargauge("Top models by spend", "The 10 models that spent the most in the range (USD).",
                   [T(f"topk(10, {q.spend((Label.MODEL,))})", f"{{{{{Label.MODEL}}}}}", instant=True)],
                   USD, L.pos(8, 8)),
        c.timeseries("Cost per request by model", "Average US dollars per priced call, by model.",
                     [T(f"{q.sum_(q.rate(q.sel(Metrics.COST)), (Label.MODEL,))} / "
                        f"{q.sum_(q.rate(cost_priced), (Label.MODEL,))}", f"{{{{{Label.MODEL}}}}}")],
                     USD, L.pos(8, 8)),
    ]
    L.newline()
    panels += [
        c.timeseries("Tokens by type (tokens per second)",
                     "Token throughput by billing bucket; the buckets partition the tokens (input + cache_read "
                     "+ cache_write is the whole input, output + reasoning the whole output). Exemplars link "
                     "to traces.",
                     [T(q.sum_(q.rate(q.sel(Metrics.TOKENS)), (Label.TOKEN_TYPE,)),
                        f"{{{{{Label.TOKEN_TYPE}}}}}", exemplar=True)],
                     "short", L.pos(12, 8), stacked=True),
        c.timeseries("Prompt caching: savings and cache-read spend ($ per hour)",
                     "What the prompt cache saved (cache-read tokens at the full input rate minus what was "
                     "paid) next to what the cache reads cost, in US dollars per hour.",
                     [T(f"{q.sum_(q.rate(q.sel(Metrics.CACHE_SAVINGS)))} * 3600", "saved", "A"),
                      T(f"{q.spend_rate_per_hour((), q.eq(Label.COST_TYPE, CostType.CACHE_READ))}",
                        "paid for cache reads", "B")],
                     USD, L.pos(12, 8)),
    ]
    panels += routing.panels(L, drill)
    return c.dashboard(c.UID_OVERVIEW, "inferops: LLM spend overview",
                       "Where LLM money goes (USD): totals, burn rate, forecast, breakdowns, caching, "
                       "unpriced/unattributed/failed spend, model routing savings. Generated by "
                       "`inferops dashboards build`.",
                       panels, extra_links=(GPU_LINK,))
