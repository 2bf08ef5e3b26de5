"""Read GenAI usage off an OTLP span, whichever instrumentation wrote it.

Four spellings reach ``inferops serve`` (each checked against the tool's code):

* **GenAI semconv v1.37+** (``inferops.names.GenAI``): ``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens`` (cache *included*),
  ``gen_ai.usage.cache_read.input_tokens``,
  ``gen_ai.usage.cache_creation.input_tokens`` (``cache_write`` in the genai
  repo), ``gen_ai.usage.reasoning.output_tokens``.
* **pre-1.37 semconv**: ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` /
  ``completion_tokens``.
* **OpenLLMetry** (opentelemetry-instrumentation-openai / -anthropic 0.4x-0.6x):
  ``gen_ai.system`` (``"openai"``, ``"Anthropic"``), ``llm.request.type``
  (chat/completion/embedding), ``llm.usage.total_tokens``,
  ``gen_ai.usage.cache_read_input_tokens`` /
  ``gen_ai.usage.cache_creation_input_tokens`` (older) or the semconv names
  (newer), ``gen_ai.usage.reasoning_tokens``, ``llm.is_streaming``,
  ``gen_ai.openai.api_base`` / ``api_type`` (Azure). Its Anthropic
  instrumentation already adds cache reads and writes into
  ``gen_ai.usage.input_tokens`` (semconv convention).
* **OpenLIT**: semconv token names plus ``gen_ai.usage.cost`` (its own USD
  figure). Its Anthropic instrumentation writes Anthropic's raw
  ``input_tokens``, which *excludes* the cache: for OpenLIT spans
  (instrumentation scope ``openlit*`` or resource ``telemetry.sdk.name=openlit``)
  of Anthropic calls the cache tokens are added back.
* **opentelemetry-instrumentation-botocore** (Bedrock Converse/InvokeModel):
  ``gen_ai.system=aws.bedrock``, ``gen_ai.request.model`` = the model id or
  inference profile, input/output tokens only.

Whatever the tool, if cache reads plus writes exceed the reported input the
input cannot have included them, and they are added back (counted once).
Everything is normalised to :class:`inferops.processors.usage.UsageRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from inferops.names import (
    GenAI,
    Attr,
    Operation,
    Outcome,
    Provider,
    ServiceTier,
    UsageSource,
)

from ..catalog import normalize_provider
from ..recorder import Attribution
from ..usage import UsageRecord

# Attribute names other tools write (not part of our contract: we only read them).
OLD_CACHE_READ = "gen_ai.usage.cache_read_input_tokens"
OLD_CACHE_CREATION = "gen_ai.usage.cache_creation_input_tokens"
REASONING_TOKENS_OLD = ("gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens")
LLM_REQUEST_TYPE = "llm.request.type"
LLM_IS_STREAMING = "llm.is_streaming"
LLM_TOTAL_TOKENS = "llm.usage.total_tokens"
OPENAI_API_BASE = "gen_ai.openai.api_base"
OPENAI_API_TYPE = "gen_ai.openai.api_type"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"
SERVICE_NAME = "service.name"

INPUT_KEYS = (GenAI.USAGE_INPUT_TOKENS, GenAI.USAGE_PROMPT_TOKENS)
OUTPUT_KEYS = (GenAI.USAGE_OUTPUT_TOKENS, GenAI.USAGE_COMPLETION_TOKENS)
CACHE_READ_KEYS = (GenAI.USAGE_CACHE_READ_INPUT_TOKENS, OLD_CACHE_READ)
CACHE_WRITE_KEYS = (GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS, GenAI.USAGE_CACHE_WRITE_INPUT_TOKENS,
                    OLD_CACHE_CREATION)
REASONING_KEYS = (GenAI.USAGE_REASONING_OUTPUT_TOKENS, *REASONING_TOKENS_OLD)

#: Span attributes the extractor looks at; everything else is skipped while scanning.
WANTED: frozenset[str] = frozenset({
    *INPUT_KEYS, *OUTPUT_KEYS, *CACHE_READ_KEYS, *CACHE_WRITE_KEYS, *REASONING_KEYS,
    GenAI.PROVIDER_NAME, GenAI.SYSTEM, GenAI.OPERATION_NAME, GenAI.REQUEST_MODEL, GenAI.RESPONSE_MODEL,
    GenAI.REQUEST_STREAM, GenAI.RESPONSE_TIME_TO_FIRST_CHUNK, GenAI.REQUEST_SERVICE_TIER,
    GenAI.RESPONSE_SERVICE_TIER, GenAI.USAGE_COST, GenAI.SERVER_ADDRESS, GenAI.ERROR_TYPE,
    LLM_REQUEST_TYPE, LLM_IS_STREAMING, OPENAI_API_BASE, OPENAI_API_TYPE,
    Attr.COST_STATUS, Attr.COST_SOURCE, Attr.COST_TOTAL, Attr.METRICS_RECORDED, Attr.USAGE_SOURCE,
    Attr.TEAM, Attr.PROJECT, Attr.FEATURE, Attr.USER, Attr.ENVIRONMENT,
    *(f"{Attr.COST_PREFIX}{c}" for c in ("input", "cache_read", "cache_write", "output", "reasoning",
                                          "audio", "image", "request")),
})

_OPERATIONS = {
    "chat": Operation.CHAT, "completion": Operation.TEXT_COMPLETION,
    "text_completion": Operation.TEXT_COMPLETION, "embedding": Operation.EMBEDDINGS,
    "embeddings": Operation.EMBEDDINGS, "rerank": Operation.RERANK,
    "generate_content": Operation.GENERATE_CONTENT,
}
_TIERS = {"default": ServiceTier.STANDARD, "auto": ServiceTier.STANDARD, "standard": ServiceTier.STANDARD,
          "scale": ServiceTier.PRIORITY, "priority": ServiceTier.PRIORITY, "flex": ServiceTier.FLEX,
          "batch": ServiceTier.BATCH}


def any_value(v: Any) -> Any:
    """Python value of an OTLP ``AnyValue`` (scalars only; arrays as tuples of scalars)."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(any_value(x) for x in v.array_value.values)
    if kind == "kvlist_value" or kind == "bytes_value":
        return None
    return getattr(v, kind)


