"""Build the compact inferops price catalog from the community (LiteLLM) price table.

The source is ``model_prices_and_context_window.json`` as maintained by the
LiteLLM project (MIT licence; the notice ships beside the catalog as
``data/LICENSE-litellm.txt``). We never hand-type a price it has: this module
converts it, keeping per-token USD figures exactly as the source writes them,
into entries of the shape documented in :mod:`inferops.processors.catalog`.

What is kept per entry: prices per component (input, output, cache read,
cache write 5m/1h, reasoning, audio and image tokens, per-request fee) for each
service tier (standard, batch, flex, priority), long-context tiers
(``*_above_<N>k_tokens``, and LiteLLM's ``tiered_pricing`` ranges), the mode,
context limits and a few capability flags used to compare models. Entries
with no token or request price at all (image, video, audio-per-second only)
are left out: inferops prices token usage.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

CATALOG_FORMAT = 1

#: LiteLLM base price field -> inferops component. Longest names first matters for parsing.
BASE_FIELDS: dict[str, str] = {
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "cache_creation_input_token_cost": "cache_write_5m",
    "cache_read_input_token_cost": "cache_read",
    "input_cost_per_audio_token": "input_audio",
    "output_cost_per_audio_token": "output_audio",
    "input_cost_per_image_token": "input_image",
    "output_cost_per_image_token": "output_image",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_request": "per_request",
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
}
TIER_SUFFIXES = {"": "standard", "_batches": "batch", "_flex": "flex", "_priority": "priority"}

_FIELD_RE = re.compile(
    r"^(?P<base>" + "|".join(re.escape(b) for b in BASE_FIELDS) + r")"
    r"(?:_above_(?P<k>\d+)k_tokens)?"
    r"(?P<tier>_batches|_flex|_priority)?$"
)

#: LiteLLM ``litellm_provider`` -> inferops provider (GenAI semconv spelling where one exists).
PROVIDER_MAP: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    # codestral.mistral.ai (a separate, formerly free endpoint) keeps its own provider id so its $0
    # entries never price api.mistral.ai calls of the same model name.
    "codestral": "codestral",
    "text-completion-codestral": "codestral",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks_ai",
    "fireworks_ai-embedding-models": "fireworks_ai",
    "openrouter": "openrouter",
    "watsonx": "ibm.watsonx.ai",
    "ollama": "ollama",
}

#: Key prefixes (first path segment) that name a provider rather than part of the model id.
KEY_PREFIXES = {
    "openai", "azure", "azure_ai", "anthropic", "bedrock", "bedrock_converse", "gemini", "vertex_ai",
    "mistral", "codestral", "cohere", "cohere_chat", "groq", "deepseek", "xai", "perplexity",
    "together_ai", "fireworks_ai", "openrouter", "watsonx", "ollama", "text-completion-openai",
    "text-completion-codestral", "azure_text",
}

CAPABILITY_FLAGS = ("supports_reasoning", "supports_vision", "supports_function_calling",
                    "supports_prompt_caching", "supports_audio_input")


def map_provider(litellm_provider: str | None) -> str:
    """inferops provider name for a LiteLLM provider id (``vertex_ai-*`` is Vertex AI)."""
    if not litellm_provider:
        return ""
    if litellm_provider.startswith("vertex_ai"):
        return "gcp.vertex_ai"
    return PROVIDER_MAP.get(litellm_provider, litellm_provider)


def model_id_of_key(key: str, litellm_provider: str | None = None) -> str:
    """The model id a client sends, from a LiteLLM key (``azure/gpt-4o`` -> ``gpt-4o``)."""
    if "/" in key:
        first, rest = key.split("/", 1)
        if first in KEY_PREFIXES or first == litellm_provider:
            return rest
    return key


def _price(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value < 0 or value != value:
        return None
    return float(value)


def convert_entry(key: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    """One LiteLLM entry -> one catalog entry, or ``None`` when it has no token/request price."""
    prices: dict[str, dict[str, float]] = {}
    tiers: dict[int, dict[str, dict[str, float]]] = {}
    for name, value in raw.items():
        m = _FIELD_RE.match(name)
        if not m:
            continue
        price = _price(value)
        if price is None:
            continue
        component = BASE_FIELDS[m.group("base")]
        tier = TIER_SUFFIXES[m.group("tier") or ""]
        if m.group("k"):
            above = int(m.group("k")) * 1000
            tiers.setdefault(above, {}).setdefault(tier, {})[component] = price
        else:
            prices.setdefault(tier, {})[component] = price
    for rng in raw.get("tiered_pricing") or []:
        if not isinstance(rng, dict):
            continue
        bounds = rng.get("range")
        if not (isinstance(bounds, list) and bounds and isinstance(bounds[0], (int, float))):
            continue
        start = int(bounds[0])
        comp = {}
        for name, component in (("input_cost_per_token", "input"), ("output_cost_per_token", "output"),
                                 ("cache_read_input_token_cost", "cache_read"),
                                 ("output_cost_per_reasoning_token", "reasoning")):
            price = _price(rng.get(name))
            if price is not None:
                comp[component] = price
        if not comp:
            continue
        if start == 0:
            prices.setdefault("standard", {}).update({k: v for k, v in comp.items()
                                                      if k not in prices.get("standard", {})})
        else:
            tiers.setdefault(start, {}).setdefault("standard", {}).update(comp)
    if not prices.get("standard") and not tiers:
        return None
    if not any(prices.get("standard", {}).get(c) is not None
               for c in ("input", "output", "per_request", "input_audio", "input_image")):
        return None
    entry: dict[str, Any] = {
        "provider": map_provider(raw.get("litellm_provider")),
        "model": model_id_of_key(key, raw.get("litellm_provider")),
        "mode": raw.get("mode") or "chat",
        "prices": {t: dict(sorted(c.items())) for t, c in sorted(prices.items())},
    }
    if tiers:
        entry["tiers"] = [
            {"above": above, "prices": {t: dict(sorted(c.items())) for t, c in sorted(tp.items())}}
            for above, tp in sorted(tiers.items())
        ]
    for meta in ("max_input_tokens", "max_output_tokens"):
        if isinstance(raw.get(meta), int):
            entry[meta] = raw[meta]
    flags = [f.removeprefix("supports_") for f in CAPABILITY_FLAGS if raw.get(f) is True]
    if flags:
        entry["capabilities"] = flags
    if isinstance(raw.get("deprecation_date"), str):
        entry["deprecation_date"] = raw["deprecation_date"]
    return entry


def read_source(location: str, timeout: float = 30.0) -> bytes:
    """Read the source table from a file path or an http(s) URL."""
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=timeout) as resp:  # noqa: S310 - user-given URL
            return resp.read()
    return Path(location).read_bytes()


class SourceError(ValueError):
    """The source table is not in the expected format."""


def build_catalog(raw_bytes: bytes, *, source_name: str, source_version: str,
                  source_url: str = "") -> dict[str, Any]:
    """Convert the source table bytes to the catalog document."""
    try:
        table = json.loads(raw_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{source_name}: not JSON: {exc}") from None
    if not isinstance(table, dict):
        raise SourceError(f"{source_name}: expected a JSON object mapping model keys to entries")
    entries: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "sample_spec" or not isinstance(raw, dict):
            continue
        entry = convert_entry(key, raw)
        if entry is not None:
            entries[key] = entry
    if not entries:
        raise SourceError(f"{source_name}: no priced entries found (is this a LiteLLM price table?)")
    digest = hashlib.sha256(raw_bytes).hexdigest()
    return {
        "format": CATALOG_FORMAT,
        "version": f"{source_version}+{digest[:12]}",
        "currency": "USD",
        "unit": "USD per token (per request for per_request)",
        "source": {
            "name": "LiteLLM model_prices_and_context_window.json",
            "version": source_version,
            "url": source_url,
            "sha256": digest,
            "license": "MIT, Copyright (c) 2023 Berri AI; see LICENSE-litellm.txt",
            "file": source_name,
        },
        "entries": dict(sorted(entries.items())),
    }


def write_catalog(catalog: dict[str, Any], out: str | Path) -> None:
    """Write compactly: one entry per line so diffs of a catalog update stay readable."""
    out = Path(out)
    head = {k: v for k, v in catalog.items() if k != "entries"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    lines.append('"entries": {')
    items = list(catalog["entries"].items())
    for i, (k, v) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}{comma}")
    lines.append("}}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
