"""Dashboard 3: Models and providers.

Unit economics per model: effective $ per 1M tokens, output/input ratio,
latency against cost, streaming share, and how much usage was estimated
instead of reported by the provider.

Latency comes from the GenAI semconv duration histogram, which carries
semconv attributes only (no team/project/feature labels, by design of the
conventions): latency panels honour the provider and model filters only, and
join to the inferops counters on the response model
(``gen_ai_response_model`` -> ``model``).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from inferops.names import Label, Metrics, Outcome, PricingStatus, TokenType, UsageSource

from . import common as c, promql as q
from .common import PERCENT, USD, prom_target as T

#: Value of the ``stream`` label for streamed calls (``CostRecorder`` writes "true"/"false").
STREAM_TRUE = "true"


def _quantile(phi: float, by: tuple[str, ...], window: str, metric=Metrics.GENAI_OPERATION_DURATION) -> str:
    bucket = q.sel(metric, suffix="_bucket")
    inner = q.sum_(f"rate({bucket}[{window}])" if window == q.RATE_INTERVAL else q.increase(bucket, window),
                   ("le", *by))
    return f"histogram_quantile({phi}, {inner})"


def _as_model(expr: str) -> str:
    """Copy the semconv response-model label into ``model`` so it joins the inferops counters."""
    return f'label_replace({expr}, "{Label.MODEL}", "$1", "{q.SEMCONV_MODEL}", "(.*)")'


def build() -> Dashboard:
    L = c.Layout()
    by_model = (Label.MODEL,)
    priced = q.ne(Label.PRICING_STATUS, PricingStatus.UNPRICED)
    in_side = q.re_(Label.TOKEN_TYPE, TokenType.INPUT_SIDE)
    out_side = q.re_(Label.TOKEN_TYPE, TokenType.OUTPUT_SIDE)
    model_legend = f"{{{{{Label.MODEL}}}}}"
    panels = [
        c.bargauge("$ per 1M tokens by model",
                   "Effective US dollars per million tokens (all token types, cache discounts included) in "
                   "the range: spend divided by tokens, times 10^6.",
                   [T(f"{q.spend(by_model)} / {q.total(Metrics.TOKENS, by_model)} * 1e6", model_legend,
                      instant=True)], USD, L.pos(12, 9)),
        c.bargauge("Output/input token ratio by model",
                   "Output tokens (reasoning included) per input token (cache included) in the range. "
                   "Output is priced several times input, so a high ratio drives cost.",
                   [T(f"{q.total(Metrics.TOKENS, by_model, out_side)} / {q.total(Metrics.TOKENS, by_model, in_side)}",
                      model_legend, instant=True)], "short", L.pos(12, 9)),
    ]
    latency_cols = [
        ("A", _as_model(_quantile(0.5, (q.SEMCONV_MODEL,), q.RANGE)), "p50 latency", "s"),
        ("B", _as_model(_quantile(0.95, (q.SEMCONV_MODEL,), q.RANGE)), "p95 latency", "s"),
        ("C", f"{q.spend(by_model)} / {q.total(Metrics.REQUESTS, by_model, priced)}", "USD per request", USD),
        ("D", q.spend(by_model), "Spend (USD)", USD),
        ("E", q.total(Metrics.REQUESTS, by_model), "Requests", "short"),
    ]
    panels.append(c.table(
        "Latency against cost by model",
        "Per model in the range: median and 95th percentile call duration (GenAI semconv histogram, "
        "provider/model filters only) next to the average cost per call and the spend.",
        [T(expr, "", ref, instant=True, table=True) for ref, expr, _, _ in latency_cols], USD, L.pos(24, 9),
        overrides=[{"matcher": {"id": "byName", "options": f"Value #{ref}"},
                    "properties": [{"id": "displayName", "value": name}, {"id": "unit", "value": unit}]}
                   for ref, _, name, unit in latency_cols],
        transformations=[{"id": "merge", "options": {}},
                         {"id": "organize", "options": {
                             "excludeByName": {"Time": True},
                             "indexByName": {name: i for i, name in enumerate(
                                 (Label.MODEL, *(f"Value #{r}" for r, *_ in latency_cols)))}}},
                         {"id": "filterFieldsByName", "options": {"include": {"names": [
                             Label.MODEL, *(f"Value #{r}" for r, *_ in latency_cols)]}}}],
        sort_by="Spend (USD)"))
    panels += [
        c.timeseries("p95 latency by model", "95th percentile call duration by response model (GenAI semconv "
                     "histogram; provider/model filters only).",
                     [T(_quantile(0.95, (q.SEMCONV_MODEL,), q.RATE_INTERVAL), f"{{{{{q.SEMCONV_MODEL}}}}}")],
                     "s", L.pos(12, 8)),
        c.timeseries("p95 time to first chunk by model", "95th percentile time to the first streamed chunk "
                     "by response model (streamed calls only; semconv histogram).",
                     [T(_quantile(0.95, (q.SEMCONV_MODEL,), q.RATE_INTERVAL,
                                  Metrics.GENAI_TIME_TO_FIRST_CHUNK), f"{{{{{q.SEMCONV_MODEL}}}}}")],
                     "s", L.pos(12, 8)),
        c.bargauge("Streaming share by model", "Share of calls that were streamed, per model, in the range.",
                   [T(q.ratio_or_zero(q.total(Metrics.REQUESTS, by_model, q.eq(Label.STREAM, STREAM_TRUE)),
                                      q.total(Metrics.REQUESTS, by_model)), model_legend, instant=True)],
                   PERCENT, L.pos(8, 8)),
        c.bargauge("Estimated vs provider-reported tokens",
                   "Share of tokens by usage source: `provider` (reported by the provider) or `estimated` "
                   "(counted by inferops with tiktoken because the provider reported no usage).",
                   [T(f"{q.total(Metrics.TOKENS, (Label.USAGE_SOURCE,))} / scalar({q.total(Metrics.TOKENS)})",
                      f"{{{{{Label.USAGE_SOURCE}}}}}", instant=True)], PERCENT, L.pos(8, 8)),
        c.bargauge("Estimated usage share by model",
                   "Share of each model's calls whose usage was estimated rather than provider-reported.",
                   [T(q.ratio_or_zero(
                       q.total(Metrics.REQUESTS, by_model, q.eq(Label.USAGE_SOURCE, UsageSource.ESTIMATED)),
                       q.total(Metrics.REQUESTS, by_model)), model_legend, instant=True)], PERCENT, L.pos(8, 8)),
        c.timeseries("Spend rate by provider ($ per hour)", "US dollars per hour by provider.",
                     [T(q.spend_rate_per_hour((Label.PROVIDER,)), f"{{{{{Label.PROVIDER}}}}}", exemplar=True)],
                     USD, L.pos(12, 8), stacked=True),
        c.timeseries("Error rate by provider", "Share of calls with outcome `error` per provider.",
                     [T(q.ratio_or_zero(
                         q.sum_(q.rate(q.sel(Metrics.REQUESTS, q.eq(Label.OUTCOME, Outcome.ERROR))), (Label.PROVIDER,)),
                         q.sum_(q.rate(q.sel(Metrics.REQUESTS)), (Label.PROVIDER,))), f"{{{{{Label.PROVIDER}}}}}")],
                     PERCENT, L.pos(12, 8)),
    ]
    return c.dashboard(c.UID_MODELS, "inferops: Models and providers",
                       "Unit economics per model and provider (USD): $ per 1M tokens, output/input ratio, "
                       "latency against cost, streaming share, estimated usage. Generated by "
                       "`inferops dashboards build`.", panels, time_from="now-7d")