def attributes_of(kvs, wanted: frozenset[str] | None = None) -> dict[str, Any]:
    """``{key: value}`` of an OTLP attribute list (only ``wanted`` keys when given)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        k = kv.key
        if wanted is None or k in wanted:
            out[k] = any_value(kv.value)
    return out


def _int(value: Any) -> int | None:
    """Token count from an attribute (ints, floats, numeric strings); None when absent or junk."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    if n != n or n < 0 or n == float("inf"):
        return None
    return int(n)


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for k in keys:
        if k in attrs:
            n = _int(attrs[k])
            if n is not None:
                return n
    return None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def has_usage(attrs: Mapping[str, Any]) -> bool:
    """True when the span carries GenAI token usage."""
    for k in INPUT_KEYS:
        if k in attrs:
            return True
    for k in OUTPUT_KEYS:
        if k in attrs:
            return True
    return False


@dataclass(slots=True)
class SpanUsage:
    """What one GenAI span says about its call, normalised."""

    usage: UsageRecord
    provider: str
    model: str
    request_model: str
    response_model: str
    operation: str
    stream: bool = False
    outcome: str = Outcome.SUCCESS
    server_address: str = ""
    error_type: str = ""
    ttfc_s: float | None = None
    #: ``gen_ai.usage.cost`` already on the span, if any.
    existing_cost: float | None = None
    notes: list[str] = field(default_factory=list)


def _provider(attrs: Mapping[str, Any]) -> str:
    raw = attrs.get(GenAI.PROVIDER_NAME) or attrs.get(GenAI.SYSTEM) or ""
    provider = normalize_provider(str(raw))
    if provider == Provider.OPENAI:
        # OpenLLMetry on Azure OpenAI: gen_ai.system=openai, api_base on *.openai.azure.com.
        base = str(attrs.get(OPENAI_API_BASE) or "").lower()
        api_type = str(attrs.get(OPENAI_API_TYPE) or "").lower()
        if api_type.startswith("azure") or ".openai.azure.com" in base:
            return Provider.AZURE_OPENAI
    return provider


#: Providers whose OpenLIT spans report input *without* the cache (Anthropic's raw figure).
_OPENLIT_CACHE_EXCLUSIVE = frozenset({Provider.ANTHROPIC, Provider.BEDROCK, Provider.VERTEX_AI})

