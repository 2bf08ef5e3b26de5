"""The price catalog and model resolution.

Catalog document (``data/catalog.json``, built by :mod:`.catalog_build`)::

    {"format": 1, "version": "...", "currency": "USD", "source": {...},
     "entries": {KEY: {"provider": "openai", "model": "gpt-4o", "mode": "chat",
                       "prices": {"standard": {"input": 2.5e-06, ...}, "batch": {...}},
                       "tiers": [{"above": 272000, "prices": {"standard": {...}}}],
                       "max_input_tokens": 128000, "capabilities": [...]}}}

Prices are USD per token (``per_request``: USD per request). Components:
``input``, ``output``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h``,
``reasoning``, ``input_audio``, ``output_audio``, ``input_image``,
``output_image``, ``per_request``.

Resolution maps what a client sent, ``(provider, model)``, to one entry. It
tries the model string as sent, then progressively more general forms:
``models/`` and Vertex ``publishers/*/models/`` paths, Bedrock ARNs,
provider prefixes (``openai/gpt-4o``), Vertex ``@version``, fine-tune ids
(``ft:base:org::id``), Bedrock cross-region prefixes (``us.``, ``eu.``...,
regional price first when the catalog has it), version suffixes (``-v1:0``)
and date stamps (``-2024-08-06``, ``-20250929``, ``-2407``, ``-latest``).
Each form is looked up under the call's provider first, then under related
providers whose list prices match (Azure OpenAI -> OpenAI, Vertex <-> Gemini,
Bedrock/Vertex Claude -> Anthropic). A model that resolves nowhere is
*unpriced*. Results are cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

COMPONENTS = (
    "input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning",
    "input_audio", "output_audio", "input_image", "output_image", "per_request",
)

#: Related providers tried, in order, after the call's own provider.
PROVIDER_FALLBACKS: dict[str, tuple[str, ...]] = {
    "azure.ai.openai": ("openai",),
    "azure.ai.inference": ("azure.ai.openai", "openai"),
    "gcp.gemini": ("gcp.vertex_ai",),
    "gcp.vertex_ai": ("gcp.gemini", "anthropic", "mistral_ai"),
    "aws.bedrock": ("anthropic",),
    "openai": (),
    "": ("openai", "anthropic", "gcp.gemini", "mistral_ai", "cohere"),
}

#: Aliases for provider names clients or other instrumentations write.
PROVIDER_ALIASES: dict[str, str] = {
    "azure": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gcp.gen_ai": "gcp.gemini",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
    "together": "together_ai",
    "fireworks": "fireworks_ai",
    "watsonx": "ibm.watsonx.ai",
}

_BEDROCK_REGION = re.compile(r"^(us|eu|apac|ap|jp|au|ca|global|us-gov)\.(?=[a-z0-9-]+\.)")
_DATE_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # gpt-4o-2024-08-06
    re.compile(r"-\d{8}$"),  # claude-sonnet-4-5-20250929
    re.compile(r"-\d{4}$"),  # mistral-large-2407, gpt-4-0613
    re.compile(r"-\d{3}$"),  # gemini-1.5-pro-002
    re.compile(r"-latest$"),
    re.compile(r"-preview$"),
)
_VERSION_SUFFIX = re.compile(r"-v\d+(:\d+)?$|:\d+$")


def normalize_provider(provider: str | None) -> str:
    p = (provider or "").strip().lower()
    return PROVIDER_ALIASES.get(p, p)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One priced model."""

    key: str
    provider: str
    model: str
    mode: str
    #: service tier -> component -> USD per token
    prices: dict[str, dict[str, float]]
    #: (above_input_tokens, service tier -> component -> USD per token), ascending
    tiers: tuple[tuple[int, dict[str, dict[str, float]]], ...] = ()
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] = ()
    self_hosted: bool = False
    #: "catalog" or "overrides:<file>:<line>"
    origin: str = "catalog"

    @classmethod
    def from_json(cls, key: str, raw: dict[str, Any], origin: str = "catalog") -> "CatalogEntry":
        return cls(
            key=key,
            provider=raw.get("provider", ""),
            model=raw.get("model", key),
            mode=raw.get("mode", "chat"),
            prices={t: dict(c) for t, c in raw.get("prices", {}).items()},
            tiers=tuple((int(t["above"]), {s: dict(c) for s, c in t["prices"].items()})
                        for t in raw.get("tiers", ())),
            max_input_tokens=raw.get("max_input_tokens"),
            max_output_tokens=raw.get("max_output_tokens"),
            capabilities=tuple(raw.get("capabilities", ())),
            self_hosted=bool(raw.get("self_hosted", False)),
            origin=origin,
        )

    def per_million(self, tier: str = "standard") -> dict[str, float]:
        """Prices of one service tier in USD per 1M tokens (per request for per_request)."""
        out = {}
        for comp, price in self.prices.get(tier, {}).items():
            out[comp] = price if comp == "per_request" else round(price * 1_000_000, 10)
        return out


