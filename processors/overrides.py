"""User price overrides: custom and self-hosted models, aliases, discounts, effective dates.

File format (YAML; all prices USD per **1M tokens**, ``per_request`` USD per request)::

    models:
      - provider: vllm                 # required
        model: llama-3.1-8b-instruct   # required: the model id clients send
        self_hosted: true              # optional
        prices: {input: 0.05, output: 0.10}
      - provider: vllm
        model: qwen3-32b
        gpu_hour_usd: 2.50             # self-hosted by GPU cost instead of token prices:
        tokens_per_gpu_hour: 3600000   #   every token costs gpu_hour_usd / tokens_per_gpu_hour
      - provider: openai
        model: ft:gpt-4o-mini-2024-07-18:acme::abc123
        base_model: gpt-4o-mini-2024-07-18   # price a fine-tune as another model
      - provider: openai
        model: gpt-4o
        effective_from: 2026-12-01     # price in force from this date (UTC) on
        prices: {input: 2.0, output: 8.0, cache_read: 1.0}
        batch: {input: 1.0, output: 4.0}    # optional service-tier prices (batch/flex/priority)
        tiers: [{above: 200000, prices: {input: 4.0, output: 12.0}}]
    aliases:
      - provider: azure.ai.openai
        name: prod-gpt4o               # e.g. an Azure deployment name
        model: gpt-4o-2024-08-06       # what it runs
    discounts:
      - provider: anthropic            # negotiated discount on every model of a provider
        percent: 10
      - provider: openai
        model: gpt-4o                  # or on one model (wins over the provider's)
        percent: 25
        effective_from: 2026-11-01

Errors name the file, line and field (:class:`inferops.yamlfile.ConfigError`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from inferops.yamlfile import ConfigError, LineDict, describe, fail, load_file, load_text

from .catalog import COMPONENTS, CatalogEntry, normalize_provider

SERVICE_TIER_KEYS = ("batch", "flex", "priority")
_MODEL_KEYS = {"provider", "model", "self_hosted", "effective_from", "mode", "prices", "tiers",
               "base_model", "base_provider", "gpu_hour_usd", "tokens_per_gpu_hour", *SERVICE_TIER_KEYS}
_ALIAS_KEYS = {"provider", "name", "model", "target_provider"}
_DISCOUNT_KEYS = {"provider", "model", "percent", "effective_from"}
_TOP_KEYS = {"models", "aliases", "discounts", "currency"}


@dataclass(frozen=True)
class ModelOverride:
    provider: str
    model: str
    effective_from: float  # unix seconds; float("-inf") when always
    entry: CatalogEntry | None  # None when base_model is used
    base_model: str = ""
    base_provider: str = ""
    where: str = ""


@dataclass(frozen=True)
class Discount:
    provider: str
    model: str  # "" = every model of the provider
    percent: float
    effective_from: float
    where: str = ""


@dataclass
class Overrides:
    models: list[ModelOverride] = field(default_factory=list)
    aliases: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    discounts: list[Discount] = field(default_factory=list)
    source: str = ""
    #: (provider, alias) -> "file:line" of its definition, for errors about the alias.
    alias_where: dict[tuple[str, str], str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.models or self.aliases or self.discounts)


def _where(container: Any, key: Any) -> str:
    return f"{getattr(container, 'source', '')}:{container.line_of(key)}"


def _require_str(container: LineDict, key: str, ctx: str) -> str:
    if key not in container:
        raise fail(container, key, f"missing required field {key!r}", field=f"{ctx}.{key}")
    value = container[key]
    if not isinstance(value, str) or not value.strip():
        raise fail(container, key, f"expected a non-empty string, got {describe(value)}", field=f"{ctx}.{key}")
    return value.strip()


def _date(container: LineDict, key: str, ctx: str) -> float:
    if key not in container:
        return float("-inf")
    value = container[key]
    if isinstance(value, dt.datetime):
        d = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return d.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp()
    if isinstance(value, str):
        try:
            return _date(LineDict({key: dt.date.fromisoformat(value.strip())}), key, ctx)
        except ValueError:
            pass
    raise fail(container, key, f"expected a date YYYY-MM-DD, got {describe(value)}", field=f"{ctx}.{key}")


_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _number(container: LineDict, key: str, ctx: str, *, minimum: float = 0.0, maximum: float | None = None,
            positive: bool = False) -> float:
    value = container[key]
    if isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string; it is meant as a number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(container, key, f"expected a number, got {describe(value)}", field=f"{ctx}.{key}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")) or value < minimum or (positive and value == 0) or (maximum is not None and value > maximum):
        rng = f"finite and > {minimum:g}" if positive else f"finite and >= {minimum:g}"
        if maximum is not None:
            rng += f" and <= {maximum:g}"
        raise fail(container, key, f"expected a number {rng}, got {describe(container[key])}", field=f"{ctx}.{key}")
    return value


def _unknown_keys(container: LineDict, allowed: set[str], ctx: str) -> None:
    for key in container:
        if key not in allowed:
            raise fail(container, key, f"unknown field {key!r}; expected one of: {', '.join(sorted(allowed))}",
                       field=f"{ctx}.{key}" if ctx else str(key))


def _prices(container: LineDict, key: str, ctx: str) -> dict[str, float]:
    """A mapping of component -> USD per 1M tokens, converted to USD per token."""
    value = container[key]
    if not isinstance(value, dict):
        raise fail(container, key, f"expected a mapping of component to USD per 1M tokens, got {describe(value)}",
                   field=f"{ctx}.{key}")
    out = {}
    for comp in value:
        if comp not in COMPONENTS:
            raise fail(value, comp, f"unknown price component {comp!r}; expected one of: {', '.join(COMPONENTS)}",
                       field=f"{ctx}.{key}.{comp}")
        price = _number(value, comp, f"{ctx}.{key}")
        out[comp] = price if comp == "per_request" else price / 1_000_000
    return out


def _as_list(data: LineDict, key: str) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(data, key, f"expected a list, got {describe(value)}")
    return value


def parse_overrides(data: Any, source: str) -> Overrides:
    """Validate a parsed overrides document."""
    out = Overrides(source=source)
    if data is None:
        return out
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with models / aliases / discounts at the top level",
                          source=source, line=1)
    _unknown_keys(data, _TOP_KEYS, "")
    if "currency" in data and data["currency"] != "USD":
        raise fail(data, "currency", f"only USD is supported, got {describe(data['currency'])}")

    models = _as_list(data, "models")
    model_seen: dict[tuple[str, str, float], str] = {}
    for i, item in enumerate(models):
        ctx = f"models[{i}]"
        if not isinstance(item, dict):
            raise fail(models, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown_keys(item, _MODEL_KEYS, ctx)
        provider = normalize_provider(_require_str(item, "provider", ctx))
        model = _require_str(item, "model", ctx)
        effective = _date(item, "effective_from", ctx)
        dup = model_seen.get((provider, model, effective))
        if dup is not None:
            raise fail(item, "model", f"model {model!r} ({provider}) is already priced"
                       f"{' from this date' if effective != float('-inf') else ''} at {dup}; "
                       "expected one entry per model and effective_from", field=f"{ctx}.model")
        model_seen[(provider, model, effective)] = _where(item, "model")
        ways = [k for k in ("prices", "base_model", "gpu_hour_usd") if k in item]
        if len(ways) != 1:
            raise fail(item, "model", "expected exactly one of 'prices', 'base_model' or 'gpu_hour_usd'"
                       + (f", got {', '.join(ways)}" if ways else ", got none"), field=ctx)
        self_hosted = item.get("self_hosted", False)
        if not isinstance(self_hosted, bool):
            raise fail(item, "self_hosted", f"expected true or false, got {describe(self_hosted)}",
                       field=f"{ctx}.self_hosted")
        mode = item.get("mode", "chat")
        if not isinstance(mode, str):
            raise fail(item, "mode", f"expected a string, got {describe(mode)}", field=f"{ctx}.mode")
        where = _where(models, i)
        if "base_model" in item:
            base = _require_str(item, "base_model", ctx)
            base_provider = normalize_provider(item.get("base_provider") or provider)
            out.models.append(ModelOverride(provider, model, effective, None, base, base_provider, where))
            continue
        prices: dict[str, dict[str, float]] = {}
        if "gpu_hour_usd" in item:
            gpu_hour = _number(item, "gpu_hour_usd", ctx, positive=True)
            if "tokens_per_gpu_hour" not in item:
                raise fail(item, "gpu_hour_usd", "missing 'tokens_per_gpu_hour' (needed with gpu_hour_usd)",
                           field=f"{ctx}.tokens_per_gpu_hour")
            tph = _number(item, "tokens_per_gpu_hour", ctx, positive=True)
            per_token = gpu_hour / tph
            prices["standard"] = {"input": per_token, "output": per_token}
            self_hosted = True
        else:
            prices["standard"] = _prices(item, "prices", ctx)
        for tier in SERVICE_TIER_KEYS:
            if tier in item:
                prices[tier] = _prices(item, tier, ctx)
        tiers = []
        raw_tiers = item.get("tiers") or []
        if not isinstance(raw_tiers, list):
            raise fail(item, "tiers", f"expected a list of {{above, prices}}, got {describe(raw_tiers)}",
                       field=f"{ctx}.tiers")
        for j, t in enumerate(raw_tiers):
            tctx = f"{ctx}.tiers[{j}]"
            if not isinstance(t, dict) or "above" not in t or "prices" not in t:
                raise fail(raw_tiers, j, "expected a mapping with 'above' (input tokens) and 'prices', "
                           f"got {describe(t)}", field=tctx)
            _unknown_keys(t, {"above", "prices"}, tctx)
            above = _number(t, "above", tctx, positive=True)
            tiers.append((int(above), {"standard": _prices(t, "prices", tctx)}))
        entry = CatalogEntry(
            key=f"overrides/{provider}/{model}",
            provider=provider, model=model, mode=mode, prices=prices,
            tiers=tuple(sorted(tiers)), self_hosted=self_hosted, origin=f"overrides:{where}",
        )
        out.models.append(ModelOverride(provider, model, effective, entry, where=where))

    aliases = _as_list(data, "aliases")
    for i, item in enumerate(aliases):
        ctx = f"aliases[{i}]"
        if not isinstance(item, dict):
            raise fail(aliases, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown_keys(item, _ALIAS_KEYS, ctx)
        provider = normalize_provider(_require_str(item, "provider", ctx))
        name = _require_str(item, "name", ctx)
        model = _require_str(item, "model", ctx)
        target = normalize_provider(item.get("target_provider") or provider)
        if (provider, name) in out.aliases:
            raise fail(aliases, i, f"alias {name!r} for {provider} is defined twice", field=f"{ctx}.name")
        if (provider, name) == (target, model):
            raise fail(item, "model", "an alias cannot point at itself", field=f"{ctx}.model")
        out.aliases[(provider, name)] = (target, model)
        out.alias_where[(provider, name)] = _where(item, "model")

    discounts = _as_list(data, "discounts")
    discount_seen: dict[tuple[str, str, float], str] = {}
    for i, item in enumerate(discounts):
        ctx = f"discounts[{i}]"
        if not isinstance(item, dict):
            raise fail(discounts, i, f"expected a mapping, got {describe(item)}", field=ctx)
        _unknown_keys(item, _DISCOUNT_KEYS, ctx)
        provider = normalize_provider(_require_str(item, "provider", ctx))
        model = _require_str(item, "model", ctx) if "model" in item else ""
        if "percent" not in item:
            raise fail(item, "provider", "missing required field 'percent'", field=f"{ctx}.percent")
        percent = _number(item, "percent", ctx, minimum=0.0, maximum=100.0)
        effective = _date(item, "effective_from", ctx)
        dup = discount_seen.get((provider, model or "", effective))
        if dup is not None:
            raise fail(discounts, i, f"a discount for {model or 'every model'} ({provider})"
                       f"{' from this date' if effective != float('-inf') else ''} is already given at {dup}; "
                       "expected one per provider/model and effective_from", field=ctx)
        discount_seen[(provider, model or "", effective)] = _where(discounts, i)
        out.discounts.append(Discount(provider, model or "", percent, effective, _where(discounts, i)))
    return out


def load_overrides(path: str) -> Overrides:
    """Load and validate an overrides file (raises :class:`ConfigError`)."""
    return parse_overrides(load_file(path), path)


def parse_overrides_text(text: str, source: str = "<string>") -> Overrides:
    return parse_overrides(load_text(text, source), source)
