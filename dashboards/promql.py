"""PromQL built from the names contract, so no dashboard query spells a metric or label by hand.

Every metric name comes from :class:`inferops.names.Metrics` (``.prom_name``) and
every label from :class:`inferops.names.Label` or, for the GenAI semconv
histograms, from the contract's attribute names translated as the Prometheus
exporters translate them. Grafana variables are referenced as ``$name``.

Conventions the helpers enforce (grafana/dashboard-linter rules):

* counters appear only inside ``rate()`` / ``increase()``;
* ``rate()`` uses ``$__rate_interval``; ``increase()`` over the whole panel
  range uses ``$__range`` (a total for the selected range, e.g. a stat);
* every inferops_* selector carries the dashboard filters (environment, team,
  project, feature, provider, model) as regex matchers, which is how Grafana
  interpolates multi-value variables with "All" (``.*``).
"""

from __future__ import annotations

from typing import Iterable

from inferops.names import GenAI, Label, Metric, Metrics

RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"

#: (label, dashboard variable) in chaining order: each variable's values are
#: restricted by the variables before it.
FILTERS: tuple[tuple[str, str], ...] = (
    (Label.ENVIRONMENT, "environment"),
    (Label.TEAM, "team"),
    (Label.PROJECT, "project"),
    (Label.FEATURE, "feature"),
    (Label.PROVIDER, "provider"),
    (Label.MODEL, "model"),
)
FILTER_VARIABLES: tuple[str, ...] = tuple(var for _, var in FILTERS)


def prom_label(attribute: str) -> str:
    """Prometheus label of a span/metric attribute, as the OTel Prometheus exporters translate it."""
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else "_" for ch in attribute)


#: Semconv histogram labels that the provider and model filters map to. The
#: semconv histograms carry no attribution labels, so only these two filters apply.
SEMCONV_PROVIDER = prom_label(GenAI.PROVIDER_NAME)
SEMCONV_MODEL = prom_label(GenAI.RESPONSE_MODEL)
SEMCONV_FILTERS: tuple[tuple[str, str], ...] = ((SEMCONV_PROVIDER, "provider"), (SEMCONV_MODEL, "model"))


def eq(label: str, value: str) -> str:
    """``label="value"``."""
    return f'{label}="{value}"'


def ne(label: str, value: str) -> str:
    """``label!="value"``."""
    return f'{label}!="{value}"'


def re_(label: str, values: Iterable[str]) -> str:
    """``label=~"a|b"``."""
    return f'{label}=~"{"|".join(values)}"'


def var_matchers(filters: tuple[tuple[str, str], ...] = FILTERS, upto: str | None = None) -> list[str]:
    """Regex matchers for the dashboard variables (all of them, or those before ``upto``)."""
    out = []
    for label, var in filters:
        if var == upto:
            break
        out.append(f'{label}=~"${var}"')
    return out


def sel(metric: Metric, *extra: str, suffix: str = "", filters: bool = True) -> str:
    """A selector for ``metric`` with the dashboard filters and ``extra`` matchers.

    ``suffix`` selects a histogram series (``_bucket``, ``_sum``, ``_count``).
    Semconv histograms get the provider/model filters on their semconv labels.
    """
    name = metric.prom_name + suffix
    if name not in metric.prom_series_names:
        raise ValueError(f"{name} is not a series of {metric.otel_name}")
    matchers: list[str] = []
    if filters:
        matchers = var_matchers(SEMCONV_FILTERS if metric.kind == "histogram" else FILTERS)
    for m in extra:
        label = m.split("=", 1)[0].rstrip("!~")
        if label not in metric.labels and label != "le":
            raise ValueError(f"label {label!r} is not on {metric.prom_name}")
        matchers.append(m)
    for label, _ in (SEMCONV_FILTERS if metric.kind == "histogram" else FILTERS) if filters else ():
        if label not in metric.labels:
            raise ValueError(f"filter label {label!r} is not on {metric.prom_name}")
    return f"{name}{{{', '.join(matchers)}}}"


def rate(selector: str, window: str = RATE_INTERVAL) -> str:
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = RANGE) -> str:
    return f"increase({selector}[{window}])"


def sum_(expr: str, by: Iterable[str] = ()) -> str:
    """``sum by (...) (expr)``, or ``sum(expr)`` without labels."""
    labels = tuple(by)
    if labels:
        return f"sum by ({', '.join(labels)}) ({expr})"
    return f"sum({expr})"


def spend(by: Iterable[str] = (), window: str = RANGE, *extra: str) -> str:
    """USD spent in ``window``, summed by ``by``."""
    return sum_(increase(sel(Metrics.COST, *extra), window), by)


def spend_rate_per_hour(by: Iterable[str] = (), *extra: str) -> str:
    """Current spend rate in USD per hour."""
    return f"{sum_(rate(sel(Metrics.COST, *extra)), by)} * 3600"


def total(metric: Metric, by: Iterable[str] = (), *extra: str, window: str = RANGE) -> str:
    """Increase of a counter over ``window``, summed."""
    return sum_(increase(sel(metric, *extra), window), by)


def ratio_or_zero(numerator: str, denominator: str) -> str:
    """``numerator / denominator`` where a missing numerator series means 0 (not "no data").

    ``(num or den * 0) / den``: keeps the denominator's label set, so a model
    that never streamed shows 0 % rather than disappearing.
    """
    return f"({numerator} or {denominator} * 0) / {denominator}"