class Catalog:
    """Entries plus an index ``(provider, model id) -> key`` for resolution."""

    def __init__(self, document: dict[str, Any], origin: str = "built-in"):
        if document.get("format") != 1 or not isinstance(document.get("entries"), dict):
            raise ValueError(f"{origin}: not an inferops catalog (expected format 1 with 'entries')")
        self.version: str = str(document.get("version", "unknown"))
        self.source: dict[str, Any] = dict(document.get("source", {}))
        self.origin = origin
        self.entries: dict[str, CatalogEntry] = {}
        self._index: dict[tuple[str, str], str] = {}
        for key, raw in document["entries"].items():
            self.add(CatalogEntry.from_json(key, raw))

    def add(self, entry: CatalogEntry, *, replace: bool = False) -> None:
        """Add an entry and index it; the first entry indexed for a name wins unless ``replace``."""
        self.entries[entry.key] = entry
        for name in {entry.model, entry.model.lower(), entry.key, entry.key.lower()}:
            ix = (entry.provider, name)
            if replace or ix not in self._index:
                self._index[ix] = entry.key

    def lookup(self, provider: str, model: str) -> CatalogEntry | None:
        """Exact lookup of one name under one provider (no normalisation)."""
        key = self._index.get((provider, model))
        return self.entries.get(key) if key is not None else None

    def providers(self) -> set[str]:
        return {e.provider for e in self.entries.values()}


def model_candidates(model: str) -> Iterator[str]:
    """Forms of a model id from most to least specific (see the module docstring)."""
    seen: set[str] = set()

    def emit(name: str) -> Iterator[str]:
        if name and name not in seen:
            seen.add(name)
            yield name
            lower = name.lower()
            if lower not in seen:
                seen.add(lower)
                yield lower

    m = model.strip()
    yield from emit(m)
    # Paths: "models/gemini-2.5-pro", ".../publishers/google/models/gemini-2.5-pro", ARNs.
    if "/models/" in m or m.startswith("models/"):
        m = m.rsplit("models/", 1)[1]
        yield from emit(m)
    if m.startswith("arn:"):
        m = m.rsplit("/", 1)[-1]
        yield from emit(m)
    # Provider prefix: "openai/gpt-4o", "anthropic/claude-...".
    if "/" in m:
        first, rest = m.split("/", 1)
        if first.lower() in _PREFIXES:
            m = rest
            yield from emit(m)
    # Fine-tunes: "ft:gpt-4o-mini-2024-07-18:org::abc" -> "ft:gpt-4o-mini-2024-07-18" -> base.
    if m.startswith("ft:"):
        parts = m.split(":")
        if len(parts) >= 2:
            yield from emit(f"ft:{parts[1]}")
            m = parts[1]
            yield from emit(m)
    # Vertex "@version": "claude-sonnet-4-5@20250929" -> "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5".
    if "@" in m:
        base, version = m.split("@", 1)
        yield from emit(f"{base}-{version}")
        m = base
        yield from emit(m)
    # Bedrock cross-region inference profiles: "us.anthropic.claude-..." -> "anthropic.claude-...".
    region = _BEDROCK_REGION.match(m)
    if region:
        m = m[region.end():]
        yield from emit(m)
    # Bedrock version suffix "-v1:0", then "vendor.model" -> "model".
    stripped = _VERSION_SUFFIX.sub("", m)
    if stripped != m:
        yield from emit(stripped)
    if "." in m.split("-")[0] and re.match(r"^[a-z]+\.", m):
        vendorless = m.split(".", 1)[1]
        yield from emit(vendorless)
        yield from emit(_VERSION_SUFFIX.sub("", vendorless))
        m = _VERSION_SUFFIX.sub("", vendorless)
    else:
        m = stripped
    # Date stamps and "-latest".
    changed = True
    while changed:
        changed = False
        for pattern in _DATE_SUFFIXES:
            new = pattern.sub("", m)
            if new != m and new:
                m = new
                yield from emit(m)
                changed = True
                break
    # A dated snapshot whose undated name is not priced may be priced as "<name>-latest".
    if not model.endswith("-latest"):
        yield from emit(f"{m}-latest")


