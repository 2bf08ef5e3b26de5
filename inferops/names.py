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

from dataclasses import dataclass
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
    SEVERITY: Final = "severity"
    """Alert severity (``critical``, ``warning``, ``info``) on generated budget alerts."""
    THRESHOLD: Final = "threshold"
    """Budget threshold in percent on ``InferopsBudgetThreshold`` alerts."""
    WINDOW: Final = "window"
    """Look-back window of a burn-rate series or alert (``5m``, ``1h``, ...)."""
    PERIOD: Final = "period"
    """Budget period (``calendar_day``, ``calendar_month``, ``rolling_7d`` ...) on budget series."""
    ENGINE: Final = "engine"
    """Self-hosted serving engine (``vllm``, ``nim``, ``tgi``) on GPU cost series."""
    PRICE_MATCH: Final = "price_match"
    """Which GPU price level a configured price is (``node``, ``cluster_model``, ``model``, ``cluster``, ``default``)."""
    COMPARABLE_PROVIDER: Final = "comparable_provider"
    """Provider of the API model a self-hosted model is compared with."""
    COMPARABLE_MODEL: Final = "comparable_model"
    """API model a self-hosted model is compared with (priced from the catalog)."""


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
#: Value of ``namespace``/``pod`` on GPU cost series for a GPU no Kubernetes pod holds.
UNALLOCATED: Final = "unallocated"


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


class CostSource:
    """Values of ``inferops.cost.source`` (and of ``source`` on ``inferops serve`` metrics)."""

    INFEROPS: Final = "inferops"
    """inferops priced the call with its catalog."""
    SPAN: Final = "span"
    """The cost came on the span from another tool (e.g. OpenLIT's ``gen_ai.usage.cost``) and was kept."""

    ALL: Final[tuple[str, ...]] = ("inferops", "span")


class DropReason:
    """Values of ``reason`` on ``inferops_serve_spans_dropped_total``: why accepted spans were lost."""

    DOWNSTREAM_REJECTED: Final = "downstream_rejected"
    """The downstream answered a non-retryable status (e.g. 400) for the batch."""
    RETRY_EXHAUSTED: Final = "retry_exhausted"
    """The batch kept failing for longer than ``serve_retry_max_seconds``."""
    SHUTDOWN: Final = "shutdown"
    """The shutdown deadline passed before the batch could be delivered."""
    INVALID_SPAN: Final = "invalid_span"
    """A span without a valid trace or span id; the sender is told in ``partial_success``."""

    ALL: Final[tuple[str, ...]] = ("downstream_rejected", "retry_exhausted", "shutdown", "invalid_span")


