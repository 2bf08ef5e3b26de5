"""OpenAI wire format: chat completions, Responses API, embeddings, legacy completions.

Also used, with another provider name, by Azure OpenAI, Mistral, the
OpenAI-compatible hosts (Groq, Together, DeepSeek, xAI, Fireworks, OpenRouter,
Perplexity) and self-hosted servers (vLLM, TGI, llama.cpp, Ollama ``/v1``).

Counting (FACTS.md, "Where providers report usage"): ``prompt_tokens``
includes ``prompt_tokens_details.cached_tokens``; ``completion_tokens``
includes ``completion_tokens_details.reasoning_tokens``. Two compatible
providers differ and are normalised here: DeepSeek reports cache hits as
``prompt_cache_hit_tokens`` (a part of ``prompt_tokens``); some servers (xAI)
report ``reasoning_tokens`` *outside* ``completion_tokens``, which shows as
``total_tokens == prompt + completion + reasoning``, and are then added in.
Groq streams put usage under ``x_groq.usage``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping
from urllib.parse import unquote

from inferops.names import GenAI, Operation, ServiceTier
from inferops.processors.usage import UsageRecord, provider_usage

from ._json import loads as json_loads
from ._common import (LazyText, LazyTextResponse, RequestKeys, SSEStream, as_dict, as_int, as_list, as_str,
                      error_response, has_int, loads, request_fields, tier)
from .base import Endpoint, ParsedResponse, RequestInfo, new_request_info

_CHAT = "chat"
_RESPONSES = "responses"
_EMBEDDINGS = "embeddings"
_COMPLETIONS = "completions"

_OPERATION = {
    _CHAT: Operation.CHAT,
    _RESPONSES: Operation.CHAT,
    _EMBEDDINGS: Operation.EMBEDDINGS,
    _COMPLETIONS: Operation.TEXT_COMPLETION,
}


def classify_path(path: str) -> str:
    """Which OpenAI operation a URL path is ("" when none inferops prices)."""
    p = path.rstrip("/")
    if p.endswith("/chat/completions"):
        return _CHAT
    if p.endswith("/responses"):
        return _RESPONSES
    if p.endswith("/embeddings"):
        return _EMBEDDINGS
    if p.endswith("/completions"):
        return _COMPLETIONS
    return ""


def openai_usage(provider: str, model: str, operation: str, usage: Any, service_tier: str,
                 self_hosted: bool) -> UsageRecord | None:
    """Normalise an OpenAI-shaped ``usage`` object (chat/completions/embeddings/responses)."""
    if not isinstance(usage, dict):
        return None
    if "input_tokens" in usage or "output_tokens" in usage:  # Responses API shape
        inp = as_int(usage.get("input_tokens"))
        out = as_int(usage.get("output_tokens"))
        idet = as_dict(usage.get("input_tokens_details"))
        odet = as_dict(usage.get("output_tokens_details"))
        cached = as_int(idet.get("cached_tokens"))
        write = as_int(idet.get("cache_write_tokens"))
        reasoning = as_int(odet.get("reasoning_tokens"))
        audio_in = audio_out = 0
    else:
        if not (has_int(usage.get("prompt_tokens")) or has_int(usage.get("completion_tokens"))
                or has_int(usage.get("total_tokens"))):
            return None
        inp = as_int(usage.get("prompt_tokens"))
        out = as_int(usage.get("completion_tokens"))
        pdet = as_dict(usage.get("prompt_tokens_details"))
        cdet = as_dict(usage.get("completion_tokens_details"))
        cached = as_int(pdet.get("cached_tokens")) or as_int(usage.get("prompt_cache_hit_tokens"))
        write = as_int(pdet.get("cache_write_tokens"))
        reasoning = as_int(cdet.get("reasoning_tokens")) or as_int(usage.get("reasoning_tokens"))
        audio_in = as_int(pdet.get("audio_tokens"))
        audio_out = as_int(cdet.get("audio_tokens"))
        total = usage.get("total_tokens")
        if reasoning and has_int(total) and as_int(total) == inp + out + reasoning and inp + out != as_int(total):
            out += reasoning  # reasoning reported outside completion_tokens (xAI)
        if not inp and not out and has_int(total) and operation == Operation.EMBEDDINGS:
            inp = as_int(total)
    return provider_usage(provider, model, operation, inp, out, cached, write, 0, reasoning, audio_in, audio_out,
                          service_tier or ServiceTier.STANDARD, self_hosted)


_INCLUDE_USAGE_MEMBER = b'"stream_options":{"include_usage":true}'


#: The request members the OpenAI adapters read (everything else in the body is prompt: not decoded).
_REQUEST_KEYS = RequestKeys("model", "stream", "stream_options", "user", "safety_identifier", "service_tier",
                            "max_completion_tokens", "max_tokens", "max_output_tokens", "temperature")


def _with_include_usage(body: bytes, fields: dict, opts: Any) -> bytes:
    """The request body with ``stream_options.include_usage: true``.

    Without ``stream_options`` in the body (the usual case) one member is added
    before the closing brace of the caller's own bytes: nothing else changes
    (formatting, escapes, key order) and the body is not re-encoded, which for a
    long prompt is most of the work in front of the request. Otherwise (options
    present, or a body that does not end in ``}``) the object is re-encoded.
    """
    if "stream_options" not in fields:
        end = len(body.rstrip(b" \t\r\n"))  # (the same object back when nothing is stripped: no copy)
        if end and body[end - 1] == 0x7D:  # "}"
            i = end - 2
            while i >= 0 and body[i] in b" \t\r\n":
                i -= 1
            empty = i >= 0 and body[i] == 0x7B  # "{}": no member to follow
            # One copy of the (prompt-sized) body, not three.
            view = memoryview(body)
            return b"".join((view[:end - 1], b"" if empty else b",", _INCLUDE_USAGE_MEMBER, view[end - 1:]))
    obj, _ = loads(body)
    new = dict(obj) if isinstance(obj, dict) else dict(fields)
    new["stream_options"] = {**(opts or {}), "include_usage": True}
    return json.dumps(new, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class OpenAIAdapter:
    """OpenAI (and compatible) HTTP API adapter."""

    #: Providers that always stream usage (or reject ``stream_options``): never inject.
    NO_INJECTION = frozenset({"mistral_ai", "perplexity"})

    def __init__(self, provider: str = "openai", *, self_hosted: bool = False, inject_stream_usage: bool = True,
                 injection_disabled_hosts: tuple[str, ...] = ()) -> None:
        self.provider = provider
        self.self_hosted = self_hosted
        self.inject = inject_stream_usage and provider not in self.NO_INJECTION
        self.injection_disabled_hosts = frozenset(h.lower() for h in injection_disabled_hosts)

    # -- request -----------------------------------------------------------------------------

    def _request_model(self, endpoint: Endpoint, body: dict) -> str:
        return as_str(body.get("model"))

    def _may_inject(self, endpoint: Endpoint) -> bool:
        if not self.inject:
            return False
        if self.injection_disabled_hosts:
            host = (endpoint.host or "").lower()
            if host in self.injection_disabled_hosts or f"{host}:{endpoint.port}" in self.injection_disabled_hosts:
                return False
        return True

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST":
            return None
        kind = classify_path(endpoint.path)
        if not kind:
            return None
        b = request_fields(body, _REQUEST_KEYS)
        stream = b.get("stream") is True
        info = new_request_info(self.provider, _OPERATION[kind], self._request_model(endpoint, b), stream,
                                self.self_hosted, as_str(b.get("user")) or as_str(b.get("safety_identifier")),
                                tier(b.get("service_tier")) or ServiceTier.STANDARD, endpoint.host, endpoint.port,
                                body or None)
        attrs = info.attributes
        mt = b.get("max_completion_tokens", b.get("max_tokens", b.get("max_output_tokens")))
        if has_int(mt):
            attrs[GenAI.REQUEST_MAX_TOKENS] = as_int(mt)
        if isinstance(b.get("temperature"), (int, float)) and not isinstance(b.get("temperature"), bool):
            attrs[GenAI.REQUEST_TEMPERATURE] = float(b["temperature"])
        if isinstance(b.get("service_tier"), str):
            attrs[GenAI.REQUEST_SERVICE_TIER] = b["service_tier"][:32]
        info.kind = kind
        if stream and kind in (_CHAT, _COMPLETIONS) and self._may_inject(endpoint):
            opts = b.get("stream_options")
            if opts is None or (isinstance(opts, dict) and "include_usage" not in opts):
                info.new_body = _with_include_usage(body, b, opts)
                info.injected_stream_usage = True
        return info

    # -- response ----------------------------------------------------------------------------

    def _response_model(self, info: RequestInfo, obj: dict) -> str:
        return as_str(obj.get("model")) or info.request_model

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        obj, err = loads(body)
        if status >= 400:
            return error_response(status, obj, "http_error")
        if not isinstance(obj, dict):
            return ParsedResponse(parse_error=err or "not a json object")
        kind = info.kind or _kind_of_operation(info.operation)
        model = self._response_model(info, obj)
        resp_tier = tier(obj.get("service_tier")) or info.service_tier
        out = ParsedResponse(response_model=as_str(obj.get("model")), response_id=as_str(obj.get("id")))
        if kind == _RESPONSES:
            _responses_summary(obj, out)
        else:
            for choice in as_list(obj.get("choices")):
                if not isinstance(choice, dict):
                    continue
                fr = choice.get("finish_reason")
                if isinstance(fr, str):
                    out.finish_reasons.append(fr[:64])
                if kind == _COMPLETIONS:
                    t = choice.get("text")
                else:
                    t = as_dict(choice.get("message")).get("content")
                if isinstance(t, str):
                    out.output_text += t
        out.usage = openai_usage(info.provider, model, info.operation, obj.get("usage"), resp_tier,
                                 info.self_hosted)
        if out.usage is None:
            out.parse_error = "no usage"
        return out

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> "OpenAIStreamParser":
        return OpenAIStreamParser(self, info)


def _kind_of_operation(operation: str) -> str:
    return {Operation.EMBEDDINGS: _EMBEDDINGS, Operation.TEXT_COMPLETION: _COMPLETIONS}.get(operation, _CHAT)


def _responses_summary(obj: dict, out: ParsedResponse) -> None:
    """Fill text and finish reason from a Responses API ``response`` object."""
    status = as_str(obj.get("status"))
    incomplete = as_dict(obj.get("incomplete_details")).get("reason")
    if isinstance(incomplete, str):
        out.finish_reasons.append(incomplete[:64])
    elif status and status not in ("in_progress", "queued"):  # those are not an end (a stream cut early,
        out.finish_reasons.append(status[:64])                # a background response)
    if not out.output_text:
        for item in as_list(obj.get("output")):
            if isinstance(item, dict) and item.get("type") == "message":
                for part in as_list(item.get("content")):
                    if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                        out.output_text += part["text"]


#: The keys of a chat/completions chunk whose values matter beyond generated text, with their value
#: when it is null or a string without escapes (group 2 None: some other value).
_CHUNK_KEYS = re.compile(rb'"(usage|finish_reason|service_tier)"\s*:\s*(null|"([^"\\]*)")?')


def _plain_chunks(data: bytes, tier_form: bytes) -> bool:
    """True when a fragment of whole chat/completions chunks can only add generated text (fragment fast path).

    That is: every ``usage``, ``finish_reason`` and ``service_tier`` in it is
    null (or the tier already read, ``tier_form``), and there is no ``error``
    or ``[DONE]``. Counted with ``bytes.count`` (a regex search
    costs several times more per fragment). Keys inside generated text are
    escaped (``\\"usage\\"``), so they are never counted; compact JSON only
    (``"usage": null`` with a space just takes the slow path).
    """
    count = data.count
    if count(b'"usage"') != count(b'"usage":null'):
        return False
    if count(b'"finish_reason"') != count(b'"finish_reason":null'):
        return False
    tiers = count(b'"service_tier"')
    if tiers and tiers != count(b'"service_tier":null') + (count(tier_form) if tier_form else 0):
        return False
    # Groq's x_groq usage is a non-null "usage" (counted above); [DONE] can only be the last event.
    return b'"error"' not in data and not data.endswith(b"[DONE]\n\n")


def _plain_events_py(data: bytes, tier_form: bytes) -> int:
    """The events in a fragment of whole LF-terminated plain chunks (:func:`_plain_chunks`), else -1.

    The reference for the compiled ``_chunkscan.openai_plain``, used when that
    optional extension was not built.
    """
    if not data.endswith(b"\n\n") or b"\r" in data or not _plain_chunks(data, tier_form):
        return -1
    return data.count(b"\n\n")


try:
    from ._chunkscan import openai_plain as _plain_events
except ImportError:  # built without a C compiler: the same test in Python
    _plain_events = _plain_events_py


class OpenAIStreamParser:
    """SSE chat/completions/Responses stream; hides the injected usage-only chunk.

    Fast path: once the first content and the model were seen, a chat or
    completions chunk whose ``usage`` and ``finish_reason`` are null, with no
    ``error`` or ``x_groq``, can only add text: it is not JSON-decoded, its
    bytes go to a :class:`LazyText` decoded only if the text is read (content
    capture, or a stream without usage to estimate). Its ``service_tier`` is
    read from the bytes when it is a plain string, else the chunk is decoded.
    JSON key names are matched literally (no server escapes ASCII key names).

    Fragment fast path: in that same state, a fragment of whole events (the
    usual network read: one or a few chunks ending in a blank line, nothing
    held back) that :func:`_plain_chunks` accepts is handed to the
    :class:`LazyText` in one piece, without being split into events: a few
    ``bytes.count`` per fragment instead of a split, a call and a regex per chunk.
    """

    def __init__(self, adapter: OpenAIAdapter, info: RequestInfo) -> None:
        self.adapter = adapter
        self.info = info
        self.kind = info.kind or _kind_of_operation(info.operation)
        self.filtering = bool(info.injected_stream_usage)
        self._sse = SSEStream(self._on_event, filtering=self.filtering)
        self._text = LazyText(self._extract_text)
        self._fast = self.kind in (_CHAT, _COMPLETIONS)
        self._usage: Any = None
        self._model = ""
        self._id = ""
        self._tier = ""
        self._finish: dict[int, str] = {}
        self._content = False
        self._done = False
        self._events = 0
        self._bad = 0
        self._error_type = ""
        self._response: dict | None = None
        #: In the fast state: ``"service_tier":"<tier read>"`` for :func:`_plain_chunks` (else None).
        self._tier_form: bytes | None = None

    # Called per complete SSE event; True = drop it from the caller's bytes (filter mode).
    def _on_event(self, name: str, data: bytes) -> bool:
        if not data:
            return False
        if data == b"[DONE]":
            self._done = True
            return False
        self._events += 1
        if self._content and self._model and self._fast and self._text_only(data):
            self._text.add_raw(data)
            return False
        try:
            obj = json_loads(data)
        except (ValueError, UnicodeDecodeError):
            self._bad += 1
            return False
        if not isinstance(obj, dict):
            self._bad += 1
            return False
        if self.kind == _RESPONSES:
            self._on_responses_event(obj)
            return False
        if "error" in obj and isinstance(obj.get("error"), dict):
            self._error_type = as_str(obj["error"].get("type")) or as_str(obj["error"].get("code")) or "error"
            return False
        if not self._model:
            self._model = as_str(obj.get("model"))
            self._id = as_str(obj.get("id"))
        t = obj.get("service_tier")
        if isinstance(t, str):
            self._tier = t
        usage = obj.get("usage")
        if usage is None:
            usage = as_dict(obj.get("x_groq")).get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = obj.get("choices")
        if isinstance(choices, list):
            for ch in choices:
                if not isinstance(ch, dict):
                    continue
                fr = ch.get("finish_reason")
                if isinstance(fr, str):
                    idx = ch.get("index")
                    self._finish[idx if type(idx) is int else 0] = fr[:64]
                if self.kind == _COMPLETIONS:
                    text = ch.get("text")
                    if isinstance(text, str) and text:
                        self._content = True
                        self._text.add(text)
                    continue
                delta = ch.get("delta")
                if isinstance(delta, dict):
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        self._content = True
                        self._text.add(text)
                    elif delta.get("tool_calls") or delta.get("refusal") or delta.get("reasoning_content") \
                            or delta.get("reasoning"):
                        self._content = True
            # The usage-only chunk inferops asked for: choices == [] and a usage object.
            return self.filtering and not choices and isinstance(obj.get("usage"), dict)
        return False

    def _text_only(self, data: bytes) -> bool:
        """True when this chunk can only add generated text (see the class docstring); reads its tier."""
        if b'"error"' in data or b'"x_groq"' in data:
            return False
        tier_value = None
        for key, value, text in _CHUNK_KEYS.findall(data):  # value b"": neither null nor a plain string
            if key == b"service_tier":
                if not value:
                    return False
                if value != b"null":
                    tier_value = text
            elif value != b"null":
                return False
        if tier_value is not None:
            try:
                self._tier = tier_value.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True

    def _extract_text(self, data: bytes) -> list[str]:
        """The text pieces of one chat/completions chunk, as :meth:`_on_event` would add them."""
        obj = json_loads(data)
        out: list[str] = []
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if isinstance(choices, list):
            completions = self.kind == _COMPLETIONS
            for ch in choices:
                if not isinstance(ch, dict):
                    continue
                if completions:
                    text = ch.get("text")
                else:
                    delta = ch.get("delta")
                    text = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(text, str) and text:
                    out.append(text)
        return out

    def _on_responses_event(self, obj: dict) -> None:
        typ = as_str(obj.get("type"))
        if typ == "response.output_text.delta":
            d = obj.get("delta")
            if isinstance(d, str) and d:
                self._content = True
                self._text.add(d)
        elif typ.startswith("response.") and isinstance(obj.get("response"), dict):
            resp = obj["response"]
            self._response = resp
            if not self._model:
                self._model = as_str(resp.get("model"))
                self._id = as_str(resp.get("id"))
            if isinstance(resp.get("service_tier"), str):
                self._tier = resp["service_tier"]
            if isinstance(resp.get("usage"), dict):
                self._usage = resp["usage"]
            if typ == "response.failed":
                self._error_type = as_str(as_dict(resp.get("error")).get("code")) or "response_failed"
        elif typ in ("response.output_item.added", "response.function_call_arguments.delta",
                     "response.reasoning_summary_text.delta", "response.refusal.delta"):
            self._content = self._content or typ != "response.output_item.added"
        elif typ == "error":
            self._error_type = as_str(obj.get("code")) or "error"

    def absorb(self, data: bytes) -> bool:
        """Take in a fragment of whole text-only chunks (True), or do nothing (False). Never raises."""
        tier_form = self._tier_form
        if tier_form is None or not self._sse.idle:
            return False
        n = _plain_events(data, tier_form)
        if n < 0:
            return False
        self._events += n
        self._text.add_raw(data, fragment=True)
        return True

    def steady(self):
        """What the tee offers each chunk to first from now until the next chunk this parser is fed: a
        compiled absorber for this quiet stretch (no Python frame per chunk), the Python :meth:`absorb`
        without the extension, or None while not in the fragment fast path's state."""
        self._events += self._text.take_absorbed()
        if self._tier_form is None or not self._sse.idle:
            return None
        return self._text.absorber(0, self._tier_form) or self.absorb

    def feed(self, data: bytes) -> bytes:
        if self.absorb(data):
            return data
        try:
            out = self._sse.feed(data)
        except Exception:  # pragma: no cover - SSEStream is total; belt and braces
            return data if not self.filtering else self._sse.pending() + data
        if self._content and self._model and self._fast:
            self._tier_form = b'"service_tier":' + json.dumps(self._tier).encode() if self._tier else b""
        return out

    def flush(self) -> bytes:
        try:
            return self._sse.flush()
        except Exception:  # pragma: no cover
            return b""

    def first_content_seen(self) -> bool:
        return self._content

    def finish(self) -> ParsedResponse:
        try:
            self._events += self._text.take_absorbed()
            return self._finish_impl()
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")

    def _finish_impl(self) -> ParsedResponse:
        info = self.info
        model = self._model or info.request_model
        out = LazyTextResponse(self._text, response_model=self._model, response_id=self._id,
                               finish_reasons=[self._finish[k] for k in sorted(self._finish)],
                               error_type=self._error_type)
        if self.kind == _RESPONSES and self._response is not None:
            _responses_summary(self._response, out)
        out.usage = openai_usage(info.provider, model, info.operation, self._usage,
                                 tier(self._tier) or info.service_tier, info.self_hosted)
        if out.usage is None:
            if self._sse.broken:
                out.parse_error = self._sse.broken
            elif not self._events:
                out.parse_error = "no events"
            elif self._bad and self._bad == self._events:
                out.parse_error = "not json"
            else:
                out.parse_error = "no usage in stream"
        return out


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI: ``/openai/deployments/{deployment}/...``; the deployment is not the model.

    The request model is the body's ``model`` when given, else the deployment
    name (resolved through the price overrides' aliases); the priced model is
    the one the response names.
    """

    def __init__(self, provider: str = "azure.ai.openai", **kw: Any) -> None:
        super().__init__(provider, **kw)

    def _request_model(self, endpoint: Endpoint, body: dict) -> str:
        model = as_str(body.get("model"))
        if model:
            return model
        parts = endpoint.path.split("/")
        try:
            i = parts.index("deployments")
            return unquote(parts[i + 1])[:256]
        except (ValueError, IndexError):
            return ""
