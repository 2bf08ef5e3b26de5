"""The names contract: every metric, label, span attribute and label value inferops emits.

This is the single source of truth. The instrumentation, the OTLP processor,
the dashboards and the alert rules all import their names from here, and the
tests fail when a dashboard query or a rule expression names a metric or label
that is not defined below (``tests/test_names_contract.py``). The reference
page ``docs/metrics.md`` is generated from this module (``inferops names
docs``) and a test keeps it in sync.

Naming rules
------------
* OpenTelemetry instrument names are dotted (``inferops.cost.usd``); the
  Prometheus name is what both the OTel Python Prometheus exporter and the
  Collector's ``prometheus`` exporter produce from it: dots become ``_``,
  a unit in braces (``{USD}``, ``{token}``) is dropped, and counters get
  ``_total``. We therefore put the currency into the *name* and keep the unit
  an annotation, so the Prometheus name is ``inferops_cost_usd_total`` on
  both paths (unit ``USD`` would give ``inferops_cost_USD_total`` in the
  Python exporter).
* Currency is always US dollars.
* The GenAI semantic-convention names implemented are those of
  semantic-conventions **v1.37+ GenAI** as frozen in release **v1.41.0**
  (``GENAI_SEMCONV_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

GENAI_SEMCONV_VERSION: Final = "1.41.0"
CURRENCY: Final = "USD"

InstrumentKind = Literal["counter", "histogram", "gauge", "updown_counter"]


@dataclass(frozen=True)
class Metric:
    """One emitted metric: its OTel instrument and its Prometheus rendering."""

    otel_name: str
    kind: InstrumentKind
    unit: str
    description: str
    labels: tuple[str, ...] = ()
    #: Explicit Prometheus name; derived from ``otel_name`` when empty.
    prom_name_override: str = ""
    #: Histogram bucket boundaries (advisory), for histograms only.
    buckets: tuple[float, ...] = ()
    #: Who emits it: "instrumentation", "processor", "serve", "rules", ...
    emitted_by: tuple[str, ...] = ("instrumentation", "serve")

    @property
    def prom_name(self) -> str:
        """The name Prometheus stores (without histogram ``_bucket``/``_sum``/``_count``)."""
        if self.prom_name_override:
            return self.prom_name_override
        return prometheus_name(self.otel_name, self.unit, self.kind)

    @property
    def prom_series_names(self) -> tuple[str, ...]:
        """Every series name Prometheus stores for this metric."""
        base = self.prom_name
        if self.kind == "histogram":
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)


_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}


def prometheus_name(otel_name: str, unit: str, kind: InstrumentKind) -> str:
    """Translate an OTel instrument name + unit as the Prometheus exporters do.

    Both opentelemetry-exporter-prometheus and the Collector's translator
    replace characters outside ``[a-zA-Z0-9:]`` with ``_``, drop unit
    annotations in braces, spell ``s`` as ``seconds``, and append ``_total`` to
    monotonic counters.
    """
    out = []
    for ch in otel_name:
        out.append(ch if (ch.isascii() and (ch.isalnum() or ch == ":")) else "_")
    name = "".join(out)
    if unit and not unit.startswith("{"):
        suffix = _UNIT_SUFFIX.get(unit, unit)
        if suffix and not name.endswith("_" + suffix):
            name = f"{name}_{suffix}"
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    return name


# --------------------------------------------------------------------------
# Label names (Prometheus labels on inferops_* metrics)
# --------------------------------------------------------------------------


class Label:
    """Prometheus label names carried by inferops metrics."""

    PROVIDER: Final = "provider"
    """Provider in GenAI semconv spelling (``openai``, ``anthropic``, ``aws.bedrock`` ...)."""
    MODEL: Final = "model"
    """Model that served the call (response model, resolved to the catalog's name when known)."""
    OPERATION: Final = "operation"
    """GenAI operation name (``chat``, ``embeddings``, ``text_completion``, ``generate_content``)."""
    TEAM: Final = "team"
    """Team that spent the money (attribution)."""
    PROJECT: Final = "project"
    """Project (attribution)."""
    FEATURE: Final = "feature"
    """Product feature (attribution)."""
    ENVIRONMENT: Final = "environment"
    """Deployment environment (attribution; from ``deployment.environment.name`` by default)."""
    SERVICE_NAME: Final = "service_name"
    """``service.name`` of the calling service."""
    USER: Final = "user"
    """End-user id. Only a metric label when explicitly enabled (``INFEROPS_USER_LABEL``)."""
    COST_TYPE: Final = "cost_type"
    """Which priced component a cost sample is (see ``CostType``)."""
    TOKEN_TYPE: Final = "token_type"
    """Which billing bucket a token sample is (see ``TokenType``)."""
    OUTCOME: Final = "outcome"
    """``success`` or ``error`` (see ``Outcome``)."""
    STREAM: Final = "stream"
    """``true`` for streamed calls, ``false`` otherwise."""
    USAGE_SOURCE: Final = "usage_source"
    """``provider`` when the provider reported usage, ``estimated`` when inferops counted it."""
    PRICING_STATUS: Final = "pricing_status"
    """``priced``, ``partial`` or ``unpriced`` (see ``PricingStatus``)."""
    SELF_HOSTED: Final = "self_hosted"
    """``true`` when the call went to a self-hosted server the user configured."""
    LABEL: Final = "label"
    """For the overflow counter: which label overflowed."""
    REASON: Final = "reason"
    """Why something happened (parse error kind, drop reason, ...)."""
    ACTION: Final = "action"
    """Budget enforcement or routing action taken."""
    BUDGET: Final = "budget"
    """Budget name from budgets.yaml."""
    REQUESTED_MODEL: Final = "requested_model"
    """Model the caller asked for, before routing or downgrade."""
    ROUTED_MODEL: Final = "routed_model"
    """Model the call was sent to after routing or downgrade."""
    SOURCE: Final = "source"
    """Where a cost came from for the processor (``inferops``, ``span``, ``catalog``)."""


#: Attribution labels, in order; every inferops_* counter carries them.
ATTRIBUTION_LABELS: Final[tuple[str, ...]] = (
    Label.TEAM,
    Label.PROJECT,
    Label.FEATURE,
    Label.ENVIRONMENT,
    Label.SERVICE_NAME,
)

#: Labels on every inferops_* call counter.
CALL_LABELS: Final[tuple[str, ...]] = (
    Label.PROVIDER,
    Label.MODEL,
    Label.OPERATION,
    *ATTRIBUTION_LABELS,
)

#: Value used when an attribution label has no value for a call.
UNATTRIBUTED: Final = "unattributed"
#: Value a label takes once it exceeded its distinct-value cap.
OVERFLOW_VALUE: Final = "__overflow__"
#: Value of ``model`` when the provider reported no model.
UNKNOWN_MODEL: Final = "unknown"


# --------------------------------------------------------------------------
# Label value sets
# --------------------------------------------------------------------------


class CostType:
    """Values of ``cost_type``: the priced components of one call. They sum to the total."""

    INPUT: Final = "input"
    """Uncached text input tokens at the input rate."""
    CACHE_READ: Final = "cache_read"
    """Input tokens read from the prompt cache, at the cache-read rate."""
    CACHE_WRITE: Final = "cache_write"
    """Input tokens written to the prompt cache (5-minute and 1-hour), at the cache-write rates."""
    OUTPUT: Final = "output"
    """Output tokens other than reasoning, at the output rate."""
    REASONING: Final = "reasoning"
    """Reasoning (thinking) output tokens, at the reasoning rate (the output rate unless priced apart)."""
    AUDIO: Final = "audio"
    """Audio input and output tokens where the model prices them apart."""
    IMAGE: Final = "image"
    """Image input and output tokens where the model prices them apart."""
    REQUEST: Final = "request"
    """Per-request fees."""

    ALL: Final[tuple[str, ...]] = (
        "input", "cache_read", "cache_write", "output", "reasoning", "audio", "image", "request",
    )


class TokenType:
    """Values of ``token_type``. They partition a call's tokens.

    ``input + cache_read + cache_write`` is the call's whole input
    (``gen_ai.usage.input_tokens``), and ``output + reasoning`` its whole
    output (``gen_ai.usage.output_tokens``), so ``sum by () (...)`` over all
    token types is input plus output with nothing counted twice. Audio and
    image tokens stay inside the input/output buckets they belong to.
    """

    INPUT: Final = "input"
    """Input tokens neither read from nor written to the prompt cache."""
    CACHE_READ: Final = "cache_read"
    """Input tokens served from the prompt cache."""
    CACHE_WRITE: Final = "cache_write"
    """Input tokens written to the prompt cache."""
    OUTPUT: Final = "output"
    """Output tokens that are not reasoning tokens."""
    REASONING: Final = "reasoning"
    """Reasoning (thinking) tokens, billed as output."""

    ALL: Final[tuple[str, ...]] = ("input", "cache_read", "cache_write", "output", "reasoning")
    INPUT_SIDE: Final[tuple[str, ...]] = ("input", "cache_read", "cache_write")
    OUTPUT_SIDE: Final[tuple[str, ...]] = ("output", "reasoning")


class Outcome:
    """Values of ``outcome``."""

    SUCCESS: Final = "success"
    """The provider answered 2xx and the body (or stream) completed."""
    ERROR: Final = "error"
    """Transport error, non-2xx answer, or an interrupted stream."""

    ALL: Final[tuple[str, ...]] = ("success", "error")


class PricingStatus:
    """Values of ``pricing_status`` and of the ``inferops.cost.status`` span attribute."""

    PRICED: Final = "priced"
    """Every token of the call had a price."""
    PARTIAL: Final = "partial"
    """Some token kinds of the call had no price; the cost covers the rest."""
    UNPRICED: Final = "unpriced"
    """The model did not resolve to a catalog entry: cost unknown, never reported as $0."""

    ALL: Final[tuple[str, ...]] = ("priced", "partial", "unpriced")


class UsageSource:
    """Values of ``usage_source`` / ``inferops.usage.source``."""

    PROVIDER: Final = "provider"
    """Token counts the provider reported."""
    ESTIMATED: Final = "estimated"
    """Token counts inferops estimated (tiktoken) because the provider reported none."""

    ALL: Final[tuple[str, ...]] = ("provider", "estimated")


class ServiceTier:
    """Service tiers the catalog prices."""

    STANDARD: Final = "standard"
    BATCH: Final = "batch"
    FLEX: Final = "flex"
    PRIORITY: Final = "priority"

    ALL: Final[tuple[str, ...]] = ("standard", "batch", "flex", "priority")


class Provider:
    """Provider names (GenAI semconv ``gen_ai.provider.name`` spelling where one exists)."""

    OPENAI: Final = "openai"
    AZURE_OPENAI: Final = "azure.ai.openai"
    AZURE_INFERENCE: Final = "azure.ai.inference"
    ANTHROPIC: Final = "anthropic"
    BEDROCK: Final = "aws.bedrock"
    GEMINI: Final = "gcp.gemini"
    VERTEX_AI: Final = "gcp.vertex_ai"
    MISTRAL: Final = "mistral_ai"
    COHERE: Final = "cohere"
    GROQ: Final = "groq"
    DEEPSEEK: Final = "deepseek"
    XAI: Final = "x_ai"
    PERPLEXITY: Final = "perplexity"
    TOGETHER: Final = "together_ai"
    FIREWORKS: Final = "fireworks_ai"
    OPENROUTER: Final = "openrouter"
    WATSONX: Final = "ibm.watsonx.ai"


class Operation:
    """GenAI ``gen_ai.operation.name`` values inferops produces."""

    CHAT: Final = "chat"
    TEXT_COMPLETION: Final = "text_completion"
    EMBEDDINGS: Final = "embeddings"
    GENERATE_CONTENT: Final = "generate_content"
    RERANK: Final = "rerank"

    ALL: Final[tuple[str, ...]] = ("chat", "text_completion", "embeddings", "generate_content", "rerank")


# --------------------------------------------------------------------------
# Span attributes
# --------------------------------------------------------------------------


class GenAI:
    """GenAI semantic-convention attribute names (v1.41.0), plus the older names we read."""

    OPERATION_NAME: Final = "gen_ai.operation.name"
    PROVIDER_NAME: Final = "gen_ai.provider.name"
    SYSTEM: Final = "gen_ai.system"
    """Pre-1.37 name of the provider attribute; read, never written."""
    REQUEST_MODEL: Final = "gen_ai.request.model"
    RESPONSE_MODEL: Final = "gen_ai.response.model"
    RESPONSE_ID: Final = "gen_ai.response.id"
    RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
    REQUEST_STREAM: Final = "gen_ai.request.stream"
    RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
    REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
    REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
    REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
    RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
    USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
    USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
    USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
    USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
    USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
    """Name used by semantic-conventions-genai after the rename; read, not written."""
    USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
    USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
    """Pre-1.37 name; read, never written."""
    USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
    """Pre-1.37 name; read, never written."""
    USAGE_COST: Final = "gen_ai.usage.cost"
    """Total cost in USD (the attribute OpenLIT writes and Langfuse reads)."""
    TOKEN_TYPE: Final = "gen_ai.token.type"
    INPUT_MESSAGES: Final = "gen_ai.input.messages"
    OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
    SERVER_ADDRESS: Final = "server.address"
    SERVER_PORT: Final = "server.port"
    ERROR_TYPE: Final = "error.type"


class Attr:
    """inferops span attributes (``inferops.*``)."""

    COST_TOTAL: Final = "inferops.cost.total"
    """Total cost in USD (same figure as ``gen_ai.usage.cost``)."""
    COST_PREFIX: Final = "inferops.cost."
    """``inferops.cost.<cost_type>``: cost of one component in USD."""
    COST_STATUS: Final = "inferops.cost.status"
    """``priced`` / ``partial`` / ``unpriced``."""
    COST_SOURCE: Final = "inferops.cost.source"
    """Who computed the cost: ``inferops`` (this catalog) or ``span`` (kept from the span)."""
    COST_CURRENCY: Final = "inferops.cost.currency"
    """Always ``USD``."""
    USAGE_SOURCE: Final = "inferops.usage.source"
    """``provider`` or ``estimated``."""
    CATALOG_KEY: Final = "inferops.catalog.key"
    """Catalog entry the model resolved to."""
    CATALOG_VERSION: Final = "inferops.catalog.version"
    """Version of the price catalog that priced the call."""
    SERVICE_TIER: Final = "inferops.service_tier"
    """Service tier priced (``standard``, ``batch``, ``flex``, ``priority``)."""
    SELF_HOSTED: Final = "inferops.self_hosted"
    """True when the call went to a configured self-hosted server."""
    TEAM: Final = "inferops.team"
    PROJECT: Final = "inferops.project"
    FEATURE: Final = "inferops.feature"
    USER: Final = "inferops.user"
    ENVIRONMENT: Final = "inferops.environment"
    UNATTRIBUTED: Final = "inferops.unattributed"
    """True when a required attribution tag was missing."""
    METRICS_RECORDED: Final = "inferops.metrics_recorded"
    """True when the in-process instrumentation already recorded metrics for this span.

    ``inferops serve`` skips metrics for such spans, so running both never counts a dollar twice.
    """
    REQUESTED_MODEL: Final = "inferops.request.model_requested"
    """Model the caller asked for, when routing or a budget downgrade changed it."""
    ROUTING_RULE: Final = "inferops.routing.rule"
    ROUTING_SAVINGS: Final = "inferops.routing.savings"
    """USD saved by routing this call (requested model's price minus routed model's)."""
    BUDGET_ACTION: Final = "inferops.budget.action"
    BUDGET_NAME: Final = "inferops.budget.name"
    PARSE_ERROR: Final = "inferops.parse_error"
    """Set when a provider body could not be understood; the call still passed unchanged."""


#: Attribution span attributes keyed by the label they fill.
ATTRIBUTION_ATTRS: Final[dict[str, str]] = {
    Label.TEAM: Attr.TEAM,
    Label.PROJECT: Attr.PROJECT,
    Label.FEATURE: Attr.FEATURE,
    Label.ENVIRONMENT: Attr.ENVIRONMENT,
    Label.USER: Attr.USER,
}


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------

#: GenAI semconv bucket boundaries.
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                        4194304, 16777216, 67108864)
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                           10.24, 20.48, 40.96, 81.92)
TTFC_BUCKETS: Final = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                       1.0, 2.5, 5.0, 7.5, 10.0)


