"""The "Self-hosted GPU cost" dashboard (grafanalib).

Reads the recording rules of :mod:`inferops.alerts.gpu_rules` (names from
:class:`inferops.names.RecordingRules`) and, for engine and GPU health, the
external dcgm-exporter / vLLM / NIM / TGI metrics named in
:mod:`inferops.alerts.gpu_sources`. Counters only appear inside ``rate()``
with ``$__rate_interval``; every panel has a title, a description and a unit;
the Prometheus datasource is an import input (``${DS_PROMETHEUS}``).

``gpu_dashboard(config)`` leaves out panels whose series the configuration
cannot produce (energy without a power price, the API comparison without a
``comparable_api``, engines nobody runs), so every panel of the generated
dashboard has data once Prometheus runs the generated rules.

``inferops dashboards build`` writes it as ``inferops-gpu.json`` next to the four
API-cost dashboards: ``gpu_dashboard(None)`` (every panel, vLLM as the engine)
by default, ``gpu_dashboard(config)`` with ``--gpu FILE``.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Templating, Time

from inferops.alerts.gpu_config import GPUConfig
from inferops.alerts.gpu_sources import DCGM, DCGMLabel, ENGINES
from inferops.names import Label, RecordingRules

from . import common
from .common import PERCENT, USD, Layout, prom_target

R = RecordingRules
L = DCGMLabel
UID = common.UID_GPU
TITLE = f"{common.TITLE_PREFIX}Self-hosted GPU cost"
#: Back to the API spend (the overview links here with ``overview.GPU_LINK``).
OVERVIEW_LINK = common.dashboard_link("LLM spend overview", common.UID_OVERVIEW,
                                      "API spend by team, project, feature and model")
RATE = "$__rate_interval"
CLUSTER_VAR = "cluster"
NAMESPACE_VAR = "namespace"
USD_PER_HOUR = "USD per hour"

_CLUSTER = f'{L.CLUSTER}=~"${CLUSTER_VAR}"'
_NAMESPACE = f'{L.NAMESPACE}=~"${NAMESPACE_VAR}"'
_GPU_FILTER = f"{{{_CLUSTER}, {_NAMESPACE}}}"
#: dcgm series: both Hostname spellings are grouped on, the legend shows whichever is set.
_DCGM_BY = f"{L.CLUSTER}, {L.HOSTNAME}, {L.HOSTNAME_NEW}, {L.GPU}, {L.MIG_ID}"
_DCGM_LEGEND = f"{{{{{L.HOSTNAME}}}}}{{{{{L.HOSTNAME_NEW}}}}} GPU {{{{{L.GPU}}}}} {{{{{L.MIG_ID}}}}}"


def _variables() -> Templating:
    ds = common.datasource_variable(common.PROM_VAR, "Prometheus", "prometheus", common.DS_PROMETHEUS)

    def label_var(name: str, title: str, query: str) -> dict:
        return {"name": name, "label": title, "type": "query", "datasource": common.PROM_DS,
                "query": query, "definition": query,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "includeAll": True, "multi": True, "allValue": ".*", "hide": 0, "options": [],
                "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False}

    return Templating(list=[
        ds,
        label_var(CLUSTER_VAR, "Cluster", f"label_values({R.GPU_COST.name}, {L.CLUSTER})"),
        label_var(NAMESPACE_VAR, "Namespace",
                  f"label_values({R.GPU_COST.name}{{{_CLUSTER}}}, {L.NAMESPACE})"),
    ])


def variable_names() -> tuple[str, ...]:
    """Query variables the panels use (tests substitute them as Grafana's "All" does)."""
    return (CLUSTER_VAR, NAMESPACE_VAR)


def gpu_dashboard(config: GPUConfig | None = None) -> Dashboard:
    """The dashboard; ``config`` drops panels whose series that configuration cannot produce."""
    has_power = config is None or config.has_power
    has_comparable = config is None or any(s.comparable for s in config.serving)
    has_estimate = config is None or any(s.estimate_usd_per_1m is not None for s in config.serving)
    has_serving = config is None or bool(config.serving)
    engines = ("vllm",) if config is None else config.engines()
    lay = Layout()
    panels = []

    # -- headline --------------------------------------------------------------------------
    panels += [
        common.stat("GPU cost now (USD/h)", "Total GPU cost per hour: hardware price x share of the GPU, plus "
                    "energy where a power price is configured.",
                    [prom_target(f"sum({R.GPU_COST.name}{_GPU_FILTER})", "USD/h")], USD, lay.pos(6, 4)),
        common.stat("Idle GPU cost now (USD/h)", "Hardware cost x (1 - utilisation): what idle GPU time costs "
                    "per hour.", [prom_target(f"sum({R.GPU_IDLE_COST.name}{_GPU_FILTER})", "USD/h")],
                    USD, lay.pos(6, 4)),
        common.stat("Idle share of GPU hardware cost", "Idle cost / hardware cost over the selected GPUs.",
                    [prom_target(f"sum({R.GPU_IDLE_COST.name}{_GPU_FILTER}) / "
                                 f"sum({R.GPU_HARDWARE_COST.name}{_GPU_FILTER})", "idle share")],
                    PERCENT, lay.pos(6, 4)),
        common.stat("GPU cost per day at this rate (USD)", "Current GPU cost rate x 24 h.",
                    [prom_target(f"sum({R.GPU_COST.name}{_GPU_FILTER}) * 24", "USD/day")], USD, lay.pos(6, 4)),
    ]
    lay.newline()

    # -- cost breakdowns --------------------------------------------------------------------
    panels += [
        common.timeseries("GPU cost by cluster", f"Total GPU cost, {USD_PER_HOUR}, per cluster.",
                          [prom_target(f"sum by ({L.CLUSTER}) ({R.GPU_COST.name}{_GPU_FILTER})",
                                       f"{{{{{L.CLUSTER}}}}}")], USD, lay.pos(12, 8), stacked=True),
        common.timeseries("GPU cost by namespace", f"Total GPU cost, {USD_PER_HOUR}, per namespace; "
                          "'unallocated' = GPUs no pod holds.",
                          [prom_target(f"sum by ({L.CLUSTER}, {L.NAMESPACE}) "
                                       f"({R.NAMESPACE_GPU_COST.name}{_GPU_FILTER})",
                                       f"{{{{{L.CLUSTER}}}}}/{{{{{L.NAMESPACE}}}}}")], USD, lay.pos(12, 8),
                          stacked=True),
        common.timeseries("Idle GPU cost by namespace", f"Idle GPU cost, {USD_PER_HOUR}: hardware x "
                          "(1 - utilisation), per namespace.",
                          [prom_target(f"sum by ({L.CLUSTER}, {L.NAMESPACE}) "
                                       f"({R.NAMESPACE_GPU_IDLE_COST.name}{_GPU_FILTER})",
                                       f"{{{{{L.CLUSTER}}}}}/{{{{{L.NAMESPACE}}}}}")], USD, lay.pos(12, 8),
                          stacked=True),
        common.timeseries("GPU cost by node", f"Total GPU cost, {USD_PER_HOUR}, per node and GPU model.",
                          [prom_target(f"sum by ({L.HOSTNAME}, {L.MODEL_NAME}) "
                                       f"({R.NODE_GPU_COST.name}{{{_CLUSTER}}})",
                                       f"{{{{{L.HOSTNAME}}}}} ({{{{{L.MODEL_NAME}}}}})")], USD, lay.pos(12, 8),
                          stacked=True),
        common.timeseries("GPU cost by team (GPU ownership)", f"GPU cost, {USD_PER_HOUR}, by the team that "
                          "owns the namespace/pod holding the GPU (gpu.teams mapping).",
                          [prom_target(f"sum by ({Label.TEAM}) ({R.NAMESPACE_GPU_COST.name}{_GPU_FILTER})",
                                       f"{{{{{Label.TEAM}}}}}")], USD, lay.pos(12, 8), stacked=True),
    ]
    if has_serving:
        panels += [
            common.timeseries("GPU cost by served model", f"GPU cost of the pods serving each model, "
                              f"{USD_PER_HOUR} (total and idle).",
                              [prom_target(f"sum by ({Label.MODEL}) ({R.MODEL_GPU_COST.name})",
                                           f"{{{{{Label.MODEL}}}}} total"),
                               prom_target(f"sum by ({Label.MODEL}) ({R.MODEL_GPU_IDLE_COST.name})",
                                           f"{{{{{Label.MODEL}}}}} idle", ref="B")], USD, lay.pos(12, 8)),
            common.timeseries("Self-hosted cost by team (token share)", f"Each served model's GPU cost split "
                              f"to the teams by their share of its tokens in inferops_tokens_total, "
                              f"{USD_PER_HOUR}.",
                              [prom_target(f"sum by ({Label.TEAM}, {Label.MODEL}) "
                                           f"({R.MODEL_TEAM_SELF_HOSTED_COST.name})",
                                           f"{{{{{Label.TEAM}}}}} / {{{{{Label.MODEL}}}}}")], USD,
                              lay.pos(12, 8), stacked=True),
        ]
    if has_power:
        panels += [
            common.timeseries("Energy cost", f"DCGM energy counter x configured USD/kWh, {USD_PER_HOUR}.",
                              [prom_target(f"sum by ({L.CLUSTER}) ({R.GPU_ENERGY_COST.name}{_GPU_FILTER})",
                                           f"{{{{{L.CLUSTER}}}}}")], USD, lay.pos(12, 8)),
            common.timeseries("GPU power draw", "Average power from the energy counter (mJ/s / 1000 = W).",
                              [prom_target(f"sum by ({_DCGM_BY}) (rate({DCGM.TOTAL_ENERGY}{{{_CLUSTER}}}[{RATE}]))"
                                           " / 1000", _DCGM_LEGEND)], "watt", lay.pos(12, 8)),
        ]
    lay.newline()

    # -- utilisation and memory ---------------------------------------------------------------
    panels += [
        common.timeseries("GPU utilisation", "DCGM_FI_PROF_GR_ENGINE_ACTIVE, else DCGM_FI_DEV_GPU_UTIL / 100, "
                          "per GPU or MIG instance.",
                          [prom_target(f"max by ({L.HOSTNAME}, {L.GPU}, {L.MIG_ID}, {L.POD}) "
                                       f"({R.GPU_UTILISATION.name}{_GPU_FILTER})",
                                       f"{{{{{L.HOSTNAME}}}}} GPU {{{{{L.GPU}}}}} {{{{{L.MIG_ID}}}}} "
                                       f"{{{{{L.POD}}}}}")], PERCENT, lay.pos(12, 8)),
        common.timeseries("GPU memory used", "DCGM_FI_DEV_FB_USED / (FB_USED + FB_FREE) per GPU.",
                          [prom_target(f"sum by ({_DCGM_BY}) ({DCGM.FB_USED}{{{_CLUSTER}}}) / "
                                       f"(sum by ({_DCGM_BY}) ({DCGM.FB_USED}{{{_CLUSTER}}}) + "
                                       f"sum by ({_DCGM_BY}) ({DCGM.FB_FREE}{{{_CLUSTER}}}))", _DCGM_LEGEND)],
                          PERCENT, lay.pos(12, 8)),
        common.timeseries("GPU memory used (MiB)", "DCGM_FI_DEV_FB_USED per GPU or MIG instance.",
                          [prom_target(f"sum by ({_DCGM_BY}) ({DCGM.FB_USED}{{{_CLUSTER}}})", _DCGM_LEGEND)],
                          "decmbytes", lay.pos(12, 8)),
    ]
    lay.newline()

    # -- served models: unit cost, throughput, engine health ------------------------------------
    if has_serving:
        targets = [prom_target(R.MODEL_SELF_HOSTED_COST_PER_1M.name, f"{{{{{Label.MODEL}}}}} GPU actual")]
        if has_comparable:
            targets.append(prom_target(R.MODEL_COMPARABLE_API_COST_PER_1M.name,
                                       f"{{{{{Label.MODEL}}}}} at {{{{{Label.COMPARABLE_PROVIDER}}}}}/"
                                       f"{{{{{Label.COMPARABLE_MODEL}}}}}", ref="B"))
        if has_estimate:
            targets.append(prom_target(R.SELF_HOSTED_ESTIMATE.name, f"{{{{{Label.MODEL}}}}} configured estimate",
                                       ref="C"))
        panels.append(common.timeseries(
            "Cost per 1M tokens: self-hosted vs API", "GPU cost / served tokens (actual), the same token mix at "
            "the comparable API model's catalog price (break-even line), and the per-token estimate that "
            "prices calls in-process.", targets, USD, lay.pos(12, 8)))
        if has_comparable:
            panels.append(common.timeseries(
                "Savings vs API (USD/h)", "What the served tokens would cost at the comparable API model minus "
                "the GPU cost, per hour. Above 0: self-hosting is cheaper; below 0: past break-even.",
                [prom_target(f"sum by ({Label.MODEL}) ({R.MODEL_SERVED_TOKENS.name} * on ({Label.MODEL}, "
                             f"{Label.TOKEN_TYPE}) group_left () {R.COMPARABLE_API_PRICE.name}) * 3600 / 1e6 - "
                             f"on ({Label.MODEL}) sum by ({Label.MODEL}) ({R.MODEL_GPU_COST.name})",
                             f"{{{{{Label.MODEL}}}}}")], USD, lay.pos(12, 8)))
        panels.append(common.timeseries(
            "Tokens/s per GPU", "Served tokens per second / GPUs (MIG instances as fractions) of the model's pods.",
            [prom_target(f"sum by ({Label.MODEL}) ({R.MODEL_SERVED_TOKENS.name}) / on ({Label.MODEL}) "
                         f"sum by ({Label.MODEL}) ({R.MODEL_GPUS.name})", f"{{{{{Label.MODEL}}}}}")],
            "short", lay.pos(12, 8)))
        for engine in engines:
            m = ENGINES[engine]
            by = m.model_label or f"{L.NAMESPACE}, {L.POD}"
            legend = f"{{{{{m.model_label}}}}}" if m.model_label else f"{{{{{L.NAMESPACE}}}}}/{{{{{L.POD}}}}}"
            panels.append(common.timeseries(
                f"Tokens/s ({engine})", f"Input and output tokens per second from {engine}'s own counters.",
                [prom_target(f"sum by ({by}) (rate({m.input_tokens}[{RATE}]))", f"{legend} input"),
                 prom_target(f"sum by ({by}) (rate({m.output_tokens}[{RATE}]))", f"{legend} output", ref="B")],
                "short", lay.pos(12, 8)))
            if m.kv_cache:
                panels.append(common.timeseries(
                    f"KV-cache usage ({engine})", "Share of KV-cache blocks in use (1 = full: requests queue).",
                    [prom_target(f"max by ({by}, {L.POD}) ({m.kv_cache})", f"{legend} {{{{{L.POD}}}}}")],
                    PERCENT, lay.pos(12, 8)))
            panels.append(common.timeseries(
                f"Queue depth ({engine})", "Requests waiting for a slot on the GPU.",
                [prom_target(f"sum by ({by}) ({m.queue})", legend)], "short", lay.pos(12, 8)))

    return Dashboard(
        uid=UID, title=TITLE,
        description="GPU cost of self-hosted inference: cost and idle cost by cluster, namespace, node, model "
                    "and team; cost per 1M tokens against the comparable API model; engine throughput and health.",
        tags=[common.TAG, "finops", "gpu"], panels=panels, templating=_variables(),
        links=common.links(OVERVIEW_LINK),
        inputs=common.inputs(False), time=Time("now-6h", "now"), timezone="browser", refresh="1m",
        schemaVersion=common.SCHEMA_VERSION, graphTooltip=1, editable=True,
    ).auto_panel_ids()

