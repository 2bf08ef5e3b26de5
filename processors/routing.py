"""Cost-aware model routing: a policy file decides, per call, to send a cheaper model.

Policy YAML (``INFEROPS_ROUTING_FILE``)::

    dry_run: false                # default for every rule (true: decide and record, never rewrite)
    rules:                        # first matching rule wins
      - name: short-faq-to-mini
        when:                     # every condition given must hold; lists mean "any of"
          provider: openai        # provider of the call (semconv spelling)
          model: gpt-4o           # requested model; dated ids match their catalog model
          operation: chat
          feature: [faq, search]  # attribution: team, project, feature, environment, service_name
          task: classification    # explicit task tag set by the application
          max_input_tokens: 2000  # prompt size (inferops' estimate of the request's input tokens)
          min_input_tokens: 0
        route_to:
          model: gpt-4o-mini
          provider: openai        # optional, default: the call's provider
        dry_run: true             # optional, overrides the file's default

String conditions accept shell-style patterns (``gpt-4o*``, ``team-*``).

What routing can do: inferops rewrites the ``model`` field of the request
body, never the URL. So it only routes providers that carry the model in the
body (OpenAI and OpenAI-compatible servers and gateways, Anthropic, Mistral,
Cohere...), not those that carry it in the path (Gemini/Vertex, Bedrock, Azure
OpenAI deployments): rules naming those are rejected when the file is loaded,
and ``decide`` returns None for their calls. ``route_to.provider`` different
from the call's provider is allowed only within one wire format (an
OpenAI-compatible gateway serving several vendors' models): it tells inferops
how to price the routed model. The routed model must be in the price catalog
(or the price overrides), so the savings are always computable.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

from inferops.names import ATTRIBUTION_LABELS, Provider
from inferops.yamlfile import ConfigError, LineList, describe, fail, load_file

from .catalog import model_candidates, normalize_provider
from .usage import UsageRecord

#: Providers whose requests carry the model in the JSON body, by wire format.
WIRE_FORMATS: dict[str, str] = {
    Provider.OPENAI: "openai",
    Provider.GROQ: "openai",
    Provider.DEEPSEEK: "openai",
    Provider.XAI: "openai",
    Provider.PERPLEXITY: "openai",
    Provider.TOGETHER: "openai",
    Provider.FIREWORKS: "openai",
    Provider.OPENROUTER: "openai",
    Provider.MISTRAL: "openai",
    Provider.ANTHROPIC: "anthropic",
    Provider.COHERE: "cohere",
    Provider.AZURE_INFERENCE: "openai",
}
#: Providers whose model is in the URL path: a body rewrite cannot route them.
PATH_MODEL_PROVIDERS: frozenset[str] = frozenset({
    Provider.GEMINI, Provider.VERTEX_AI, Provider.BEDROCK, Provider.AZURE_OPENAI,
})

STRING_CONDITIONS = ("provider", "model", "operation", "task", *ATTRIBUTION_LABELS)
INT_CONDITIONS = ("min_input_tokens", "max_input_tokens")
CONDITIONS = (*STRING_CONDITIONS, *INT_CONDITIONS)


def wire_format(provider: str) -> str | None:
    """Wire format of a provider whose model is in the body; None when it cannot be routed.

    Providers inferops does not know (self-hosted servers named in
    ``INFEROPS_SELF_HOSTED``, e.g. ``vllm``) speak the OpenAI format.
    """
    p = normalize_provider(provider)
    if p in PATH_MODEL_PROVIDERS:
        return None
    return WIRE_FORMATS.get(p, "openai")


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """What to do with one call: send ``target_model`` instead (unless ``dry_run``)."""

    rule: str
    target_model: str
    dry_run: bool
    #: Provider whose prices apply to the target model (the call's provider unless the rule says otherwise).
    target_provider: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: dict[str, tuple[str, ...]]
    min_input_tokens: int | None
    max_input_tokens: int | None
    target_model: str
    target_provider: str  # "" = the call's provider
    dry_run: bool
    where: str


class RoutingPolicy:
    """A validated routing policy; ``decide`` is pure, fast and never raises."""

    def __init__(self, rules: Iterable[Rule], engine, source: str = ""):
        self.rules = tuple(rules)
        self.engine = engine
        self.source = source

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings, engine=None) -> "RoutingPolicy | None":
        """The policy of ``settings.routing_file``; None when routing is off (empty setting).

        Raises :class:`ConfigError` (file:line, field) when the file is invalid.
        """
        path = getattr(settings, "routing_file", "")
        if not path:
            return None
        if engine is None:
            from .engine import CostEngine

            engine = CostEngine.from_settings(settings)
        return cls.load(path, engine)

    @classmethod
    def load(cls, path: str, engine) -> "RoutingPolicy":
        return cls.parse(load_file(path), engine, source=str(path))

    @classmethod
    def parse(cls, doc: Any, engine, source: str = "<routing>") -> "RoutingPolicy":
        if not isinstance(doc, dict):
            raise ConfigError("expected a mapping with 'rules' (and optionally 'dry_run') at the top level",
                              source=source, line=1)
        for key in doc:
            if key not in ("dry_run", "rules"):
                raise fail(doc, key, "unknown key; expected dry_run or rules")
        default_dry = _bool(doc, "dry_run", False)
        rules_raw = doc.get("rules")
        if not isinstance(rules_raw, list) or not rules_raw:
            raise fail(doc, "rules", f"expected a non-empty list of rules, got {describe(rules_raw)}", field="rules")
        rules: list[Rule] = []
        names: dict[str, int] = {}
        for i, raw in enumerate(rules_raw):
            line = rules_raw.line_of(i) if isinstance(rules_raw, LineList) else None
            rule = _parse_rule(raw, i, line, source, default_dry, engine)
            if rule.name in names:
                raise ConfigError(f"duplicate rule name {rule.name!r} (first on line {names[rule.name]})",
                                  source=source, line=line, field=f"rules[{i}].name")
            names[rule.name] = line or 0
            rules.append(rule)
        return cls(rules, engine, source)

    # -- deciding ----------------------------------------------------------------------

    def decide(self, who, provider: str, operation: str, model: str, input_tokens_estimate: int,
               task: str = "") -> RouteDecision | None:
        """The first rule matching this call, as a decision; None when none matches (or on any error)."""
        try:
            return self._decide(who, provider, operation, model, input_tokens_estimate, task)
        except Exception:  # noqa: BLE001 - routing must never break a call
            return None

    def _decide(self, who, provider, operation, model, tokens, task):
        provider = normalize_provider(provider)
        if not model or wire_format(provider) is None:
            return None
        canonical = self._canonical(provider, model)
        values = {"provider": (provider,), "model": (*_model_forms(model), canonical), "operation": (operation or "",),
                  "task": (task or "",)}
        for name in ATTRIBUTION_LABELS:
            values[name] = (getattr(who, name, "") or "",)
        for rule in self.rules:
            if rule.min_input_tokens is not None and tokens < rule.min_input_tokens:
                continue
            if rule.max_input_tokens is not None and tokens > rule.max_input_tokens:
                continue
            if not all(_matches(values[k], patterns) for k, patterns in rule.conditions.items()):
                continue
            target_provider = rule.target_provider or provider
            if wire_format(target_provider) != wire_format(provider):
                continue
            if rule.target_model in _model_forms(model) or (
                    target_provider == provider and self._canonical(provider, rule.target_model) == canonical):
                return None  # already the target: nothing to route
            return RouteDecision(rule.name, rule.target_model, rule.dry_run,
                                 "" if target_provider == provider else target_provider)
        return None

    def _canonical(self, provider: str, model: str) -> str:
        entry = self.engine.resolve(provider, model).entry
        return entry.model if entry is not None else model


@functools.lru_cache(maxsize=4096)
def _model_forms(model: str) -> tuple[str, ...]:
    """The model id and its more general forms (dated snapshot -> model, provider prefix stripped...)."""
    return tuple(f for f in model_candidates(model) if not f.endswith("-latest") or model.endswith("-latest"))


def _matches(values: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(v, p) for v in values for p in patterns)


def _bool(container, key, default: bool) -> bool:
    if key not in container:
        return default
    value = container[key]
    if not isinstance(value, bool):
        raise fail(container, key, f"expected true or false, got {describe(value)}")
    return value


def _parse_rule(raw, i: int, line, source: str, default_dry: bool, engine) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a rule mapping (name, when, route_to), got {describe(raw)}",
                          source=source, line=line, field=where)
    for key in raw:
        if key not in ("name", "when", "route_to", "dry_run"):
            raise fail(raw, key, "unknown key; expected name, when, route_to or dry_run", field=f"{where}.{key}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail(raw, "name", f"expected a non-empty string, got {describe(name)}", field=f"{where}.name")
    when = raw.get("when")
    if not isinstance(when, dict) or not when:
        raise fail(raw, "when", f"expected a mapping with at least one condition ({', '.join(CONDITIONS)}), "
                   f"got {describe(when)}", field=f"{where}.when")
    conditions: dict[str, tuple[str, ...]] = {}
    bounds: dict[str, int | None] = {"min_input_tokens": None, "max_input_tokens": None}
    for key, value in when.items():
        f = f"{where}.when.{key}"
        if key in INT_CONDITIONS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(when, key, f"expected a whole number of tokens >= 0, got {describe(value)}", field=f)
            bounds[key] = value
        elif key in STRING_CONDITIONS:
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) and str(x).strip()
                                    for x in items):
                raise fail(when, key, f"expected a string or a list of strings, got {describe(value)}", field=f)
            vals = tuple(str(x).strip() for x in items)
            if key == "provider":
                vals = tuple(normalize_provider(v) for v in vals)
                for v in vals:
                    if wire_format(v) is None:
                        raise fail(when, key, f"provider {v!r} carries the model in the URL path; inferops "
                                   "routes by rewriting the request body, so it cannot route these calls", field=f)
            conditions[key] = vals
        else:
            raise fail(when, key, f"unknown condition; expected one of {', '.join(CONDITIONS)}", field=f)
    lo, hi = bounds["min_input_tokens"], bounds["max_input_tokens"]
    if lo is not None and hi is not None and lo > hi:
        raise fail(when, "min_input_tokens", f"min_input_tokens ({lo}) is above max_input_tokens ({hi})",
                   field=f"{where}.when.min_input_tokens")
    route = raw.get("route_to")
    if not isinstance(route, dict):
        raise fail(raw, "route_to", f"expected a mapping with 'model' (and optionally 'provider'), "
                   f"got {describe(route)}", field=f"{where}.route_to")
    for key in route:
        if key not in ("model", "provider"):
            raise fail(route, key, "unknown key; expected model or provider", field=f"{where}.route_to.{key}")
    target = route.get("model")
    if not isinstance(target, str) or not target.strip():
        raise fail(route, "model", f"expected a model name, got {describe(target)}", field=f"{where}.route_to.model")
    target = target.strip()
    tprov = route.get("provider", "")
    if not isinstance(tprov, str):
        raise fail(route, "provider", f"expected a provider name, got {describe(tprov)}",
                   field=f"{where}.route_to.provider")
    tprov = normalize_provider(tprov)
    if tprov and wire_format(tprov) is None:
        raise fail(route, "provider", f"provider {tprov!r} carries the model in the URL path and cannot be a "
                   "routing target", field=f"{where}.route_to.provider")
    sources = conditions.get("provider", ())
    if tprov:
        for p in sources:
            if "*" not in p and "?" not in p and wire_format(p) != wire_format(tprov):
                raise fail(route, "provider", f"calls to {p!r} ({wire_format(p)} wire format) cannot be sent "
                           f"to {tprov!r} ({wire_format(tprov)} wire format)", field=f"{where}.route_to.provider")
    price_providers = [tprov] if tprov else [p for p in sources if "*" not in p and "?" not in p]
    for p in price_providers or [""]:
        if engine.resolve(p, target).entry is None:
            raise fail(route, "model", f"model {target!r}{' (' + p + ')' if p else ''} is not in the price catalog "
                       "or the overrides: savings could not be computed. Add it to a price overrides file.",
                       field=f"{where}.route_to.model")
    return Rule(name.strip(), conditions, lo, hi, target, tprov, _bool(raw, "dry_run", default_dry),
                f"{source}:{line}" if line else source)


# ---------------------------------------------------------------------------
# Helpers for the instrumentation
# ---------------------------------------------------------------------------


def savings(engine, usage_requested_model: UsageRecord, usage_routed_model: UsageRecord) -> float | None:
    """USD saved: the requested model's price minus the routed model's price, for the same actual tokens.

    Both records carry the call's actual usage; only provider/model differ.
    None when either model is unpriced (never guess $0). Negative when the
    rule routed to a pricier model.
    """
    a = engine.price(usage_requested_model)
    b = engine.price(usage_routed_model)
    if not a.priced or not b.priced or a.total is None or b.total is None:
        return None
    return a.total - b.total


def counterfactual(usage: UsageRecord, model: str, provider: str | None = None) -> UsageRecord:
    """The same usage as if ``model`` (of ``provider``) had served it: for :func:`savings`."""
    return dataclasses.replace(usage, model=model, provider=provider or usage.provider, notes=list(usage.notes))


def rewrite_body(body: bytes, target_model: str) -> bytes | None:
    """The request body with ``model`` replaced; None when the body is not a JSON object with a model."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
        return None
    doc["model"] = target_model
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def estimate_input_tokens(body: Any) -> int:
    """Cheap prompt-size estimate of a parsed request body: characters of its text / 4, rounded up.

    Good enough to compare with a rule's size bounds (it over-estimates code
    and under-estimates CJK text a little); the instrumentation may pass a
    tiktoken count instead.
    """
    chars = 0

    def walk(node: Any, key: str = "") -> None:
        nonlocal chars
        if isinstance(node, str):
            if key in ("content", "text", "input", "prompt", "system", "instructions", "message", "query"):
                chars += len(node)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(body)
    return math.ceil(chars / 4)