#: Attributes whose values differ from call to call (token counts, costs, timings). Every other
#: wanted attribute describes the call's *shape* (provider, model, operation, attribution...),
#: which repeats across spans and is worked out once per distinct shape (see :func:`shape_of`).
VARYING: frozenset[str] = frozenset({
    *INPUT_KEYS, *OUTPUT_KEYS, *CACHE_READ_KEYS, *CACHE_WRITE_KEYS, *REASONING_KEYS,
    GenAI.USAGE_COST, GenAI.RESPONSE_TIME_TO_FIRST_CHUNK, Attr.COST_TOTAL,
    *(f"{Attr.COST_PREFIX}{c}" for c in ("input", "cache_read", "cache_write", "output", "reasoning",
                                          "audio", "image", "request")),
})
#: The attributes whose presence makes a span a GenAI usage span (see :func:`has_usage`).
USAGE_KEYS: frozenset[str] = frozenset({*INPUT_KEYS, *OUTPUT_KEYS})


@dataclass(frozen=True, slots=True)
class SpanShape:
    """Everything about a GenAI span except its token counts, costs and timings.

    It depends only on the span's non-:data:`VARYING` attributes (and whether the
    span comes from OpenLIT, and its error status), so ``inferops serve`` works it
    out once per distinct shape and reuses it for every span of that shape.
    """

    provider: str
    model: str
    request_model: str
    response_model: str
    operation: str
    service_tier: str
    usage_source: str
    stream: bool
    outcome: str
    server_address: str
    error_type: str
    #: OpenLIT span of a provider whose reported input excludes the cache.
    cache_exclusive: bool


def shape_of(attrs: Mapping[str, Any], *, is_openlit: bool, status_error: bool) -> SpanShape:
    """The shape of a span (see :class:`SpanShape`) from its attributes."""
    provider = _provider(attrs)
    request_model = str(attrs.get(GenAI.REQUEST_MODEL) or "")
    response_model = str(attrs.get(GenAI.RESPONSE_MODEL) or "")
    op_raw = attrs.get(GenAI.OPERATION_NAME) or attrs.get(LLM_REQUEST_TYPE) or Operation.CHAT
    tier_raw = attrs.get(GenAI.RESPONSE_SERVICE_TIER) or attrs.get(GenAI.REQUEST_SERVICE_TIER)
    source = attrs.get(Attr.USAGE_SOURCE)
    stream_raw = attrs.get(GenAI.REQUEST_STREAM, attrs.get(LLM_IS_STREAMING))
    error_type = str(attrs.get(GenAI.ERROR_TYPE) or "")
    return SpanShape(
        provider=provider, model=response_model or request_model, request_model=request_model,
        response_model=response_model, operation=_OPERATIONS.get(str(op_raw).lower(), str(op_raw)),
        service_tier=_TIERS.get(str(tier_raw).lower(), ServiceTier.STANDARD) if tier_raw else ServiceTier.STANDARD,
        usage_source=source if source in UsageSource.ALL else UsageSource.PROVIDER,
        stream=_bool(stream_raw) if stream_raw is not None else False,
        outcome=Outcome.ERROR if (status_error or error_type) else Outcome.SUCCESS,
        server_address=str(attrs.get(GenAI.SERVER_ADDRESS) or ""), error_type=error_type,
        cache_exclusive=is_openlit and provider in _OPENLIT_CACHE_EXCLUSIVE,
    )


def usage_of(shape: SpanShape, attrs: Mapping[str, Any], *, timestamp: float | None) -> UsageRecord | None:
    """The span's token usage, normalised (cache added back when the input excluded it); ``None`` if none."""
    input_tokens = _first(attrs, INPUT_KEYS)
    output_tokens = _first(attrs, OUTPUT_KEYS)
    if input_tokens is None and output_tokens is None:
        return None
    input_tokens = input_tokens or 0
    cache_read = _first(attrs, CACHE_READ_KEYS) or 0
    cache_write = _first(attrs, CACHE_WRITE_KEYS) or 0
    notes: list[str] = []
    if (cache_read or cache_write) and (shape.cache_exclusive or cache_read + cache_write > input_tokens):
        input_tokens += cache_read + cache_write
        notes.append("input excluded cached tokens; added back")
    return UsageRecord(
        provider=shape.provider, model=shape.model, operation=shape.operation, input_tokens=input_tokens,
        output_tokens=output_tokens or 0, cache_read_tokens=cache_read, cache_write_5m_tokens=cache_write,
        reasoning_tokens=_first(attrs, REASONING_KEYS) or 0, service_tier=shape.service_tier,
        timestamp=timestamp, usage_source=shape.usage_source, notes=notes,
    )


