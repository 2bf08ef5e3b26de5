"""Prometheus rules for self-hosted GPU cost, generated from the ``gpu:`` configuration.

``gpu_rule_groups(config)`` returns plain ``groups:`` items (Prometheus, Thanos
and Mimir rulers): one group of recording rules, evaluated in dependency order,
and one group of alerts. How each figure is computed is documented in
``docs/gpu.md``; in short:

1. **Prices into PromQL.** Each configured price becomes a constant series
   ``config:inferops_gpu_price_usd_per_hour`` (``vector(price)`` with the
   entry's ``price_match``/``Hostname``/``modelName``/``cluster`` as rule
   labels). Per GPU, the most specific price wins: one ``* on(<keys>)
   group_left()`` join per level, combined with ``or`` from the most specific
   level down (node > cluster+model > model > cluster > default); ``or`` only
   adds GPUs the earlier levels did not price.
2. **GPU identity.** dcgm-exporter series are normalised (``hostname`` is copied
   into ``Hostname``; ``exported_pod``/``exported_namespace``/``exported_container``
   into ``pod``/``namespace``/``container``) and reduced to one series per GPU,
   or per MIG instance (``GPU_I_ID``) where a GPU is partitioned; a MIG instance
   costs ``slices / mig_slices_per_gpu`` of its GPU, the slices read from
   ``GPU_I_PROFILE`` (``3g.40gb`` = 3). A GPU no pod holds gets
   ``namespace``/``pod`` = ``unallocated``; team/project come from the
   ``teams:`` mapping (pod regex over namespace), else ``unattributed``.
3. **Costs.** hardware = price x share; energy = rate(mJ) x USD/kWh / 1e6;
   total = hardware + energy; busy = hardware x utilisation; idle =
   hardware x (1 - utilisation), utilisation from
   ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (0-1), else ``DCGM_FI_DEV_GPU_UTIL / 100``.
4. **Served models.** Token rates per engine pod (vLLM/NIM ``model_name``;
   TGI from the config's namespace/pod mapping) are joined to the GPU cost of
   the same ``cluster``/``namespace``/``pod``; cost per 1M tokens = GPU USD
   per second / tokens per second x 1e6.
5. **Teams.** A model's GPU cost is split by each team's share of its tokens in
   inferops' own ``inferops_tokens_total`` (``provider`` = the serving entry's
   provider name): the serving engine does not know who called it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from inferops.names import UNALLOCATED, UNATTRIBUTED, Label, Metrics, RecordingRules, TokenType

from .gpu_config import PRICE_PRECEDENCE, GPUConfig, ServedModel
from .gpu_sources import DCGM, DCGMLabel, ENGINES

R = RecordingRules
IDLE_ALERT = "InferopsGPUIdleSpend"
ABOVE_API_ALERT = "InferopsSelfHostedCostAboveAPI"
RECORDING_GROUP = "inferops-gpu-cost"
ALERT_GROUP = "inferops-gpu-alerts"
DEFAULT_RUNBOOK = "https://github.com/inferops/inferops/blob/main/docs/gpu.md#runbook"

L = DCGMLabel
#: Labels identifying one GPU (or MIG instance) after normalisation.
GPU_KEY: tuple[str, ...] = (L.CLUSTER, L.HOSTNAME, L.MODEL_NAME, L.GPU, L.UUID, L.MIG_ID, L.MIG_PROFILE,
                            L.NAMESPACE, L.POD, L.CONTAINER)
#: ... plus ownership.
GPU_LABELS: tuple[str, ...] = (*GPU_KEY, Label.TEAM, Label.PROJECT)
POD_KEY: tuple[str, ...] = (L.CLUSTER, L.NAMESPACE, L.POD)
OWNER: tuple[str, ...] = (Label.TEAM, Label.PROJECT)
#: Labels each price level joins on.
PRICE_JOIN: dict[str, tuple[str, ...]] = {
    "node": (L.HOSTNAME,),
    "cluster_model": (L.CLUSTER, L.MODEL_NAME),
    "model": (L.MODEL_NAME,),
    "cluster": (L.CLUSTER,),
    "default": (),
}
_MIG_SLICES = "mig_slices"  # temporary label, aggregated away inside one expression


def _by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


def _raw(text: str) -> str:
    """A PromQL raw string (backticks: no escape processing, so regexes stay readable)."""
    if "`" in text:
        raise ValueError(f"backtick in {text!r}")
    return f"`{text}`"


def _regex_alternatives(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly these values."""
    specials = set(".^$*+?()[]{}|\\")
    return "|".join("".join(f"\\{c}" if c in specials else c for c in v) for v in values)


