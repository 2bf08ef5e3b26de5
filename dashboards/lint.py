"""A small PromQL reader and the dashboard-linter rules the inferops dashboards must meet.

Not a full PromQL parser: a tokenizer plus the structure we need to check
queries against the names contract and the grafana/dashboard-linter rules
(FACTS.md): metric names, label matchers, ``by``/``without``/``on``/
``ignoring`` label lists, ``label_replace`` label arguments, and the function
wrapping each counter selector.

Series a query may name: inferops' own (:mod:`inferops.names`: metrics and
recording rules) and the external GPU / serving-engine metrics the GPU cost
dashboard reads (dcgm-exporter, vLLM, NIM, TGI: :mod:`inferops.alerts.gpu_sources`,
counters from ``EXTERNAL_COUNTERS``). Anything else fails. Labels are checked
per series: a matcher must name a label of its series, and a ``by()`` /
``on()`` / ``label_replace`` label must be a contract label or a label of one
of the series the query names (so a dcgm label is fine next to a dcgm metric,
and still rejected on a query that only reads ``inferops_*`` counters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from inferops.alerts import gpu_sources
from inferops.names import Metric, RecordingRules, all_label_names, all_metrics

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_:][\w:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>])
""", re.VERBOSE)

FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
    "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max_over_time",
    "min_over_time", "minute", "month", "predict_linear", "quantile_over_time", "rate", "resets", "round",
    "scalar", "sgn", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time",
    "time", "timestamp", "vector", "year",
})
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                          "bottomk", "topk", "quantile"})
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                      "unless", "offset"})
#: Label names PromQL itself introduces.
BUILTIN_LABELS = frozenset({"le", "__name__"})
#: Functions that may take a counter's range vector.
COUNTER_FUNCTIONS = frozenset({"rate", "increase"})


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]]
    #: Function whose argument this selector is ("" when not directly inside one).
    function: str
    #: The range after the selector (``$__range``), "" for an instant selector.
    window: str


@dataclass
class Query:
    expr: str
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: list[str] = field(default_factory=list)
    #: (destination, source) labels of label_replace calls.
    replaced_labels: list[tuple[str, str]] = field(default_factory=list)


class PromQLError(ValueError):
    pass


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(expr):
        m = _TOKEN.match(expr, i)
        if m is None:
            raise PromQLError(f"cannot read {expr[i:i + 20]!r} in {expr!r}")
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
        i = m.end()
    return out


def parse(expr: str) -> Query:
    """Extract selectors, grouping labels and label_replace labels from ``expr``."""
    toks = _tokens(expr)
    q = Query(expr)
    stack: list[str] = []  # function name (or "") per open parenthesis
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "ident" and text in ("by", "without", "on", "ignoring", "group_left", "group_right") \
                and nxt[1] == "(":
            j = i + 2
            while toks[j][1] != ")":
                if toks[j][0] == "ident":
                    q.grouping_labels.append(toks[j][1])
                j += 1
            i = j + 1
            continue
        if kind == "ident" and text in AGGREGATIONS and nxt[1] in ("by", "without"):
            j = i + 3  # aggregation, by, "("
            while toks[j][1] != ")":
                if toks[j][0] == "ident":
                    q.grouping_labels.append(toks[j][1])
                j += 1
            if j + 1 >= len(toks) or toks[j + 1][1] != "(":
                raise PromQLError(f"expected '(' after {text} {nxt[1]} (...) in {expr!r}")
            stack.append(text)
            i = j + 2
            continue
        if kind == "ident" and nxt[1] == "(" and (text in FUNCTIONS or text in AGGREGATIONS):
            if text == "label_replace":
                strings, depth = [], 0
                for k, t in toks[i + 2:]:
                    if t in ("(", "{"):
                        depth += 1
                    elif t in (")", "}"):
                        if depth == 0:
                            break
                        depth -= 1
                    elif k == "string" and depth == 0:
                        strings.append(t)
                if len(strings) < 4:
                    raise PromQLError(f"label_replace needs 4 string arguments in {expr!r}")
                q.replaced_labels.append((strings[0].strip('"\''), strings[2].strip('"\'')))
            stack.append(text)
            i += 2
            continue
        if kind == "ident" and text in KEYWORDS:
            i += 1
            continue
        if kind == "ident" or (kind == "op" and text == "{"):
            metric = text if kind == "ident" else ""
            j = i + 1 if kind == "ident" else i
            matchers: list[tuple[str, str, str]] = []
            if j < len(toks) and toks[j][1] == "{":
                j += 1
                while toks[j][1] != "}":
                    label, op, value = toks[j][1], toks[j + 1][1], toks[j + 2][1]
                    if toks[j][0] != "ident" or op not in ("=", "!=", "=~", "!~") or toks[j + 2][0] != "string":
                        raise PromQLError(f"bad matcher near {label!r} in {expr!r}")
                    matchers.append((label, op, value[1:-1]))
                    j += 3
                    if toks[j][1] == ",":
                        j += 1
                j += 1
            window = ""
            if j < len(toks) and toks[j][0] == "range":
                window = toks[j][1][1:-1]
                j += 1
            parent = stack[-1] if stack and toks[i - 1][1] == "(" else ""
            q.selectors.append(Selector(metric, matchers, parent, window))
            i = j
            continue
        if text == "(":
            stack.append("")
        elif text == ")":
            if not stack:
                raise PromQLError(f"unbalanced ')' in {expr!r}")
            stack.pop()
        i += 1
    if stack:
        raise PromQLError(f"unbalanced '(' in {expr!r}")
    return q