class Metrics:
    """Every metric inferops emits."""

    # GenAI semconv histograms: semconv attributes only, never attribution labels.
    GENAI_TOKEN_USAGE: Final = Metric(
        "gen_ai.client.token.usage", "histogram", "{token}",
        "Tokens per call by gen_ai.token.type (semconv).",
        labels=("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                "gen_ai_response_model", "gen_ai_token_type", "server_address"),
        buckets=TOKEN_BUCKETS,
        prom_name_override="gen_ai_client_token_usage",
    )
    GENAI_OPERATION_DURATION: Final = Metric(
        "gen_ai.client.operation.duration", "histogram", "s",
        "Duration of a GenAI call (semconv).",
        labels=("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                "gen_ai_response_model", "server_address", "error_type"),
        buckets=DURATION_BUCKETS,
    )
    GENAI_TIME_TO_FIRST_CHUNK: Final = Metric(
        "gen_ai.client.operation.time_to_first_chunk", "histogram", "s",
        "Time from request to the first streamed chunk (semconv).",
        labels=("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
                "gen_ai_response_model", "server_address"),
        buckets=TTFC_BUCKETS,
    )

    # inferops counters with attribution labels.
    COST: Final = Metric(
        "inferops.cost.usd", "counter", "{USD}",
        "Estimated spend in US dollars, by priced component (cost_type).",
        labels=(*CALL_LABELS, Label.COST_TYPE),
    )
    TOKENS: Final = Metric(
        "inferops.tokens", "counter", "{token}",
        "Tokens by billing bucket (token_type); the token types partition the call's tokens.",
        labels=(*CALL_LABELS, Label.TOKEN_TYPE, Label.USAGE_SOURCE),
    )
    REQUESTS: Final = Metric(
        "inferops.requests", "counter", "{request}",
        "LLM calls (one per attempt), by outcome and stream flag.",
        labels=(*CALL_LABELS, Label.OUTCOME, Label.STREAM, Label.PRICING_STATUS, Label.USAGE_SOURCE),
    )
    UNPRICED_REQUESTS: Final = Metric(
        "inferops.unpriced_requests", "counter", "{request}",
        "Calls whose model had no price (cost unknown, not $0).",
        labels=CALL_LABELS,
    )
    UNATTRIBUTED_REQUESTS: Final = Metric(
        "inferops.unattributed_requests", "counter", "{request}",
        "Calls missing a required attribution tag.",
        labels=CALL_LABELS,
    )
    LABEL_OVERFLOWS: Final = Metric(
        "inferops.label_overflows", "counter", "{sample}",
        "Samples whose label value was replaced by __overflow__ because the label hit its cap.",
        labels=(Label.LABEL,),
    )
    PARSE_ERRORS: Final = Metric(
        "inferops.parse_errors", "counter", "{error}",
        "Provider bodies the instrumentation could not understand (the call itself passed unchanged).",
        labels=(Label.PROVIDER, Label.REASON),
    )
    ROUTING_SAVINGS: Final = Metric(
        "inferops.routing.savings.usd", "counter", "{USD}",
        "US dollars saved by routing: requested model's price minus routed model's price for the actual tokens.",
        labels=(*CALL_LABELS, Label.REQUESTED_MODEL, Label.ROUTED_MODEL),
    )
    BUDGET_ACTIONS: Final = Metric(
        "inferops.budget.actions", "counter", "{request}",
        "Calls blocked, downgraded or throttled by budget enforcement.",
        labels=(Label.BUDGET, Label.ACTION, *ATTRIBUTION_LABELS),
    )
    ENFORCEMENT_FAILURES: Final = Metric(
        "inferops.budget.enforcement_failures", "counter", "{error}",
        "Failed polls of Alertmanager by budget enforcement (it fails open).",
        labels=(Label.REASON,),
    )
    BILLING_DRIFT_RATIO: Final = Metric(
        "inferops.billing.drift.ratio", "gauge", "1",
        "(inferops estimate - provider bill) / provider bill, per provider.",
        labels=(Label.PROVIDER, Label.MODEL, Label.PROJECT),
        prom_name_override="inferops_billing_drift_ratio",
        emitted_by=("reconcile",),
    )

    @classmethod
    def all(cls) -> tuple[Metric, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, Metric))


def all_metrics() -> tuple[Metric, ...]:
    """Every metric in the contract. Add new metrics to ``Metrics`` above, never elsewhere."""
    return Metrics.all()


def all_prom_series_names() -> frozenset[str]:
    """Every Prometheus series name inferops emits (for contract tests)."""
    names: set[str] = set()
    for metric in all_metrics():
        names.update(metric.prom_series_names)
    return frozenset(names)


def all_label_names() -> frozenset[str]:
    """Every Prometheus label name on inferops metrics."""
    names: set[str] = {v for k, v in vars(Label).items() if not k.startswith("_") and isinstance(v, str)}
    for metric in all_metrics():
        names.update(metric.labels)
    return frozenset(names)


def all_span_attributes() -> frozenset[str]:
    """Every span attribute name inferops writes or reads."""
    out: set[str] = set()
    for cls in (GenAI, Attr):
        out.update(v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, str))
    out.update(f"{Attr.COST_PREFIX}{c}" for c in CostType.ALL)
    return frozenset(out)


@dataclass(frozen=True)
class RecordingRule:
    """A recording-rule series generated by ``inferops alerts build`` that dashboards may query."""

    name: str
    description: str
    labels: tuple[str, ...] = ()


class RecordingRules:
    """Recording rules generated from budgets.yaml (filled by the alerts package's generator).

    Names follow the Prometheus convention ``level:metric:operations``.
    """

    @classmethod
    def all(cls) -> tuple[RecordingRule, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, RecordingRule))