def _label_set(label: str, value: str, expr: str, source_label: str = "", regex: str = "") -> str:
    return f"label_replace({expr}, \"{label}\", {_raw(value)}, \"{source_label}\", {_raw(regex)})"


def _normalise(selector: str) -> str:
    """Copy newer / renamed dcgm labels onto the canonical ones (Hostname, pod, namespace, container)."""
    expr = f"label_replace({selector}, \"{L.HOSTNAME}\", \"$1\", \"{L.HOSTNAME_NEW}\", \"(.+)\")"
    for canonical, exported in ((L.NAMESPACE, L.EXPORTED_NAMESPACE), (L.POD, L.EXPORTED_POD),
                                (L.CONTAINER, L.EXPORTED_CONTAINER)):
        expr = f"label_replace({expr}, \"{canonical}\", \"$1\", \"{exported}\", \"(.+)\")"
    return expr


def _ownership(expr: str, config: GPUConfig) -> str:
    """Add team/project from the teams mapping: namespace matches first, pod matches override them."""
    for mapping in config.teams:
        if mapping.namespaces:
            ns = _regex_alternatives(mapping.namespaces)
            expr = _label_set(Label.TEAM, mapping.team, expr, L.NAMESPACE, ns)
            expr = _label_set(Label.PROJECT, mapping.project or UNATTRIBUTED, expr, L.NAMESPACE, ns)
    for mapping in config.teams:
        if mapping.pods:
            expr = _label_set(Label.TEAM, mapping.team, expr, L.POD, mapping.pods)
            expr = _label_set(Label.PROJECT, mapping.project or UNATTRIBUTED, expr, L.POD, mapping.pods)
    for label, value in ((Label.TEAM, UNATTRIBUTED), (Label.PROJECT, UNATTRIBUTED),
                         (L.NAMESPACE, UNALLOCATED), (L.POD, UNALLOCATED)):
        expr = _label_set(label, value, expr, label, "")
    return expr


def _rule(record: str, expr: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"record": record, "expr": expr}
    if labels:
        out["labels"] = dict(labels)
    return out


def _number(value: float) -> str:
    return repr(float(value))


# ---------------------------------------------------------------------------
# Recording rules
# ---------------------------------------------------------------------------


def _constant_rules(config: GPUConfig) -> list[dict[str, Any]]:
    rules = []
    for p in config.prices:
        labels = {Label.PRICE_MATCH: p.kind}
        if p.node:
            labels[L.HOSTNAME] = p.node
        if p.model:
            labels[L.MODEL_NAME] = p.model
        if p.cluster:
            labels[L.CLUSTER] = p.cluster
        rules.append(_rule(R.GPU_PRICE.name, f"vector({_number(p.usd_per_gpu_hour)})", labels))
    if config.power_usd_per_kwh is not None:
        rules.append(_rule(R.GPU_POWER_PRICE.name, f"vector({_number(config.power_usd_per_kwh)})"))
    for cluster, price in config.power_by_cluster.items():
        rules.append(_rule(R.GPU_POWER_PRICE.name, f"vector({_number(price)})", {L.CLUSTER: cluster}))
    for s in config.serving:
        if s.comparable is not None:
            for token_type, price in ((TokenType.INPUT, s.comparable.input_usd_per_1m),
                                      (TokenType.OUTPUT, s.comparable.output_usd_per_1m)):
                rules.append(_rule(R.COMPARABLE_API_PRICE.name, f"vector({_number(price)})", {
                    Label.MODEL: s.model, Label.TOKEN_TYPE: token_type,
                    Label.COMPARABLE_PROVIDER: s.comparable.provider, Label.COMPARABLE_MODEL: s.comparable.model}))
        if s.estimate_usd_per_1m is not None:
            rules.append(_rule(R.SELF_HOSTED_ESTIMATE.name, f"vector({_number(s.estimate_usd_per_1m)})",
                               {Label.MODEL: s.model}))
    return rules


