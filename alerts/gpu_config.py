"""The ``gpu:`` configuration: GPU prices, serving engines, team mapping, GPU alert thresholds.

Loaded from its own YAML file (``docs/examples/gpu.example.yaml``; documented in
``docs/gpu.md``). Only the top-level ``gpu:`` key is read, so the section may
also live in a file with other top-level keys. Every error names the file, the
line and the field (:class:`inferops.yamlfile.ConfigError`).

Price precedence (most specific wins, per GPU): ``node`` (also ``instance_type``
entries, which name their nodes) > ``cluster`` + ``model`` > ``model`` >
``cluster`` > the default entry (no match keys). A GPU that matches no entry
has no price and therefore no cost series: unpriced, never $0.

Money is US dollars; prices are per GPU-hour unless ``gpus_per_instance`` says
the figure is for a whole instance (node).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferops.yamlfile import ConfigError, LineDict, LineList, describe, fail, load_file, load_text

from .gpu_sources import ENGINES

#: Hours in an average month (8760 / 12): amortised purchase price per hour = price / (months x this).
HOURS_PER_MONTH = 730.0

#: Price match kinds, most specific first, and the GPU labels each joins on.
PRICE_PRECEDENCE: tuple[str, ...] = ("node", "cluster_model", "model", "cluster", "default")

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_TOP_KEYS = {"rate_window", "utilisation", "mig_slices_per_gpu", "prices", "power", "serving", "teams",
             "alerts"}
_PRICE_KEYS = {"node", "model", "cluster", "instance_type", "nodes", "gpus_per_instance", "usd_per_hour",
               "on_demand_usd_per_hour", "reserved_usd_per_hour", "purchase", "note"}
_RATE_KEYS = ("usd_per_hour", "on_demand_usd_per_hour", "reserved_usd_per_hour", "purchase")
_SERVING_KEYS = {"engine", "model", "provider", "namespace", "pods", "team", "project", "comparable_api",
                 "estimate"}
_TEAM_KEYS = {"team", "project", "namespaces", "pods"}
_UTILISATION = ("auto", "engine_active", "gpu_util")
_LABEL_VALUE = re.compile(r"^[^\"\\\n]+$")


# ---------------------------------------------------------------------------
# Typed configuration
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GPUPrice:
    """One configured GPU price, already in USD per GPU-hour."""

    kind: str  # one of PRICE_PRECEDENCE
    node: str = ""
    model: str = ""
    cluster: str = ""
    usd_per_gpu_hour: float = 0.0
    #: "on_demand", "reserved", "purchase" or "rate" (plain usd_per_hour).
    basis: str = "rate"
    where: str = ""


@dataclass(frozen=True)
class ComparableAPI:
    """The API model a self-hosted model is compared with, priced in USD per 1M tokens."""

    provider: str
    model: str
    input_usd_per_1m: float
    output_usd_per_1m: float
    #: "catalog:<entry key>" or "config".
    source: str = "config"


@dataclass(frozen=True)
class ServedModel:
    """A model served by a self-hosted engine."""

    engine: str
    model: str
    #: inferops provider name of calls to this server (``self_hosted`` setting value).
    provider: str
    namespace: str = ""
    pods: str = ""
    team: str = ""
    project: str = ""
    comparable: ComparableAPI | None = None
    #: Per-token estimate used in-process / by ``inferops serve`` (USD per 1M tokens), if configured.
    estimate_usd_per_1m: float | None = None
    #: When the estimate came from a GPU price: (gpu_usd_per_hour, tokens_per_gpu_hour).
    estimate_gpu: tuple[float, float] | None = None
    where: str = ""


@dataclass(frozen=True)
class TeamMapping:
    """Pods/namespaces owned by a team (a pod match wins over a namespace match)."""

    team: str
    project: str = ""
    namespaces: tuple[str, ...] = ()
    pods: str = ""
    where: str = ""


@dataclass(frozen=True)
class IdleAlert:
    usd_per_day: float = 20.0
    utilisation_below: float = 0.2
    for_: str = "2h"
    severity: str = "warning"


@dataclass(frozen=True)
class AboveAPIAlert:
    margin_percent: float = 0.0
    for_: str = "1h"
    severity: str = "warning"


@dataclass(frozen=True)
class GPUConfig:
    prices: tuple[GPUPrice, ...] = ()
    power_usd_per_kwh: float | None = None
    power_by_cluster: dict[str, float] = field(default_factory=dict)
    serving: tuple[ServedModel, ...] = ()
    teams: tuple[TeamMapping, ...] = ()
    idle: IdleAlert = IdleAlert()
    above_api: AboveAPIAlert = AboveAPIAlert()
    rate_window: str = "5m"
    utilisation: str = "auto"
    mig_slices_per_gpu: int = 7
    runbook_url: str = ""
    dashboard_url: str = ""
    source: str = ""

    @property
    def has_power(self) -> bool:
        return self.power_usd_per_kwh is not None or bool(self.power_by_cluster)

    def engines(self) -> tuple[str, ...]:
        """Engines that serve at least one configured model, in a stable order."""
        used = {s.engine for s in self.serving}
        return tuple(e for e in ENGINES if e in used)


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _where(container: Any, key: Any) -> str:
    return f"{getattr(container, 'source', '')}:{container.line_of(key)}"


def _unknown(container: LineDict, allowed: set[str], ctx: str) -> None:
    for key in container:
        if key not in allowed:
            raise fail(container, key, f"unknown field {key!r}; expected one of: {', '.join(sorted(allowed))}",
                       field=f"{ctx}.{key}")


def _mapping(container: Any, key: Any, ctx: str) -> LineDict:
    value = container[key]
    if not isinstance(value, dict):
        raise fail(container, key, f"expected a mapping, got {describe(value)}", field=ctx)
    return value


def _list(container: LineDict, key: str, ctx: str) -> list:
    value = container.get(key)
    if value is None:
        return LineList()
    if not isinstance(value, list):
        raise fail(container, key, f"expected a list, got {describe(value)}", field=ctx)
    return value


def _str(container: Any, key: Any, ctx: str, *, required: bool = False) -> str:
    present = (0 <= key < len(container)) if isinstance(container, list) else key in container
    if not present or container[key] is None:
        if required:
            raise fail(container, key, f"missing required field {key!r}", field=ctx)
        return ""
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise fail(container, key, f"expected a non-empty string, got {describe(value)}", field=ctx)
    text = str(value).strip()
    if not _LABEL_VALUE.match(text):
        raise fail(container, key, f"expected a label value without quotes, backslashes or newlines, "
                                   f"got {describe(value)}", field=ctx)
    return text


def _number(container: Any, key: Any, ctx: str, *, positive: bool = False, maximum: float | None = None) -> float:
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise fail(container, key, f"expected a number, got {describe(value)}", field=ctx)
    if value < 0 or (positive and value == 0) or (maximum is not None and value > maximum):
        expected = "> 0" if positive else ">= 0"
        if maximum is not None:
            expected += f" and <= {maximum:g}"
        raise fail(container, key, f"expected a number {expected}, got {describe(value)}", field=ctx)
    return float(value)


def _regex(container: Any, key: str, ctx: str) -> str:
    text = _str(container, key, ctx)
    if text:
        try:
            re.compile(text)
        except re.error as exc:
            raise fail(container, key, f"not a valid regular expression ({exc}), got {describe(text)}",
                       field=ctx) from None
    return text


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (``90s``, ``2h``, ``1h30m``)."""
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text):
        total += int(number) * _DURATION_UNITS[unit]
    return total