class RoutingMetrics:
    """The routing counters of the names contract, recorded after pricing.

    ``Metrics.ROUTING_SAVINGS`` for rewritten calls (requested model's price
    minus the routed model's, for the tokens the routed model actually used);
    ``Metrics.ROUTING_POTENTIAL_SAVINGS`` for dry-run decisions (the served
    model's price minus the rule target's, same tokens). Only positive
    amounts are added (counters cannot go down); the value, whatever its
    sign, is returned for the ``inferops.routing.savings`` span attribute.
    """

    def __init__(self, meter, guard=None):
        from inferops.names import Metrics

        def create(m):
            return meter.create_counter(m.otel_name, unit=m.unit, description=m.description)

        self.saved = create(Metrics.ROUTING_SAVINGS)
        self.potential = create(Metrics.ROUTING_POTENTIAL_SAVINGS)
        self.guard = guard

    def record(self, engine, decision: RouteDecision, usage: UsageRecord, *, requested_model: str,
               requested_provider: str, labels: dict[str, str]) -> float | None:
        """Price both sides, add the positive savings with ``labels`` (the call's labels), return the figure."""
        from inferops.names import Label

        if decision.dry_run:
            target = counterfactual(usage, decision.target_model, decision.target_provider or usage.provider)
            value = savings(engine, usage, target)
            counter, requested, routed = self.potential, usage.model, decision.target_model
        else:
            value = savings(engine, counterfactual(usage, requested_model, requested_provider), usage)
            counter, requested, routed = self.saved, requested_model, decision.target_model
        if value is not None and value > 0:
            g = self.guard or (lambda _label, v: v)
            counter.add(value, {**labels, Label.REQUESTED_MODEL: g(Label.REQUESTED_MODEL, requested),
                                Label.ROUTED_MODEL: g(Label.ROUTED_MODEL, routed)})
        return value