def _metric_index() -> dict[str, tuple[str, tuple[str, ...]]]:
    """series name -> (kind, labels) for every contract metric and recording rule."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for m in all_metrics():
        for name in m.prom_series_names:
            kind = "gauge" if m.kind == "gauge" else "counter"  # histogram series are counters
            out[name] = (kind if m.kind != "updown_counter" else "gauge", m.labels)
    for r in RecordingRules.all():
        out[r.name] = ("gauge", r.labels)
    return out


def _constants(cls: type) -> tuple[str, ...]:
    return tuple(v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str))


#: Labels Prometheus' Kubernetes discovery and the usual relabelling put on a serving-engine pod's
#: series (the GPU rules join engines to dcgm on namespace/pod; cluster comes from relabelling).
_ENGINE_TARGET_LABELS = (gpu_sources.DCGMLabel.CLUSTER, gpu_sources.DCGMLabel.NAMESPACE,
                         gpu_sources.DCGMLabel.POD, gpu_sources.DCGMLabel.CONTAINER)


def _external_index() -> dict[str, tuple[str, tuple[str, ...]]]:
    """series name -> (kind, labels) for the external metrics of :mod:`inferops.alerts.gpu_sources`."""
    dcgm_labels = _constants(gpu_sources.DCGMLabel)
    with_model = (gpu_sources.ENGINE_MODEL_LABEL, *_ENGINE_TARGET_LABELS)
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for cls, labels in ((gpu_sources.DCGM, dcgm_labels), (gpu_sources.VLLM, with_model),
                        (gpu_sources.NIM, with_model), (gpu_sources.TGI, _ENGINE_TARGET_LABELS)):
        for name in _constants(cls):
            out[name] = ("counter" if name in gpu_sources.EXTERNAL_COUNTERS else "gauge", labels)
    return out


def external_metric(name: str) -> bool:
    """True for a dcgm-exporter / vLLM / NIM / TGI series named in :mod:`inferops.alerts.gpu_sources`."""
    return name in _external_index()


def series_labels(name: str) -> tuple[str, ...] | None:
    """Labels of a series a dashboard may name (contract, recording rule or external), else None."""
    entry = {**_external_index(), **_metric_index()}.get(name)
    return entry[1] if entry else None


def check(expr: str) -> list[str]:
    """Problems of one dashboard query (empty when it meets the contract and the linter rules)."""
    problems: list[str] = []
    try:
        q = parse(expr)
    except PromQLError as exc:
        return [str(exc)]
    index = _metric_index()
    external = _external_index()
    known_labels = set(all_label_names() | BUILTIN_LABELS)
    for s in q.selectors:
        if s.metric in index:
            known_labels.update(index[s.metric][1])
        elif s.metric in external:
            known_labels.update(external[s.metric][1])
    for s in q.selectors:
        if not s.metric:
            problems.append(f"selector without a metric name in {expr!r}")
            continue
        if s.metric not in index and s.metric not in external:
            problems.append(f"metric {s.metric!r} is neither in the names contract nor an external GPU/serving "
                            "metric of inferops.alerts.gpu_sources")
            continue
        kind, labels = index[s.metric] if s.metric in index else external[s.metric]
        for label, _, _ in s.matchers:
            if label not in labels and label not in BUILTIN_LABELS:
                problems.append(f"label {label!r} is not a label of {s.metric}")
        if kind == "counter":
            if s.function not in COUNTER_FUNCTIONS or not s.window:
                problems.append(f"counter {s.metric} outside rate()/increase() (target-counter-agg)")
        if s.function == "rate" and s.window != "$__rate_interval":
            problems.append(f"rate() over {s.window!r}, expected $__rate_interval (target-rate-interval)")
        if s.function == "increase" and s.window not in ("$__range", "$__rate_interval"):
            problems.append(f"increase() over {s.window!r}, expected $__range or $__rate_interval")
    for label in q.grouping_labels:
        if label not in known_labels:
            problems.append(f"grouping label {label!r} is not in the names contract nor a label of the "
                            "series the query names")
    for dst, src in q.replaced_labels:
        for label in (dst, src):
            if label not in known_labels:
                problems.append(f"label_replace label {label!r} is not in the names contract nor a label of "
                                "the series the query names")
    return problems


_LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+), *(?P<label>\w+)\)")


def check_label_values(query: str) -> list[str]:
    """Problems of a query variable's ``label_values(selector, label)``.

    The selector names a known series with matchers on its own labels, and the
    label is one of that series' labels (else the variable could never list a
    value). The counter rule does not apply: ``label_values`` reads the series
    index, it evaluates no counter.
    """
    m = _LABEL_VALUES.fullmatch(query)
    if m is None:
        return [f"expected label_values(selector, label), got {query!r}"]
    try:
        q = parse(m["selector"])
    except PromQLError as exc:
        return [str(exc)]
    if len(q.selectors) != 1 or q.grouping_labels or q.replaced_labels:
        return [f"expected one series selector in {query!r}"]
    s = q.selectors[0]
    labels = series_labels(s.metric)
    if labels is None:
        return [f"metric {s.metric!r} is neither in the names contract nor an external GPU/serving metric"]
    problems = [f"label {label!r} is not a label of {s.metric}" for label, _, _ in s.matchers
                if label not in labels and label not in BUILTIN_LABELS]
    if m["label"] not in labels:
        problems.append(f"variable label {m['label']!r} is not a label of {s.metric}")
    return problems


def metric_names(expr: str) -> set[str]:
    return {s.metric for s in parse(expr).selectors if s.metric}


def contract_metric(name: str) -> Metric | None:
    for m in all_metrics():
        if name in m.prom_series_names:
            return m
    return None