def _identity_names() -> str:
    return "|".join((DCGM.FB_USED, DCGM.GPU_UTIL, DCGM.GR_ENGINE_ACTIVE))


def _share_rule(config: GPUConfig) -> dict[str, Any]:
    names = _identity_names()
    whole_sel = f'{{__name__=~"{names}", {L.MIG_ID}=""}}'
    mig_sel = f'{{__name__=~"{names}", {L.MIG_ID}!=""}}'
    whole = (f"group by ({_by(GPU_KEY)}) ({_normalise(whole_sel)})"
             f" unless on ({L.UUID}) group by ({L.UUID}) ({mig_sel})")
    n = config.mig_slices_per_gpu
    fractions = " or ".join(_label_set(_MIG_SLICES, str(k), f"vector({_number(k / n)})") for k in range(1, n + 1))
    mig = (f"{_label_set(_MIG_SLICES, '$1', f'group by ({_by(GPU_KEY)}) ({_normalise(mig_sel)})', L.MIG_PROFILE, '([0-9]+)g[.].*')}"
           f" * on ({_MIG_SLICES}) group_left() ({fractions})")
    expr = _ownership(f"max by ({_by(GPU_KEY)}) (({whole}) or ({mig}))", config)
    return _rule(R.GPU_SHARE.name, expr)


def _utilisation_rule(config: GPUConfig) -> dict[str, Any]:
    parts = []
    if config.utilisation in ("auto", "engine_active"):
        parts.append(f"max by ({_by(GPU_KEY)}) ({_normalise(DCGM.GR_ENGINE_ACTIVE)})")
    if config.utilisation in ("auto", "gpu_util"):
        parts.append(f"max by ({_by(GPU_KEY)}) ({_normalise(DCGM.GPU_UTIL)}) / 100")
    raw = " or ".join(f"({p})" for p in parts)
    # The ownership mapping is a pure function of the labels, so applying it here gives
    # exactly the share series' labels (team, project, unallocated namespace/pod).
    # "and" the share series: keeps only priced identities (drops a MIG GPU's whole-GPU series,
    # which would otherwise dilute the utilisation of unallocated GPUs).
    return _rule(R.GPU_UTILISATION.name,
                 f"{_ownership(f'clamp_max({raw}, 1)', config)}\nand {R.GPU_SHARE.name}")


def _hardware_rule(config: GPUConfig) -> dict[str, Any] | None:
    kinds = [k for k in PRICE_PRECEDENCE if any(p.kind == k for p in config.prices)]
    if not kinds:
        return None
    terms = []
    for kind in kinds:
        price = f'{R.GPU_PRICE.name}{{{Label.PRICE_MATCH}="{kind}"}}'
        terms.append(f"{R.GPU_SHARE.name} * on ({_by(PRICE_JOIN[kind])}) group_left () {price}")
    return _rule(R.GPU_HARDWARE_COST.name, "\n  or ".join(terms))


