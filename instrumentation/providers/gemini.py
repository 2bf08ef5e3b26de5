"""Gemini ``generateContent`` / ``streamGenerateContent`` on Google AI (gcp.gemini) and
Vertex AI (gcp.vertex_ai), plus Anthropic models on Vertex (``publishers/anthropic``).

Counting (FACTS.md): ``promptTokenCount`` includes ``cachedContentTokenCount``;
``toolUsePromptTokenCount`` is further input; ``thoughtsTokenCount`` is billed
as output but *not* inside ``candidatesTokenCount``, so output = candidates +
thoughts and reasoning = thoughts. Streams carry ``usageMetadata`` on every
chunk (running totals): the last one wins. ``alt=sse`` streams are SSE (events
end with CRLF CRLF); without it the stream is one JSON array sent piecewise.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping
from urllib.parse import unquote

from inferops.names import Operation, ServiceTier
from inferops.processors.usage import UsageRecord

from ._json import loads as json_loads
from . import anthropic as _anthropic
from ._common import (JSONArrayStream, SSEStream, TextSink, as_dict, as_int, as_list, as_str, error_response,
                      has_int, header, loads, set_request_params)
from .base import Endpoint, ParsedResponse, RequestInfo
from .openai import OpenAIAdapter

_MODEL_RE = re.compile(r"models/([^/:]+):(generateContent|streamGenerateContent)$")


def gemini_usage(provider: str, model: str, meta: Any, self_hosted: bool = False) -> UsageRecord | None:
    if not isinstance(meta, dict) or not any(
            has_int(meta.get(k)) for k in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")):
        return None
    prompt = as_int(meta.get("promptTokenCount")) + as_int(meta.get("toolUsePromptTokenCount"))
    thoughts = as_int(meta.get("thoughtsTokenCount"))
    return UsageRecord(
        provider=provider, model=model, operation=Operation.GENERATE_CONTENT,
        input_tokens=prompt, output_tokens=as_int(meta.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=as_int(meta.get("cachedContentTokenCount")), reasoning_tokens=thoughts,
        audio_input_tokens=_modality(meta.get("promptTokensDetails"), "AUDIO"),
        service_tier=ServiceTier.STANDARD, self_hosted=self_hosted,
    )


def _modality(details: Any, modality: str) -> int:
    return sum(as_int(d.get("tokenCount")) for d in as_list(details)
               if isinstance(d, dict) and d.get("modality") == modality)


class _GeminiFold:
    """Folds response chunks (dicts) into one summary."""

    def __init__(self) -> None:
        self.meta: Any = None
        self.model = ""
        self.id = ""
        self.finish: dict[int, str] = {}
        self.text = TextSink()
        self.content = False
        self.chunks = 0
        self.error_type = ""

    def on_chunk(self, obj: Any) -> None:
        if isinstance(obj, list):  # a whole array (non-streamed body that is a list)
            for o in obj:
                self.on_chunk(o)
            return
        if not isinstance(obj, dict):
            return
        self.chunks += 1
        if isinstance(obj.get("error"), dict):
            self.error_type = as_str(obj["error"].get("status")) or "error"
        if isinstance(obj.get("usageMetadata"), dict):
            self.meta = obj["usageMetadata"]
        if isinstance(obj.get("modelVersion"), str):
            self.model = obj["modelVersion"][:256]
        if isinstance(obj.get("responseId"), str):
            self.id = obj["responseId"][:256]
        for i, cand in enumerate(as_list(obj.get("candidates"))):
            if not isinstance(cand, dict):
                continue
            idx = cand.get("index")
            fr = cand.get("finishReason")
            if isinstance(fr, str):
                self.finish[idx if type(idx) is int else i] = fr[:64]
            for part in as_list(as_dict(cand.get("content")).get("parts")):
                if not isinstance(part, dict):
                    continue
                t = part.get("text")
                if isinstance(t, str) and t:
                    self.content = True
                    if not part.get("thought"):
                        self.text.add(t)
                elif part.get("functionCall") or part.get("inlineData"):
                    self.content = True

    def summary(self, info: RequestInfo, broken: str = "") -> ParsedResponse:
        model = self.model or info.request_model
        out = ParsedResponse(response_model=self.model, response_id=self.id, output_text=self.text.text(),
                             finish_reasons=[self.finish[k] for k in sorted(self.finish)],
                             error_type=self.error_type)
        out.usage = gemini_usage(info.provider, model, self.meta, info.self_hosted)
        if out.usage is None:
            out.parse_error = broken or ("no chunks" if not self.chunks else "no usage")
        return out


class GeminiStreamParser:
    """SSE (``alt=sse``) or streamed JSON array, chosen from the response Content-Type."""

    def __init__(self, info: RequestInfo, headers: Mapping[str, str]) -> None:
        self.info = info
        self.fold = _GeminiFold()
        self._bad = 0
        ctype = header(headers, "content-type").lower()
        if "event-stream" in ctype or (not ctype and "alt=sse" in info.kind):
            self._sse: SSEStream | None = SSEStream(self._on_sse)
            self._arr: JSONArrayStream | None = None
        else:
            self._sse = None
            self._arr = JSONArrayStream(self._on_obj)

    def _on_sse(self, name: str, data: bytes) -> bool:
        self._on_obj(data)
        return False

    def _on_obj(self, raw: bytes) -> None:
        if not raw:
            return
        try:
            self.fold.on_chunk(json_loads(raw))
        except (ValueError, UnicodeDecodeError):
            self._bad += 1

    def feed(self, data: bytes) -> bytes:
        if self._sse is not None:
            return self._sse.feed(data)
        self._arr.feed(data)  # type: ignore[union-attr]
        return data

    def flush(self) -> bytes:
        if self._sse is not None:
            return self._sse.flush()
        return b""

    def first_content_seen(self) -> bool:
        return self.fold.content

    def finish(self) -> ParsedResponse:
        try:
            dec = self._sse if self._sse is not None else self._arr
            broken = getattr(dec, "broken", "") or ("not json" if self._bad and not self.fold.chunks else "")
            return self.fold.summary(self.info, broken)
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")


class GeminiAdapter:
    """``models/{model}:generateContent`` and ``:streamGenerateContent`` (Google AI or Vertex AI).

    On Vertex AI, ``publishers/anthropic/models/{m}:rawPredict`` requests are
    Anthropic Messages bodies and are handed to the Anthropic parsing.
    """

    def __init__(self, provider: str = "gcp.gemini", *, self_hosted: bool = False) -> None:
        self.provider = provider
        self.self_hosted = self_hosted
        # Google AI's OpenAI-compatible endpoint (``/v1beta/openai/chat/completions``, ``/embeddings``):
        # OpenAI request and response shapes, billed as Gemini. No ``stream_options`` injection (not
        # documented there); a stream without usage is estimated with tiktoken like any other.
        self._compat = OpenAIAdapter(provider, self_hosted=self_hosted, inject_stream_usage=False)

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST":
            return None
        path = endpoint.path
        if "/openai/" in path:
            info = self._compat.parse_request(method, endpoint, headers, body)
            if info is not None:
                info.kind = "openai-compat:" + info.kind
            return info
        if "/publishers/anthropic/" in path:
            info = _anthropic.vertex_anthropic_request(self.provider, endpoint, body)
            if info is not None:
                info.self_hosted = self.self_hosted
            return info
        m = _MODEL_RE.search(path)
        if m is None:
            return None
        obj, _ = loads(body)
        b = obj if isinstance(obj, dict) else {}
        stream = m.group(2) == "streamGenerateContent"
        info = RequestInfo(
            provider=self.provider, operation=Operation.GENERATE_CONTENT,
            request_model=unquote(m.group(1))[:256], stream=stream, self_hosted=self.self_hosted,
            server_address=endpoint.host, server_port=endpoint.port,
            body=obj if isinstance(obj, dict) else None,
            kind="gemini" + (" alt=sse" if "alt=sse" in (endpoint.query or "") else ""),
        )
        gen = as_dict(b.get("generationConfig"))
        set_request_params(info, gen, "maxOutputTokens")
        return info

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        if info.kind.startswith("openai-compat:"):
            return self._compat.parse_response(_compat_info(info), status, headers, body)
        if info.kind == "anthropic":
            return _anthropic.parse_message_response(info, status, body)
        obj, err = loads(body)
        if status >= 400:
            if isinstance(obj, list) and obj:
                obj = obj[0]
            return error_response(status, obj, "http_error")
        if not isinstance(obj, (dict, list)):
            return ParsedResponse(parse_error=err or "not a json object")
        fold = _GeminiFold()
        fold.on_chunk(obj)
        return fold.summary(info)

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]):
        if info.kind.startswith("openai-compat:"):
            return self._compat.stream_parser(_compat_info(info), headers)
        if info.kind == "anthropic":
            return _anthropic.AnthropicSSEParser(info)
        return GeminiStreamParser(info, headers)


def _compat_info(info: RequestInfo) -> RequestInfo:
    """A copy of the request info as the OpenAI adapter made it (its own ``kind``), for its parsers."""
    return dataclasses.replace(info, kind=info.kind.split(":", 1)[1])