class RefuseReason:
    """Values of ``reason`` on ``inferops_serve_requests_refused_total``: why a request was answered non-2xx.

    A refused request is the sender's to keep or retry; nothing of it was accepted.
    """

    BAD_REQUEST: Final = "bad_request"
    UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
    TOO_LARGE: Final = "too_large"
    UNAUTHORIZED: Final = "unauthorized"
    QUEUE_FULL: Final = "queue_full"
    SHUTTING_DOWN: Final = "shutting_down"

    ALL: Final[tuple[str, ...]] = ("bad_request", "unsupported_media_type", "too_large", "unauthorized",
                                   "queue_full", "shutting_down")


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
    """Name of the routing rule that matched the call (also set in dry-run mode)."""
    ROUTING_SAVINGS: Final = "inferops.routing.savings"
    """USD saved by routing this call (requested model's price minus routed model's)."""
    ROUTING_DRY_RUN: Final = "inferops.routing.dry_run"
    """True when the matching routing rule is in dry-run mode: decided and recorded, the request was not changed."""
    ROUTING_TARGET_MODEL: Final = "inferops.routing.target_model"
    """Model a dry-run routing rule would have sent the call to."""
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
    CACHE_SAVINGS: Final = Metric(
        "inferops.cache.savings.usd", "counter", "{USD}",
        "US dollars the prompt cache saved: cache-read tokens priced at the call's full input rate "
        "minus what they cost at the cache-read rate (never negative; cache-write premiums not subtracted).",
        labels=CALL_LABELS,
    )
    ERROR_COST: Final = Metric(
        "inferops.error_cost.usd", "counter", "{USD}",
        "US dollars spent on calls whose outcome was error (e.g. interrupted streams that were billed); "
        "also counted in inferops_cost_usd_total.",
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
    ROUTING_POTENTIAL_SAVINGS: Final = Metric(
        "inferops.routing.potential_savings.usd", "counter", "{USD}",
        "US dollars dry-run routing rules would have saved: the served model's price minus the rule's "
        "target model's price for the actual tokens (nothing was changed).",
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

    # `inferops serve` (OTLP cost-enrichment service) health.
    SERVE_SPANS_RECEIVED: Final = Metric(
        "inferops.serve.spans.received", "counter", "{span}",
        "Spans in requests `inferops serve` accepted (answered 2xx).",
        emitted_by=("serve",),
    )
    SERVE_SPANS_PRICED: Final = Metric(
        "inferops.serve.spans.priced", "counter", "{span}",
        "GenAI spans `inferops serve` enriched with a cost, by pricing status and cost source.",
        labels=(Label.PRICING_STATUS, Label.SOURCE),
        emitted_by=("serve",),
    )
    SERVE_SPANS_FORWARDED: Final = Metric(
        "inferops.serve.spans.forwarded", "counter", "{span}",
        "Spans delivered to the downstream OTLP endpoint (answered 2xx).",
        emitted_by=("serve",),
    )
    SERVE_SPANS_DROPPED: Final = Metric(
        "inferops.serve.spans.dropped", "counter", "{span}",
        "Accepted spans that never reached the downstream, by reason (see DropReason).",
        labels=(Label.REASON,),
        emitted_by=("serve",),
    )
    SERVE_REQUESTS_REFUSED: Final = Metric(
        "inferops.serve.requests.refused", "counter", "{request}",
        "Export requests answered non-2xx (nothing accepted; the sender keeps or retries), by reason.",
        labels=(Label.REASON,),
        emitted_by=("serve",),
    )
    SERVE_QUEUE_BYTES: Final = Metric(
        "inferops.serve.queue.bytes", "updown_counter", "By",
        "Bytes of enriched spans waiting in the forwarding queue.",
        emitted_by=("serve",),
    )
    SERVE_FORWARD_RETRIES: Final = Metric(
        "inferops.serve.forward.retries", "counter", "{retry}",
        "Retried downstream exports, by reason (HTTP status or connection error).",
        labels=(Label.REASON,),
        emitted_by=("serve",),
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


#: Labels a budget's scope may match on (budgets.yaml ``scope``).
SCOPE_LABELS: Final[tuple[str, ...]] = (
    Label.TEAM, Label.PROJECT, Label.FEATURE, Label.ENVIRONMENT, Label.PROVIDER, Label.MODEL,
)
#: Labels on every per-budget recording-rule series.
BUDGET_SERIES_LABELS: Final[tuple[str, ...]] = (Label.BUDGET, Label.TEAM, Label.PROJECT, Label.PERIOD)
#: ``inferops_cost_usd``: the cost counter's name without ``_total``, as recording rules spell it.
_COST_BASE: Final = Metrics.COST.prom_name.removesuffix("_total")


#: External (dcgm-exporter) labels on configured GPU prices; see inferops.alerts.gpu_sources.
GPU_PRICE_LABELS: Final[tuple[str, ...]] = ("cluster", "Hostname", "modelName")
#: Labels on per-GPU recording-rule series: dcgm-exporter's (normalised) plus team and project.
GPU_SERIES_LABELS: Final[tuple[str, ...]] = (
    "cluster", "Hostname", "modelName", "gpu", "UUID", "GPU_I_ID", "GPU_I_PROFILE", "namespace", "pod",
    "container", Label.TEAM, Label.PROJECT)


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

    SCOPE_COST_INCREASE_5M: Final = RecordingRule(
        f"scope:{_COST_BASE}:increase5m",
        "USD spent in the last 5 minutes, by every budget scope label.", SCOPE_LABELS)
    SCOPE_COST_INCREASE_1H: Final = RecordingRule(
        f"scope:{_COST_BASE}:increase1h",
        "USD spent in the last hour, by every budget scope label.", SCOPE_LABELS)
    SCOPE_COST_INCREASE_1D: Final = RecordingRule(
        f"scope:{_COST_BASE}:increase1d",
        "USD spent in the last 24 hours, by every budget scope label.", SCOPE_LABELS)
    TEAM_PROJECT_COST_MONTH_TO_DATE: Final = RecordingRule(
        f"team_project:{_COST_BASE}:month_to_date",
        "USD spent since the start of the calendar month (UTC), by team and project; resets on the 1st.",
        (Label.TEAM, Label.PROJECT))
    BUDGET_COST_INCREASE_5M: Final = RecordingRule(
        f"budget:{_COST_BASE}:increase5m", "USD spent in the budget's scope in the last 5 minutes.",
        BUDGET_SERIES_LABELS)
    BUDGET_COST_INCREASE_1H: Final = RecordingRule(
        f"budget:{_COST_BASE}:increase1h", "USD spent in the budget's scope in the last hour.",
        BUDGET_SERIES_LABELS)
    BUDGET_COST_INCREASE_1D: Final = RecordingRule(
        f"budget:{_COST_BASE}:increase1d", "USD spent in the budget's scope in the last 24 hours.",
        BUDGET_SERIES_LABELS)
    BUDGET_PERIOD_TO_DATE: Final = RecordingRule(
        f"budget:{_COST_BASE}:period_to_date",
        "USD spent in the budget's scope in the current period (calendar day/month in the budget's "
        "timezone, resetting at the boundary, or the rolling window).", BUDGET_SERIES_LABELS)
    BUDGET_PERIOD_FORECAST: Final = RecordingRule(
        f"budget:{_COST_BASE}:period_forecast",
        "Forecast USD at the end of the budget period: spent so far + current rate x time left.",
        BUDGET_SERIES_LABELS)
    BUDGET_PERIOD_RATIO: Final = RecordingRule(
        f"budget:{_COST_BASE}:period_ratio",
        "Share of the budget spent in the current period (1 = exhausted).", BUDGET_SERIES_LABELS)
    BUDGET_BURN_RATE: Final = RecordingRule(
        f"budget:{_COST_BASE}:burn_rate",
        "Spend rate over `window` divided by the rate that exactly uses the budget over its period.",
        (*BUDGET_SERIES_LABELS, Label.WINDOW))
    BUDGET_PERIOD_ID: Final = RecordingRule(
        "budget:inferops_budget_period:id",
        "Number of the budget's current calendar period (month 1-12 or day since 1970, in its timezone); "
        "the period-to-date accumulator resets when it changes.", BUDGET_SERIES_LABELS)
    UTC_MONTH_ID: Final = RecordingRule(
        "inferops:utc_month:id", "Current calendar month (1-12, UTC); resets the team/project month to date.")
    BUDGET_AMOUNT: Final = RecordingRule(
        "budget:inferops_budget_usd:amount", "The budget's amount in USD for its period.",
        BUDGET_SERIES_LABELS)

    # Self-hosted GPU cost (generated from the gpu: config by inferops.alerts.gpu_rules; docs/gpu.md).
    GPU_PRICE: Final = RecordingRule(
        "config:inferops_gpu_price_usd_per_hour",
        "Configured GPU price in USD per GPU-hour; one series per price entry, keyed by price_match.",
        (Label.PRICE_MATCH, *GPU_PRICE_LABELS))
    GPU_POWER_PRICE: Final = RecordingRule(
        "config:inferops_gpu_power_price_usd_per_kwh",
        "Configured electricity price in USD per kWh (no cluster label: the default).", ("cluster",))
    COMPARABLE_API_PRICE: Final = RecordingRule(
        "config:inferops_comparable_api_price_usd_per_1m_tokens",
        "Catalog price per 1M input/output tokens of the API model a self-hosted model is compared with.",
        (Label.MODEL, Label.TOKEN_TYPE, Label.COMPARABLE_PROVIDER, Label.COMPARABLE_MODEL))
    SELF_HOSTED_ESTIMATE: Final = RecordingRule(
        "config:inferops_self_hosted_estimate_usd_per_1m_tokens",
        "Configured per-token estimate (USD per 1M tokens) that prices calls to a self-hosted model.",
        (Label.MODEL,))
    GPU_SHARE: Final = RecordingRule(
        "gpu:inferops_gpu_share:ratio",
        "Share of a physical GPU one GPU series stands for: 1, or slices/7 for a MIG instance.",
        GPU_SERIES_LABELS)
    GPU_UTILISATION: Final = RecordingRule(
        "gpu:inferops_gpu_utilisation:ratio",
        "GPU utilisation 0-1: DCGM_FI_PROF_GR_ENGINE_ACTIVE, else DCGM_FI_DEV_GPU_UTIL / 100.",
        GPU_SERIES_LABELS)
    GPU_HARDWARE_COST: Final = RecordingRule(
        "gpu:inferops_gpu_hardware_cost_usd_per_hour",
        "GPU price x share, USD per hour, per GPU (or MIG instance).", GPU_SERIES_LABELS)
    GPU_ENERGY_COST: Final = RecordingRule(
        "gpu:inferops_gpu_energy_cost_usd_per_hour:rate",
        "Electricity cost from DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION x configured USD/kWh, USD per hour.",
        GPU_SERIES_LABELS)
    GPU_COST: Final = RecordingRule(
        "gpu:inferops_gpu_cost_usd_per_hour",
        "Total GPU cost (hardware + energy), USD per hour, per GPU (or MIG instance).", GPU_SERIES_LABELS)
    GPU_BUSY_COST: Final = RecordingRule(
        "gpu:inferops_gpu_busy_cost_usd_per_hour",
        "Utilisation-weighted hardware cost (hardware x utilisation), USD per hour.", GPU_SERIES_LABELS)
    GPU_IDLE_COST: Final = RecordingRule(
        "gpu:inferops_gpu_idle_cost_usd_per_hour",
        "Idle hardware cost (hardware x (1 - utilisation)), USD per hour.", GPU_SERIES_LABELS)
    NODE_GPU_COST: Final = RecordingRule(
        "node:inferops_gpu_cost_usd_per_hour:sum", "Total GPU cost per node, USD per hour.",
        ("cluster", "Hostname", "modelName"))
    NODE_GPU_IDLE_COST: Final = RecordingRule(
        "node:inferops_gpu_idle_cost_usd_per_hour:sum", "Idle GPU cost per node, USD per hour.",
        ("cluster", "Hostname", "modelName"))
    POD_GPU_COST: Final = RecordingRule(
        "pod:inferops_gpu_cost_usd_per_hour:sum", "Total GPU cost per pod, USD per hour.",
        ("cluster", "namespace", "pod", Label.TEAM, Label.PROJECT))
    POD_GPU_IDLE_COST: Final = RecordingRule(
        "pod:inferops_gpu_idle_cost_usd_per_hour:sum", "Idle GPU cost per pod, USD per hour.",
        ("cluster", "namespace", "pod", Label.TEAM, Label.PROJECT))
    NAMESPACE_GPU_COST: Final = RecordingRule(
        "namespace:inferops_gpu_cost_usd_per_hour:sum", "Total GPU cost per namespace, USD per hour.",
        ("cluster", "namespace", Label.TEAM, Label.PROJECT))
    NAMESPACE_GPU_IDLE_COST: Final = RecordingRule(
        "namespace:inferops_gpu_idle_cost_usd_per_hour:sum", "Idle GPU cost per namespace, USD per hour.",
        ("cluster", "namespace", Label.TEAM, Label.PROJECT))
    POD_SERVED_TOKENS: Final = RecordingRule(
        "pod:inferops_served_tokens_per_second:rate",
        "Tokens per second a serving-engine pod processed, by token_type (input/output).",
        ("cluster", "namespace", "pod", Label.MODEL, Label.ENGINE, Label.TOKEN_TYPE))
    MODEL_SERVED_TOKENS: Final = RecordingRule(
        "model:inferops_served_tokens_per_second:sum",
        "Tokens per second served per self-hosted model, by token_type.", (Label.MODEL, Label.TOKEN_TYPE))
    MODEL_GPUS: Final = RecordingRule(
        "model:inferops_gpus:sum", "GPUs (MIG instances as fractions) held by pods serving the model.",
        (Label.MODEL, Label.ENGINE))
    MODEL_GPU_COST: Final = RecordingRule(
        "model:inferops_gpu_cost_usd_per_hour:sum", "Total GPU cost of the pods serving a model, USD per hour.",
        (Label.MODEL, Label.ENGINE))
    MODEL_GPU_IDLE_COST: Final = RecordingRule(
        "model:inferops_gpu_idle_cost_usd_per_hour:sum", "Idle GPU cost of the pods serving a model, USD per hour.",
        (Label.MODEL, Label.ENGINE))
    MODEL_SELF_HOSTED_COST_PER_1M: Final = RecordingRule(
        "model:inferops_self_hosted_cost_usd_per_1m_tokens:ratio",
        "GPU cost rate / served token rate: actual USD per 1M tokens of a self-hosted model.", (Label.MODEL,))
    MODEL_COMPARABLE_API_COST_PER_1M: Final = RecordingRule(
        "model:inferops_comparable_api_cost_usd_per_1m_tokens:ratio",
        "What the same input/output token mix would cost per 1M tokens at the comparable API model.",
        (Label.MODEL, Label.COMPARABLE_PROVIDER, Label.COMPARABLE_MODEL))
    MODEL_TEAM_TOKEN_SHARE: Final = RecordingRule(
        "model_team:inferops_self_hosted_token_share:ratio",
        "Each team's share of a self-hosted model's tokens (from inferops_tokens_total).",
        (Label.MODEL, Label.TEAM, Label.PROJECT))
    MODEL_TEAM_SELF_HOSTED_COST: Final = RecordingRule(
        "model_team:inferops_self_hosted_cost_usd_per_hour:sum",
        "A self-hosted model's GPU cost split to teams by their token share, USD per hour.",
        (Label.MODEL, Label.TEAM, Label.PROJECT))

    @classmethod
    def all(cls) -> tuple[RecordingRule, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, RecordingRule))