_PREFIXES = {
    "openai", "azure", "anthropic", "bedrock", "gemini", "google", "vertex_ai", "mistral", "mistralai",
    "cohere", "groq", "deepseek", "xai", "x-ai", "perplexity", "together_ai", "fireworks_ai",
    "openrouter", "meta", "azure_ai",
}


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a (provider, model) resolved."""

    entry: CatalogEntry | None
    #: The candidate string that matched.
    matched: str = ""
    #: Provider whose entry was used (may be a fallback of the call's provider).
    provider: str = ""
    #: True when a related provider's price was used.
    via_fallback: bool = False


class Resolver:
    """Cached (provider, model) -> :class:`Resolution` over a catalog and overrides."""

    def __init__(self, catalog: Catalog, aliases: dict[tuple[str, str], tuple[str, str]] | None = None,
                 cache_size: int = 8192):
        self.catalog = catalog
        #: (provider, alias) -> (provider, model); from overrides (Azure deployments, fine-tunes).
        self.aliases = dict(aliases or {})
        self._cached = lru_cache(maxsize=cache_size)(self._resolve)

    def resolve(self, provider: str, model: str) -> Resolution:
        return self._cached(provider, model)

    def clear_cache(self) -> None:
        self._cached.cache_clear()

    def _resolve(self, provider: str, model: str) -> Resolution:
        provider = normalize_provider(provider)
        if not model:
            return Resolution(None)
        seen_alias: set[tuple[str, str]] = set()
        while (provider, model) in self.aliases and (provider, model) not in seen_alias:
            seen_alias.add((provider, model))
            provider, model = self.aliases[(provider, model)]
        candidates = list(model_candidates(model))
        for cand in candidates:
            alias = self.aliases.get((provider, cand))
            if alias and alias not in seen_alias:
                return self._resolve(*alias)
        chain = (provider, *PROVIDER_FALLBACKS.get(provider, ()))
        for i, prov in enumerate(chain):
            for cand in candidates:
                entry = self.catalog.lookup(prov, cand)
                if entry is not None:
                    return Resolution(entry, cand, prov, via_fallback=i > 0)
        return Resolution(None)


def _read_packaged(name: str) -> bytes:
    return resources.files("inferops.processors").joinpath("data", name).read_bytes()


@lru_cache(maxsize=1)
def builtin_catalog() -> Catalog:
    """The catalog shipped in the package (parsed once per process)."""
    return Catalog(json.loads(_read_packaged("catalog.json")), origin="built-in")


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog at ``path`` (from ``inferops prices update``), or the built-in one."""
    if not path:
        return builtin_catalog()
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: catalog file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: cannot read catalog: {exc}") from None
    return Catalog(doc, origin=str(p))
