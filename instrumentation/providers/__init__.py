"""Provider adapters and the router that picks one for an outgoing request.

:class:`AdapterRouter` is consulted for *every* request the instrumented
httpx/httpx2 clients send, so its first step is one dict lookup on the host:
hosts already classified (LLM or not) cost nothing more. Unseen hosts are
classified once (exact well-known hosts, Azure/Bedrock/Vertex host patterns,
configured ``provider_endpoints`` and ``self_hosted`` base URLs) and cached.

Configured base URLs (``provider_endpoints``: base_url=provider;
``self_hosted``: base_url=name) match by prefix on scheme, host, port and path
and take precedence over the well-known hosts. Self-hosted servers speak the
OpenAI format, except Ollama's native ``/api/chat`` and ``/api/generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from inferops.names import Provider

from .anthropic import AnthropicAdapter
from .base import Adapter, Endpoint, ParsedResponse, RequestInfo, StreamParser
from .bedrock import BedrockAdapter
from .cohere import CohereAdapter
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai import AzureOpenAIAdapter, OpenAIAdapter

if TYPE_CHECKING:  # pragma: no cover
    from inferops.settings import Settings

__all__ = [
    "Adapter", "AdapterRouter", "AnthropicAdapter", "AzureOpenAIAdapter", "BedrockAdapter", "CohereAdapter",
    "Endpoint", "GeminiAdapter", "OllamaAdapter", "OpenAIAdapter", "ParsedResponse", "RequestInfo",
    "StreamParser", "WELL_KNOWN_HOSTS",
]

#: Exact provider hosts -> provider name.
WELL_KNOWN_HOSTS: dict[str, str] = {
    "api.openai.com": Provider.OPENAI,
    "api.anthropic.com": Provider.ANTHROPIC,
    "generativelanguage.googleapis.com": Provider.GEMINI,
    "aiplatform.googleapis.com": Provider.VERTEX_AI,
    "api.mistral.ai": Provider.MISTRAL,
    "api.cohere.com": Provider.COHERE,
    "api.cohere.ai": Provider.COHERE,
    "api.groq.com": Provider.GROQ,
    "api.together.xyz": Provider.TOGETHER,
    "api.together.ai": Provider.TOGETHER,
    "api.deepseek.com": Provider.DEEPSEEK,
    "api.x.ai": Provider.XAI,
    "api.fireworks.ai": Provider.FIREWORKS,
    "openrouter.ai": Provider.OPENROUTER,
    "api.perplexity.ai": Provider.PERPLEXITY,
}

#: Host cache bound: beyond it, new hosts are classified each time instead of cached.
_HOST_CACHE_MAX = 4096
_DEFAULT_PORT = {"http": 80, "https": 443}


def _pattern_provider(host: str) -> str:
    """Provider of hosts known by pattern ("" when none)."""
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")):
        return Provider.AZURE_OPENAI
    if host.startswith("bedrock-runtime") and host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return Provider.BEDROCK
    if host.endswith("-aiplatform.googleapis.com") or (
            host.startswith("aiplatform.") and host.endswith(".rep.googleapis.com")):
        return Provider.VERTEX_AI
    return ""


class _Prefix:
    """A configured base URL: scheme, host, port and path prefix -> adapter factory."""

    __slots__ = ("scheme", "port", "path", "make")

    def __init__(self, scheme: str, port: int, path: str, make: Callable[[str], "Adapter"]) -> None:
        self.scheme = scheme
        self.port = port
        self.path = path.rstrip("/")
        self.make = make

    def matches(self, scheme: str, port: int, path: str) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        p = self.path
        return not p or path == p or path.startswith(p + "/")


class AdapterRouter:
    """Choose the adapter for a request URL; ``None`` for anything that is not an LLM API."""

    def __init__(self, settings: "Settings") -> None:
        inject = bool(getattr(settings, "stream_usage_injection", True))
        off = tuple(getattr(settings, "stream_usage_injection_disabled_hosts", ()) or ())
        self._openai_kw = {"inject_stream_usage": inject, "injection_disabled_hosts": off}
        self._by_provider: dict[str, Adapter] = {}
        # host -> (list of configured prefixes, well-known provider or "") ; None = not an LLM host.
        self._hosts: dict[str, tuple[list[_Prefix], str] | None] = {}
        #: (host, scheme, port, path) -> the adapter of the configured prefix it matched (bounded like _hosts).
        self._routed: dict[tuple, Adapter] = {}
        self._configured: dict[str, list[_Prefix]] = {}
        self._self_hosted: dict[str, Adapter] = {}
        for url, provider in (getattr(settings, "provider_endpoints", None) or {}).items():
            self._add_prefix(url, lambda path, p=provider: self.adapter_for(p))
        for url, name in (getattr(settings, "self_hosted", None) or {}).items():
            self._add_prefix(url, lambda path, n=name: self._self_hosted_adapter(n, path))
        for prefixes in self._configured.values():  # longest path first
            prefixes.sort(key=lambda p: len(p.path), reverse=True)

    # -- construction -------------------------------------------------------------------------

    def _add_prefix(self, url: str, make: Callable[[str], "Adapter"]) -> None:
        try:
            parts = urlsplit(url.strip())
            scheme = (parts.scheme or "https").lower()
            host = (parts.hostname or "").lower()
            port = parts.port or _DEFAULT_PORT.get(scheme, 0)
        except ValueError:
            return
        if not host:
            return
        self._configured.setdefault(host, []).append(_Prefix(scheme, port, parts.path, make))

    def adapter_for(self, provider: str) -> "Adapter":
        """The (shared) adapter for a provider name; unknown names speak the OpenAI format."""
        adapter = self._by_provider.get(provider)
        if adapter is None:
            if provider == Provider.ANTHROPIC:
                adapter = AnthropicAdapter(provider)
            elif provider in (Provider.GEMINI, Provider.VERTEX_AI):
                adapter = GeminiAdapter(provider)
            elif provider == Provider.BEDROCK:
                adapter = BedrockAdapter(provider)
            elif provider == Provider.COHERE:
                adapter = CohereAdapter(provider)
            elif provider == Provider.AZURE_OPENAI:
                adapter = AzureOpenAIAdapter(provider, **self._openai_kw)
            elif provider == "ollama":
                adapter = _OllamaAny(provider, self_hosted=False, openai_kw=self._openai_kw)
            else:
                adapter = OpenAIAdapter(provider, **self._openai_kw)
            self._by_provider[provider] = adapter
        return adapter

    def _self_hosted_adapter(self, name: str, path: str) -> "Adapter":
        adapter = self._self_hosted.get(name)
        if adapter is None:
            adapter = _OllamaAny(name, self_hosted=True, openai_kw=self._openai_kw)
            self._self_hosted[name] = adapter
        return adapter

    # -- routing ------------------------------------------------------------------------------

    def _classify(self, host: str) -> tuple[list[_Prefix], str] | None:
        prefixes = self._configured.get(host, [])
        provider = WELL_KNOWN_HOSTS.get(host) or _pattern_provider(host)
        entry = (prefixes, provider) if (prefixes or provider) else None
        if len(self._hosts) < _HOST_CACHE_MAX:
            self._hosts[host] = entry
        return entry

    def route(self, scheme: str, host: str, port: int | None, path: str) -> "Adapter | None":
        """The adapter for ``scheme://host:port/path``; one dict lookup for non-LLM hosts."""
        try:
            entry = self._hosts[host]
        except KeyError:
            if not host:
                return None
            lowered = host.lower() if isinstance(host, str) else ""
            entry = self._classify(lowered)
            if lowered != host and len(self._hosts) < _HOST_CACHE_MAX:
                self._hosts[host] = entry
        except TypeError:
            return None
        if entry is None:
            return None
        prefixes, provider = entry
        if prefixes:
            # A configured base URL (a gateway, a self-hosted server): its answer per URL is remembered,
            # since the same few URLs come back on every call (the adapters are shared objects).
            key = (host, scheme, port, path)
            routed = self._routed.get(key)
            if routed is not None:
                return routed
            scheme = (scheme or "").lower()
            p = port or _DEFAULT_PORT.get(scheme, 0)
            for pref in prefixes:
                if pref.matches(scheme, p, path or "/"):
                    routed = pref.make(path)
                    if len(self._routed) >= _HOST_CACHE_MAX:
                        self._routed.clear()
                    self._routed[key] = routed
                    return routed
        if provider:
            return self.adapter_for(provider)
        return None


class _OllamaAny:
    """Ollama-style server: native ``/api/chat``/``/api/generate`` or OpenAI ``/v1``, one provider name."""

    def __init__(self, provider: str, *, self_hosted: bool, openai_kw: dict) -> None:
        self.provider = provider
        self.self_hosted = self_hosted
        self.native = OllamaAdapter(provider, self_hosted=self_hosted)
        self.compat = OpenAIAdapter(provider, self_hosted=self_hosted, **openai_kw)

    def _pick(self, kind_or_path: str):
        return self.native if kind_or_path.startswith("ollama-") else self.compat

    def parse_request(self, method, endpoint, headers, body):
        p = endpoint.path.rstrip("/")
        if p.endswith(("/api/chat", "/api/generate")):
            return self.native.parse_request(method, endpoint, headers, body)
        return self.compat.parse_request(method, endpoint, headers, body)

    def parse_response(self, info, status, headers, body):
        return self._pick(info.kind).parse_response(info, status, headers, body)

    def stream_parser(self, info, headers):
        return self._pick(info.kind).stream_parser(info, headers)