def existing_cost_of(attrs: Mapping[str, Any]) -> float | None:
    """``gen_ai.usage.cost`` already on the span (another tool's USD figure), if it is a usable number."""
    cost = attrs.get(GenAI.USAGE_COST)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost == cost and cost >= 0:
        return float(cost)
    return None


def ttfc_of(attrs: Mapping[str, Any]) -> float | None:
    ttfc = attrs.get(GenAI.RESPONSE_TIME_TO_FIRST_CHUNK)
    return float(ttfc) if isinstance(ttfc, (int, float)) and not isinstance(ttfc, bool) else None


def extract(attrs: Mapping[str, Any], *, timestamp: float | None, is_openlit: bool,
            status_error: bool) -> SpanUsage | None:
    """Normalise a span's attributes; ``None`` when it carries no GenAI usage."""
    shape = shape_of(attrs, is_openlit=is_openlit, status_error=status_error)
    usage = usage_of(shape, attrs, timestamp=timestamp)
    if usage is None:
        return None
    return SpanUsage(
        usage=usage, provider=shape.provider, model=shape.model, request_model=shape.request_model,
        response_model=shape.response_model, operation=shape.operation, stream=shape.stream,
        outcome=shape.outcome, server_address=shape.server_address, error_type=shape.error_type,
        ttfc_s=ttfc_of(attrs), existing_cost=existing_cost_of(attrs), notes=usage.notes,
    )


class AttributionResolver:
    """Fills attribution fields: span ``inferops.*`` > span baggage-derived key > resource attribute.

    Baggage reaches spans as plain attributes named like the baggage key when
    the app runs a baggage span processor (``opentelemetry-processor-baggage``);
    ``settings.baggage_keys`` names them. ``settings.resource_keys`` maps fields
    to resource attributes (``deployment.environment.name``, ``team`` ...).
    """

    FIELDS = ("team", "project", "feature", "user", "environment")
    _SPAN_ATTR = {"team": Attr.TEAM, "project": Attr.PROJECT, "feature": Attr.FEATURE,
                  "user": Attr.USER, "environment": Attr.ENVIRONMENT}

    def __init__(self, baggage_keys: Mapping[str, str], resource_keys: Mapping[str, str],
                 required: tuple[str, ...]):
        self.baggage_keys = {f: k for f, k in baggage_keys.items() if f in self.FIELDS}
        self.resource_keys = {f: k for f, k in resource_keys.items() if f in self.FIELDS}
        self.required = tuple(required)
        #: extra span attribute names the scanner must keep (the baggage keys).
        self.span_keys = frozenset(self.baggage_keys.values())

    def resource_defaults(self, resource_attrs: Mapping[str, Any]) -> dict[str, str]:
        out = {}
        for f, key in self.resource_keys.items():
            v = resource_attrs.get(key)
            if v not in (None, ""):
                out[f] = str(v)
        svc = resource_attrs.get(SERVICE_NAME)
        out["service_name"] = str(svc) if svc not in (None, "") else ""
        return out

    def resolve(self, attrs: Mapping[str, Any], defaults: Mapping[str, str]) -> tuple[Attribution, dict[str, str]]:
        """The attribution and the ``inferops.*`` attributes to add (fields not on the span yet)."""
        values: dict[str, str] = {}
        to_add: dict[str, str] = {}
        for f in self.FIELDS:
            attr = self._SPAN_ATTR[f]
            v = attrs.get(attr)
            if v not in (None, ""):
                values[f] = str(v)
                continue
            bk = self.baggage_keys.get(f)
            v = attrs.get(bk) if bk else None
            if v in (None, ""):
                v = defaults.get(f)
            if v not in (None, ""):
                values[f] = str(v)
                to_add[attr] = str(v)
        missing = any(not values.get(f) for f in self.required)
        who = Attribution(team=values.get("team", ""), project=values.get("project", ""),
                          feature=values.get("feature", ""), user=values.get("user", ""),
                          environment=values.get("environment", ""),
                          service_name=defaults.get("service_name", ""), unattributed=missing)
        return who, to_add