def _energy_rule(config: GPUConfig) -> dict[str, Any] | None:
    if not config.has_power:
        return None
    energy = f"max by ({L.CLUSTER}, {L.UUID}) (rate({DCGM.TOTAL_ENERGY}[{config.rate_window}]))"
    terms = []
    if config.power_by_cluster:
        terms.append(f'{energy} * on ({L.CLUSTER}) group_left () {R.GPU_POWER_PRICE.name}{{{L.CLUSTER}!=""}}')
    if config.power_usd_per_kwh is not None:
        terms.append(f'{energy} * on () group_left () {R.GPU_POWER_PRICE.name}{{{L.CLUSTER}=""}}')
    # mJ/s x 3600 s/h / 3.6e9 mJ/kWh x USD/kWh = mJ/s x USD/kWh / 1e6
    usd_per_hour = "(" + " or ".join(f"({t})" for t in terms) + ") / 1e6"
    return _rule(R.GPU_ENERGY_COST.name,
                 f"{R.GPU_SHARE.name} * on ({L.UUID}) group_left () {usd_per_hour}")


def _engine_token_terms(config: GPUConfig, engine: str, served: list[ServedModel]) -> list[str]:
    metrics = ENGINES[engine]
    terms = []
    for token_type, counter in ((TokenType.INPUT, metrics.input_tokens), (TokenType.OUTPUT, metrics.output_tokens)):
        if metrics.model_label:
            base = (f"sum by ({_by(POD_KEY)}, {metrics.model_label}) "
                    f"(rate({counter}[{config.rate_window}]))")
            base = f'label_replace({base}, "{Label.MODEL}", "$1", "{metrics.model_label}", "(.+)")'
            selected = [base]
        else:
            selected = []
            for s in served:
                matchers = []
                if s.namespace:
                    matchers.append(f'{L.NAMESPACE}="{s.namespace}"')
                if s.pods:
                    matchers.append(f"{L.POD}=~{_raw(s.pods)}")
                one = f"sum by ({_by(POD_KEY)}) (rate({counter}{{{', '.join(matchers)}}}[{config.rate_window}]))"
                selected.append(_label_set(Label.MODEL, s.model, one))
        for expr in selected:
            expr = _label_set(Label.TOKEN_TYPE, token_type, _label_set(Label.ENGINE, engine, expr))
            terms.append(f"sum by ({_by(POD_KEY)}, {Label.MODEL}, {Label.ENGINE}, {Label.TOKEN_TYPE}) ({expr})")
    return terms


def _model_rules(config: GPUConfig) -> list[dict[str, Any]]:
    if not config.serving:
        return []
    terms: list[str] = []
    for engine in config.engines():
        terms += _engine_token_terms(config, engine, [s for s in config.serving if s.engine == engine])
    rules = [_rule(R.POD_SERVED_TOKENS.name, "\n  or ".join(terms)),
             _rule(R.MODEL_SERVED_TOKENS.name,
                   f"sum by ({Label.MODEL}, {Label.TOKEN_TYPE}) ({R.POD_SERVED_TOKENS.name})")]
    pod_model = f"group by ({_by(POD_KEY)}, {Label.MODEL}, {Label.ENGINE}) ({R.POD_SERVED_TOKENS.name})"

    def per_model(series: str) -> str:
        return (f"sum by ({Label.MODEL}, {Label.ENGINE}) ({series} * on ({_by(POD_KEY)}) "
                f"group_left ({Label.MODEL}, {Label.ENGINE}) {pod_model})")

    rules += [
        _rule(R.MODEL_GPUS.name, per_model(R.GPU_SHARE.name)),
        _rule(R.MODEL_GPU_COST.name, per_model(R.POD_GPU_COST.name)),
        _rule(R.MODEL_GPU_IDLE_COST.name, per_model(R.POD_GPU_IDLE_COST.name)),
    ]
    tokens = f"(sum by ({Label.MODEL}) ({R.MODEL_SERVED_TOKENS.name}) > 0)"
    rules.append(_rule(
        R.MODEL_SELF_HOSTED_COST_PER_1M.name,
        f"sum by ({Label.MODEL}) ({R.MODEL_GPU_COST.name}) / 3600 * 1e6 / on ({Label.MODEL}) {tokens}"))
    if any(s.comparable for s in config.serving):
        comp = (Label.COMPARABLE_PROVIDER, Label.COMPARABLE_MODEL)
        rules.append(_rule(
            R.MODEL_COMPARABLE_API_COST_PER_1M.name,
            f"sum by ({Label.MODEL}, {_by(comp)}) ({R.MODEL_SERVED_TOKENS.name} * on ({Label.MODEL}, "
            f"{Label.TOKEN_TYPE}) group_left ({_by(comp)}) {R.COMPARABLE_API_PRICE.name})"
            f" / on ({Label.MODEL}) group_left () {tokens}"))
    providers = sorted({s.provider for s in config.serving})
    tokens_metric = Metrics.TOKENS.prom_name
    sel = f"{tokens_metric}{{{Label.PROVIDER}=~{_raw(_regex_alternatives(providers))}}}"
    rules.append(_rule(
        R.MODEL_TEAM_TOKEN_SHARE.name,
        f"sum by ({Label.MODEL}, {Label.TEAM}, {Label.PROJECT}) (rate({sel}[{config.rate_window}]))"
        f" / on ({Label.MODEL}) group_left () "
        f"(sum by ({Label.MODEL}) (rate({sel}[{config.rate_window}])) > 0)"))
    rules.append(_rule(
        R.MODEL_TEAM_SELF_HOSTED_COST.name,
        f"{R.MODEL_TEAM_TOKEN_SHARE.name} * on ({Label.MODEL}) group_left () "
        f"sum by ({Label.MODEL}) ({R.MODEL_GPU_COST.name})"))
    return rules


