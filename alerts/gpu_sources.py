"""External metric and label names the self-hosted GPU rules consume (defined once, here).

These are **not** inferops' own metrics (those live in :mod:`inferops.names`):
they are what NVIDIA dcgm-exporter, vLLM, NVIDIA NIM for LLMs and Hugging Face
TGI expose, spelt as their current releases spell them (see
``../shared/reference/FACTS.md``). The GPU rule generator
(:mod:`inferops.alerts.gpu_rules`), the GPU dashboard and the fixture exporter
of the tests import them from here so a rename upstream is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class DCGM:
    """dcgm-exporter metrics (default port 9400)."""

    GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"
    """GPU utilisation in **percent** (0-100), gauge. Not reported for MIG instances."""
    GR_ENGINE_ACTIVE: Final = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    """Ratio (0-1) of time the graphics/compute engine was active, gauge; also per MIG instance."""
    FB_USED: Final = "DCGM_FI_DEV_FB_USED"
    """Frame-buffer memory used, MiB, gauge; also per MIG instance."""
    FB_FREE: Final = "DCGM_FI_DEV_FB_FREE"
    """Frame-buffer memory free, MiB, gauge."""
    POWER_USAGE: Final = "DCGM_FI_DEV_POWER_USAGE"
    """Power draw in watts, gauge."""
    TOTAL_ENERGY: Final = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
    """Energy used since boot in **millijoules**, counter (no ``_total`` suffix)."""


class DCGMLabel:
    """Labels on dcgm-exporter series."""

    GPU: Final = "gpu"
    """GPU index on the node (``0``, ``1``...)."""
    UUID: Final = "UUID"
    """GPU UUID; MIG instances carry their parent GPU's UUID."""
    DEVICE: Final = "device"
    """Device name (``nvidia0``)."""
    MODEL_NAME: Final = "modelName"
    """GPU model, e.g. ``NVIDIA H100 80GB HBM3``: the key of model-level prices."""
    HOSTNAME: Final = "Hostname"
    """Node name in dcgm-exporter up to 3.x; the canonical spelling in inferops' GPU series."""
    HOSTNAME_NEW: Final = "hostname"
    """Node name in newer dcgm-exporter releases; copied into ``Hostname``."""
    MIG_PROFILE: Final = "GPU_I_PROFILE"
    """MIG profile of an instance, e.g. ``1g.10gb`` (``<slices>g.<memory>``)."""
    MIG_ID: Final = "GPU_I_ID"
    """MIG GPU-instance id; absent (empty) for a whole GPU."""
    POD: Final = "pod"
    """Kubernetes pod holding the GPU (dcgm-exporter's Kubernetes mapping); absent when none."""
    NAMESPACE: Final = "namespace"
    """Kubernetes namespace of that pod."""
    CONTAINER: Final = "container"
    """Container in that pod."""
    EXPORTED_POD: Final = "exported_pod"
    """What ``pod`` becomes when Prometheus' Kubernetes discovery also sets ``pod`` (honor_labels: false)."""
    EXPORTED_NAMESPACE: Final = "exported_namespace"
    """What ``namespace`` becomes in the same situation."""
    EXPORTED_CONTAINER: Final = "exported_container"
    """What ``container`` becomes in the same situation."""
    CLUSTER: Final = "cluster"
    """Cluster name: not set by dcgm-exporter; added by scrape relabelling or external labels."""


class VLLM:
    """vLLM (v1) OpenAI server metrics; label ``model_name``."""

    PROMPT_TOKENS: Final = "vllm:prompt_tokens_total"
    """Prefill (input) tokens processed, counter."""
    GENERATION_TOKENS: Final = "vllm:generation_tokens_total"
    """Generated (output) tokens, counter."""
    REQUEST_SUCCESS: Final = "vllm:request_success_total"
    """Finished requests by ``finished_reason``, counter."""
    REQUESTS_RUNNING: Final = "vllm:num_requests_running"
    """Requests running on the GPU now, gauge."""
    REQUESTS_WAITING: Final = "vllm:num_requests_waiting"
    """Requests queued, gauge (queue depth)."""
    KV_CACHE_USAGE: Final = "vllm:kv_cache_usage_perc"
    """KV-cache blocks in use, a ratio 0-1 despite the name, gauge."""


class NIM:
    """NVIDIA NIM for LLMs: the vLLM names without the ``vllm:`` prefix; label ``model_name``."""

    PROMPT_TOKENS: Final = "prompt_tokens_total"
    """Prefill (input) tokens, counter."""
    GENERATION_TOKENS: Final = "generation_tokens_total"
    """Generated (output) tokens, counter."""
    REQUESTS_RUNNING: Final = "num_requests_running"
    """Requests running now, gauge."""
    REQUESTS_WAITING: Final = "num_requests_waiting"
    """Requests queued, gauge."""
    KV_CACHE_USAGE: Final = "kv_cache_usage_perc"
    """KV-cache usage ratio 0-1, gauge."""


class TGI:
    """Hugging Face text-generation-inference: no token counters and no model label."""

    INPUT_LENGTH_SUM: Final = "tgi_request_input_length_sum"
    """Sum of input tokens of finished requests (histogram ``_sum``, a counter)."""
    GENERATED_TOKENS_SUM: Final = "tgi_request_generated_tokens_sum"
    """Sum of generated tokens of finished requests (histogram ``_sum``, a counter)."""
    QUEUE_SIZE: Final = "tgi_queue_size"
    """Requests waiting in the queue, gauge."""


#: Label carrying the served model on vLLM and NIM series.
ENGINE_MODEL_LABEL: Final = "model_name"


@dataclass(frozen=True)
class EngineMetrics:
    """What one serving engine exposes, in the shape the rule generator needs."""

    engine: str
    #: Counter of input (prefill) tokens.
    input_tokens: str
    #: Counter of output (generated) tokens.
    output_tokens: str
    #: Label with the served model, or "" when the engine has none (TGI: from the config's mapping).
    model_label: str
    #: Gauge of queued requests (queue depth).
    queue: str
    #: Gauge of KV-cache usage (0-1), or "" when the engine exposes none.
    kv_cache: str = ""


ENGINES: Final[dict[str, EngineMetrics]] = {
    "vllm": EngineMetrics("vllm", VLLM.PROMPT_TOKENS, VLLM.GENERATION_TOKENS, ENGINE_MODEL_LABEL,
                          VLLM.REQUESTS_WAITING, VLLM.KV_CACHE_USAGE),
    "nim": EngineMetrics("nim", NIM.PROMPT_TOKENS, NIM.GENERATION_TOKENS, ENGINE_MODEL_LABEL,
                         NIM.REQUESTS_WAITING, NIM.KV_CACHE_USAGE),
    "tgi": EngineMetrics("tgi", TGI.INPUT_LENGTH_SUM, TGI.GENERATED_TOKENS_SUM, "", TGI.QUEUE_SIZE),
}

#: Counters among the external metrics (dashboards may use them only inside rate/increase).
EXTERNAL_COUNTERS: Final[frozenset[str]] = frozenset({
    DCGM.TOTAL_ENERGY, VLLM.PROMPT_TOKENS, VLLM.GENERATION_TOKENS, VLLM.REQUEST_SUCCESS,
    NIM.PROMPT_TOKENS, NIM.GENERATION_TOKENS, TGI.INPUT_LENGTH_SUM, TGI.GENERATED_TOKENS_SUM,
})