def _duration(container: Any, key: str, ctx: str, default: str) -> str:
    if key not in container:
        return default
    value = container[key]
    if not isinstance(value, str) or not _DURATION.match(value.strip()) or parse_duration(value.strip()) <= 0:
        raise fail(container, key, f"expected a Prometheus duration such as 30s, 5m, 2h, 1h30m, "
                                   f"got {describe(value)}", field=ctx)
    return value.strip()


def _url(container: Any, key: str, ctx: str) -> str:
    text = _str(container, key, ctx)
    if text and not text.startswith(("http://", "https://")):
        raise fail(container, key, f"expected an http:// or https:// URL, got {describe(text)}", field=ctx)
    return text


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


def _parse_prices(gpu: LineDict) -> tuple[GPUPrice, ...]:
    items = _list(gpu, "prices", "gpu.prices")
    out: list[GPUPrice] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for i, item in enumerate(items):
        ctx = f"gpu.prices[{i}]"
        if not isinstance(item, dict):
            raise fail(items, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown(item, _PRICE_KEYS, ctx)
        rates = [k for k in _RATE_KEYS if k in item]
        if len(rates) != 1:
            got = ", ".join(rates) if rates else "none"
            raise fail(items, i, f"expected exactly one of {', '.join(_RATE_KEYS)}, got {got}", field=ctx)
        rate_key = rates[0]
        if rate_key == "purchase":
            purchase = _mapping(item, "purchase", f"{ctx}.purchase")
            _unknown(purchase, {"price_usd", "months"}, f"{ctx}.purchase")
            for k in ("price_usd", "months"):
                if k not in purchase:
                    raise fail(purchase, k, f"missing required field {k!r}", field=f"{ctx}.purchase.{k}")
            price = _number(purchase, "price_usd", f"{ctx}.purchase.price_usd", positive=True)
            months = _number(purchase, "months", f"{ctx}.purchase.months", positive=True)
            per_hour = price / (months * HOURS_PER_MONTH)
            basis = "purchase"
        else:
            per_hour = _number(item, rate_key, f"{ctx}.{rate_key}", positive=True)
            basis = {"usd_per_hour": "rate", "on_demand_usd_per_hour": "on_demand",
                     "reserved_usd_per_hour": "reserved"}[rate_key]
        gpus = 1.0
        if "gpus_per_instance" in item:
            gpus = _number(item, "gpus_per_instance", f"{ctx}.gpus_per_instance", positive=True)
        per_gpu = per_hour / gpus
        node = _str(item, "node", f"{ctx}.node")
        model = _str(item, "model", f"{ctx}.model")
        cluster = _str(item, "cluster", f"{ctx}.cluster")
        where = _where(items, i)
        if "instance_type" in item:
            _str(item, "instance_type", f"{ctx}.instance_type", required=True)
            if node or model or cluster:
                raise fail(item, "instance_type", "an instance_type entry names its nodes; it cannot also have "
                                                  "node, model or cluster", field=f"{ctx}.instance_type")
            nodes = _list(item, "nodes", f"{ctx}.nodes")
            if not nodes:
                raise fail(item, "instance_type", "missing 'nodes': dcgm-exporter does not report instance "
                                                  "types, so list the nodes of this type", field=f"{ctx}.nodes")
            entries = [GPUPrice("node", node=_str(nodes, j, f"{ctx}.nodes[{j}]", required=True),
                                usd_per_gpu_hour=per_gpu, basis=basis, where=where) for j in range(len(nodes))]
        else:
            if "nodes" in item:
                raise fail(item, "nodes", "'nodes' belongs to instance_type entries; use 'node' for one node",
                           field=f"{ctx}.nodes")
            if node and (model or cluster):
                raise fail(item, "node", "a node entry is the most specific price; drop model/cluster",
                           field=f"{ctx}.node")
            kind = ("node" if node else "cluster_model" if (model and cluster) else "model" if model
                    else "cluster" if cluster else "default")
            entries = [GPUPrice(kind, node=node, model=model, cluster=cluster, usd_per_gpu_hour=per_gpu,
                                basis=basis, where=where)]
        for e in entries:
            key = (e.kind, e.node, e.model, e.cluster)
            if key in seen:
                what = ", ".join(f"{k}={v!r}" for k, v in (("node", e.node), ("model", e.model),
                                                           ("cluster", e.cluster)) if v) or "default"
                raise fail(items, i, f"a price for {what} is already defined at {seen[key]}", field=ctx)
            seen[key] = where
            out.append(e)
    return tuple(out)


def _parse_power(gpu: LineDict) -> tuple[float | None, dict[str, float]]:
    if "power" not in gpu:
        return None, {}
    power = _mapping(gpu, "power", "gpu.power")
    _unknown(power, {"usd_per_kwh", "clusters"}, "gpu.power")
    default = _number(power, "usd_per_kwh", "gpu.power.usd_per_kwh") if "usd_per_kwh" in power else None
    by_cluster: dict[str, float] = {}
    if "clusters" in power:
        clusters = _mapping(power, "clusters", "gpu.power.clusters")
        for name in clusters:
            _str(LineDict({"cluster": name}), "cluster", f"gpu.power.clusters.{name}", required=True)
            by_cluster[str(name)] = _number(clusters, name, f"gpu.power.clusters.{name}")
    if default is None and not by_cluster:
        raise fail(gpu, "power", "expected usd_per_kwh and/or clusters: {name: usd_per_kwh}", field="gpu.power")
    return default, by_cluster


def _comparable(item: LineDict, ctx: str, resolve) -> ComparableAPI | None:
    if "comparable_api" not in item:
        return None
    comp = _mapping(item, "comparable_api", f"{ctx}.comparable_api")
    cctx = f"{ctx}.comparable_api"
    _unknown(comp, {"provider", "model", "usd_per_1m_tokens"}, cctx)
    provider = _str(comp, "provider", f"{cctx}.provider", required=True)
    model = _str(comp, "model", f"{cctx}.model", required=True)
    if "usd_per_1m_tokens" in comp:
        prices = _mapping(comp, "usd_per_1m_tokens", f"{cctx}.usd_per_1m_tokens")
        _unknown(prices, {"input", "output"}, f"{cctx}.usd_per_1m_tokens")
        for k in ("input", "output"):
            if k not in prices:
                raise fail(prices, k, f"missing required field {k!r}", field=f"{cctx}.usd_per_1m_tokens.{k}")
        return ComparableAPI(provider, model, _number(prices, "input", f"{cctx}.usd_per_1m_tokens.input"),
                             _number(prices, "output", f"{cctx}.usd_per_1m_tokens.output"), "config")
    found = resolve(provider, model)
    if found is None:
        raise fail(comp, "model", f"comparable model {model!r} of provider {provider!r} is not in the price "
                                  "catalog (give usd_per_1m_tokens: {input, output} to price it yourself)",
                   field=f"{cctx}.model")
    return ComparableAPI(provider, model, *found)


def _parse_serving(gpu: LineDict, prices: tuple[GPUPrice, ...], resolve) -> tuple[ServedModel, ...]:
    items = _list(gpu, "serving", "gpu.serving")
    out: list[ServedModel] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        ctx = f"gpu.serving[{i}]"
        if not isinstance(item, dict):
            raise fail(items, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown(item, _SERVING_KEYS, ctx)
        engine = _str(item, "engine", f"{ctx}.engine", required=True).lower()
        if engine not in ENGINES:
            raise fail(item, "engine", f"expected one of {', '.join(ENGINES)}, got {describe(item['engine'])}",
                       field=f"{ctx}.engine")
        model = _str(item, "model", f"{ctx}.model", required=True)
        if model in seen:
            raise fail(items, i, f"model {model!r} is already configured at {seen[model]}", field=f"{ctx}.model")
        seen[model] = _where(items, i)
        namespace = _str(item, "namespace", f"{ctx}.namespace")
        pods = _regex(item, "pods", f"{ctx}.pods")
        if not ENGINES[engine].model_label and not (namespace or pods):
            raise fail(item, "engine", f"{engine} metrics carry no model label: give 'namespace' and/or 'pods' "
                                       "so inferops knows which pods serve this model", field=f"{ctx}.namespace")
        estimate_1m: float | None = None
        estimate_gpu: tuple[float, float] | None = None
        if "estimate" in item:
            est = _mapping(item, "estimate", f"{ctx}.estimate")
            ectx = f"{ctx}.estimate"
            _unknown(est, {"usd_per_1m_tokens", "tokens_per_gpu_hour", "gpu_usd_per_hour", "gpu_model"}, ectx)
            if "usd_per_1m_tokens" in est:
                if len(est) != 1:
                    raise fail(est, "usd_per_1m_tokens", "give either usd_per_1m_tokens or tokens_per_gpu_hour "
                                                         "with a GPU price, not both", field=ectx)
                estimate_1m = _number(est, "usd_per_1m_tokens", f"{ectx}.usd_per_1m_tokens", positive=True)
            else:
                if "tokens_per_gpu_hour" not in est:
                    raise fail(item, "estimate", "expected usd_per_1m_tokens, or tokens_per_gpu_hour with "
                                                 "gpu_usd_per_hour or gpu_model", field=ectx)
                tph = _number(est, "tokens_per_gpu_hour", f"{ectx}.tokens_per_gpu_hour", positive=True)
                if "gpu_usd_per_hour" in est:
                    gpu_hour = _number(est, "gpu_usd_per_hour", f"{ectx}.gpu_usd_per_hour", positive=True)
                elif "gpu_model" in est:
                    gpu_model = _str(est, "gpu_model", f"{ectx}.gpu_model", required=True)
                    match = [p for p in prices if p.kind == "model" and p.model == gpu_model]
                    match = match or [p for p in prices if p.kind == "default"]
                    if not match:
                        raise fail(est, "gpu_model", f"no model-level (or default) GPU price for {gpu_model!r} "
                                                     "in gpu.prices", field=f"{ectx}.gpu_model")
                    gpu_hour = match[0].usd_per_gpu_hour
                else:
                    raise fail(est, "tokens_per_gpu_hour", "tokens_per_gpu_hour needs gpu_usd_per_hour or "
                                                           "gpu_model", field=ectx)
                estimate_gpu = (gpu_hour, tph)
                estimate_1m = gpu_hour / tph * 1_000_000
        out.append(ServedModel(
            engine=engine, model=model, provider=_str(item, "provider", f"{ctx}.provider") or engine,
            namespace=namespace, pods=pods, team=_str(item, "team", f"{ctx}.team"),
            project=_str(item, "project", f"{ctx}.project"), comparable=_comparable(item, ctx, resolve),
            estimate_usd_per_1m=estimate_1m, estimate_gpu=estimate_gpu, where=_where(items, i)))
    return tuple(out)


def _parse_teams(gpu: LineDict) -> tuple[TeamMapping, ...]:
    items = _list(gpu, "teams", "gpu.teams")
    out: list[TeamMapping] = []
    for i, item in enumerate(items):
        ctx = f"gpu.teams[{i}]"
        if not isinstance(item, dict):
            raise fail(items, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown(item, _TEAM_KEYS, ctx)
        team = _str(item, "team", f"{ctx}.team", required=True)
        namespaces = _list(item, "namespaces", f"{ctx}.namespaces")
        ns = tuple(_str(namespaces, j, f"{ctx}.namespaces[{j}]", required=True) for j in range(len(namespaces)))
        pods = _regex(item, "pods", f"{ctx}.pods")
        if not ns and not pods:
            raise fail(item, "team", "expected 'namespaces' and/or 'pods' (a regex) to say what the team owns",
                       field=f"{ctx}.namespaces")
        out.append(TeamMapping(team, _str(item, "project", f"{ctx}.project"), ns, pods, _where(items, i)))
    return tuple(out)


def _parse_alerts(gpu: LineDict) -> tuple[IdleAlert, AboveAPIAlert, str, str]:
    if "alerts" not in gpu:
        return IdleAlert(), AboveAPIAlert(), "", ""
    alerts = _mapping(gpu, "alerts", "gpu.alerts")
    _unknown(alerts, {"idle", "cost_above_api", "runbook_url", "dashboard_url"}, "gpu.alerts")
    idle = IdleAlert()
    if "idle" in alerts:
        a = _mapping(alerts, "idle", "gpu.alerts.idle")
        _unknown(a, {"usd_per_day", "utilisation_below", "for", "severity"}, "gpu.alerts.idle")
        idle = IdleAlert(
            usd_per_day=_number(a, "usd_per_day", "gpu.alerts.idle.usd_per_day") if "usd_per_day" in a
            else idle.usd_per_day,
            utilisation_below=_number(a, "utilisation_below", "gpu.alerts.idle.utilisation_below", maximum=1.0)
            if "utilisation_below" in a else idle.utilisation_below,
            for_=_duration(a, "for", "gpu.alerts.idle.for", idle.for_),
            severity=_str(a, "severity", "gpu.alerts.idle.severity") or idle.severity)
    above = AboveAPIAlert()
    if "cost_above_api" in alerts:
        a = _mapping(alerts, "cost_above_api", "gpu.alerts.cost_above_api")
        _unknown(a, {"margin_percent", "for", "severity"}, "gpu.alerts.cost_above_api")
        above = AboveAPIAlert(
            margin_percent=_number(a, "margin_percent", "gpu.alerts.cost_above_api.margin_percent")
            if "margin_percent" in a else 0.0,
            for_=_duration(a, "for", "gpu.alerts.cost_above_api.for", above.for_),
            severity=_str(a, "severity", "gpu.alerts.cost_above_api.severity") or above.severity)
    return (idle, above, _url(alerts, "runbook_url", "gpu.alerts.runbook_url"),
            _url(alerts, "dashboard_url", "gpu.alerts.dashboard_url"))


def _catalog_resolver(catalog_file: str | None, prices_file: str | None):
    """(provider, model) -> (input, output) USD per 1M tokens from the catalog + overrides, or None."""
    from inferops.processors.catalog import load_catalog
    from inferops.processors.engine import CostEngine
    from inferops.processors.overrides import load_overrides

    engine = CostEngine(load_catalog(catalog_file or None), load_overrides(prices_file) if prices_file else None)

    def resolve(provider: str, model: str) -> tuple[float, float, str] | None:
        entry = engine.resolve(provider, model).entry
        if entry is None:
            return None
        per_m = entry.per_million()
        if "input" not in per_m or "output" not in per_m:
            return None
        return per_m["input"], per_m["output"], f"catalog:{entry.key}"

    return resolve


def parse_gpu_config(data: Any, source: str, *, catalog_file: str | None = None,
                     prices_file: str | None = None) -> GPUConfig:
    """Validate a parsed document whose top-level ``gpu:`` key holds the section."""
    if not isinstance(data, dict) or "gpu" not in data:
        raise ConfigError("expected a mapping with a top-level 'gpu:' section", source=source, line=1)
    gpu = _mapping(data, "gpu", "gpu")
    _unknown(gpu, _TOP_KEYS, "gpu")
    utilisation = _str(gpu, "utilisation", "gpu.utilisation") or "auto"
    if utilisation not in _UTILISATION:
        raise fail(gpu, "utilisation", f"expected one of {', '.join(_UTILISATION)}, got {describe(utilisation)}",
                   field="gpu.utilisation")
    slices = 7
    if "mig_slices_per_gpu" in gpu:
        value = gpu["mig_slices_per_gpu"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
            raise fail(gpu, "mig_slices_per_gpu", f"expected a whole number 1-8 (7 on A100/H100, 4 on A30), "
                                                  f"got {describe(value)}", field="gpu.mig_slices_per_gpu")
        slices = value
    prices = _parse_prices(gpu)
    power, power_by_cluster = _parse_power(gpu)
    resolver = None

    def resolve(provider: str, model: str):
        nonlocal resolver
        if resolver is None:
            resolver = _catalog_resolver(catalog_file, prices_file)
        return resolver(provider, model)

    serving = _parse_serving(gpu, prices, resolve)
    teams = _parse_teams(gpu)
    idle, above, runbook, dashboard = _parse_alerts(gpu)
    return GPUConfig(prices=prices, power_usd_per_kwh=power, power_by_cluster=power_by_cluster, serving=serving,
                     teams=teams, idle=idle, above_api=above,
                     rate_window=_duration(gpu, "rate_window", "gpu.rate_window", "5m"),
                     utilisation=utilisation, mig_slices_per_gpu=slices, runbook_url=runbook,
                     dashboard_url=dashboard, source=source)


def load_gpu_config(path: str | Path, *, catalog_file: str | None = None,
                    prices_file: str | None = None) -> GPUConfig:
    """Load and validate the ``gpu:`` section of a YAML file (raises :class:`ConfigError`)."""
    return parse_gpu_config(load_file(path), str(path), catalog_file=catalog_file, prices_file=prices_file)


def parse_gpu_config_text(text: str, source: str = "<string>", **kwargs: Any) -> GPUConfig:
    return parse_gpu_config(load_text(text, source), source, **kwargs)


# ---------------------------------------------------------------------------
# Link to in-process / OTLP pricing: an overrides document
# ---------------------------------------------------------------------------


def overrides_document(config: GPUConfig) -> dict[str, Any]:
    """A price-overrides document (``processors/overrides.py`` format) for the served models.

    Each served model with an ``estimate`` becomes a self-hosted entry, so the
    instrumentation and ``inferops serve`` price calls to it with the same
    per-token estimate the GPU dashboard shows beside the GPU-derived actual.
    Point ``INFEROPS_PRICES_FILE`` at the written file (or merge the entries
    into an existing overrides file).
    """
    models: list[dict[str, Any]] = []
    for s in config.serving:
        if s.estimate_usd_per_1m is None:
            continue
        if s.estimate_gpu is not None:
            gpu_hour, tph = s.estimate_gpu
            models.append({"provider": s.provider, "model": s.model, "self_hosted": True,
                           "gpu_hour_usd": gpu_hour, "tokens_per_gpu_hour": tph})
        else:
            price = s.estimate_usd_per_1m
            models.append({"provider": s.provider, "model": s.model, "self_hosted": True,
                           "prices": {"input": price, "output": price}})
    return {"models": models}


def write_overrides(config: GPUConfig, path: str | Path) -> Path:
    """Write :func:`overrides_document` as YAML (validate with ``inferops prices validate PATH``)."""
    import yaml

    out = Path(path)
    header = (f"# Generated from the gpu: section of {config.source or 'a gpu config'} "
              "(inferops.alerts.gpu_config.write_overrides).\n"
              "# Per-token estimates of self-hosted models; point INFEROPS_PRICES_FILE here or merge.\n")
    out.write_text(header + yaml.safe_dump(overrides_document(config), sort_keys=False), encoding="utf-8")
    return out