def recording_rules(config: GPUConfig) -> list[dict[str, Any]]:
    """Recording rules in dependency order (one group evaluates them sequentially)."""
    rules = _constant_rules(config)
    rules.append(_share_rule(config))
    rules.append(_utilisation_rule(config))
    hardware = _hardware_rule(config)
    if hardware is None:  # nothing priced: only utilisation and share can be recorded
        return rules
    rules.append(hardware)
    energy = _energy_rule(config)
    if energy is not None:
        rules.append(energy)
        total = f"{R.GPU_HARDWARE_COST.name} + {R.GPU_ENERGY_COST.name} or {R.GPU_HARDWARE_COST.name}"
    else:
        total = R.GPU_HARDWARE_COST.name
    rules.append(_rule(R.GPU_COST.name, total))
    rules.append(_rule(R.GPU_BUSY_COST.name, f"{R.GPU_HARDWARE_COST.name} * {R.GPU_UTILISATION.name}"))
    rules.append(_rule(R.GPU_IDLE_COST.name, f"{R.GPU_HARDWARE_COST.name} * (1 - {R.GPU_UTILISATION.name})"))
    node = (L.CLUSTER, L.HOSTNAME, L.MODEL_NAME)
    pod = (*POD_KEY, *OWNER)
    namespace = (L.CLUSTER, L.NAMESPACE, *OWNER)
    for rec, src, by in ((R.NODE_GPU_COST, R.GPU_COST, node), (R.NODE_GPU_IDLE_COST, R.GPU_IDLE_COST, node),
                         (R.POD_GPU_COST, R.GPU_COST, pod), (R.POD_GPU_IDLE_COST, R.GPU_IDLE_COST, pod),
                         (R.NAMESPACE_GPU_COST, R.GPU_COST, namespace),
                         (R.NAMESPACE_GPU_IDLE_COST, R.GPU_IDLE_COST, namespace)):
        rules.append(_rule(rec.name, f"sum by ({_by(by)}) ({src.name})"))
    rules += _model_rules(config)
    return rules


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------


def _annotations(config: GPUConfig, summary: str, description: str) -> dict[str, str]:
    out = {"summary": summary, "description": description, "runbook_url": config.runbook_url or DEFAULT_RUNBOOK}
    if config.dashboard_url:
        out["dashboard"] = config.dashboard_url
    return out


def alert_rules(config: GPUConfig, *, for_overrides: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """``InferopsGPUIdleSpend`` and one ``InferopsSelfHostedCostAboveAPI`` per compared model."""
    overrides = dict(for_overrides or {})
    if not config.prices:
        return []
    idle = config.idle
    group = (L.CLUSTER, L.NAMESPACE, L.POD, *OWNER)
    rules: list[dict[str, Any]] = [{
        "alert": IDLE_ALERT,
        "expr": (f"sum by ({_by(group)}) ({R.GPU_IDLE_COST.name}) * 24 > {_number(idle.usd_per_day)}\n"
                 f"and on ({_by(group)})\n"
                 f"avg by ({_by(group)}) ({R.GPU_UTILISATION.name}) < {_number(idle.utilisation_below)}"),
        "for": overrides.get(IDLE_ALERT, idle.for_),
        "labels": {Label.SEVERITY: idle.severity},
        "annotations": _annotations(
            config,
            "Idle GPUs of {{ $labels.namespace }}/{{ $labels.pod }} cost {{ $value | printf \"%.2f\" }} USD/day",
            "GPUs held by pod {{ $labels.pod }} in namespace {{ $labels.namespace }} (cluster "
            "{{ $labels.cluster }}, team {{ $labels.team }}) stayed below "
            f"{idle.utilisation_below * 100:g}% utilisation for {overrides.get(IDLE_ALERT, idle.for_)}; their idle "
            "share costs {{ $value | printf \"%.2f\" }} USD/day, above the "
            f"{idle.usd_per_day:g} USD/day threshold. Scale the deployment down, share the GPU (MIG/time-slicing) "
            "or release it."),
    }]
    above = config.above_api
    factor = 1 + above.margin_percent / 100
    for s in config.serving:
        if s.comparable is None:
            continue
        comp = f"{s.comparable.provider}/{s.comparable.model}"
        rules.append({
            "alert": ABOVE_API_ALERT,
            "expr": (f'{R.MODEL_SELF_HOSTED_COST_PER_1M.name}{{{Label.MODEL}="{s.model}"}}\n'
                     f"> on ({Label.MODEL}) group_left ({Label.COMPARABLE_PROVIDER}, {Label.COMPARABLE_MODEL})\n"
                     f'{R.MODEL_COMPARABLE_API_COST_PER_1M.name}{{{Label.MODEL}="{s.model}"}} * {_number(factor)}'),
            "for": overrides.get(ABOVE_API_ALERT, above.for_),
            "labels": {Label.SEVERITY: above.severity, Label.TEAM: s.team or UNATTRIBUTED,
                       Label.PROJECT: s.project or UNATTRIBUTED, Label.ENGINE: s.engine},
            "annotations": _annotations(
                config,
                f"Self-hosted {s.model} costs {{{{ $value | printf \"%.3f\" }}}} USD per 1M tokens, more than {comp}",
                f"{s.engine} serving {s.model} cost {{{{ $value | printf \"%.3f\" }}}} USD per 1M tokens "
                f"(GPU cost / served tokens) for {overrides.get(ABOVE_API_ALERT, above.for_)}, above what the same "
                f"token mix costs at {comp}"
                + (f" plus {above.margin_percent:g}%" if above.margin_percent else "")
                + ". Raise utilisation (batch more traffic onto fewer GPUs) or move the traffic to the API."),
        })
    return rules


def gpu_rule_groups(config: GPUConfig, *, for_overrides: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``groups:`` items for the GPU config: recording rules, then alerts.

    ``for_overrides`` maps an alert name to a ``for:`` duration (tests use
    seconds where production waits hours).
    """
    groups = [{"name": RECORDING_GROUP, "rules": recording_rules(config)}]
    alerts = alert_rules(config, for_overrides=for_overrides)
    if alerts:
        groups.append({"name": ALERT_GROUP, "rules": alerts})
    return groups
