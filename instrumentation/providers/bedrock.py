"""Bedrock runtime over httpx: Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream (e.g. ``anthropic.AnthropicBedrock``).

Counting: Converse ``usage.inputTokens`` is taken to **exclude** cache reads and
writes (as the Anthropic usage underneath; AWS's API reference is silent, the
prompt-caching guide's examples show a small ``inputTokens`` beside large
``cacheReadInputTokens``), so the whole input is ``inputTokens +
cacheReadInputTokens + cacheWriteInputTokens``; ``cacheDetails`` splits the
writes by TTL (5m/1h). InvokeModel bodies are per model family: Anthropic
Messages bodies use the Anthropic rules; for other families the
``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` headers (and the
``amazon-bedrock-invocationMetrics`` of the last stream chunk) are the usage.
Streams use the binary AWS event-stream encoding.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Mapping
from urllib.parse import unquote

from inferops.names import Operation, ServiceTier
from inferops.processors.usage import UsageRecord

from ._json import loads as json_loads
from . import anthropic as _anthropic
from ._common import (EventStreamDecoder, TextSink, as_dict, as_int, as_list, as_str, error_response, has_int,
                      header, loads, set_request_params)
from .base import Endpoint, ParsedResponse, RequestInfo

_PATH_RE = re.compile(r"/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")


def converse_usage(provider: str, model: str, usage: Any, self_hosted: bool = False) -> UsageRecord | None:
    if not isinstance(usage, dict) or not (has_int(usage.get("inputTokens")) or has_int(usage.get("outputTokens"))):
        return None
    read = as_int(usage.get("cacheReadInputTokens")) or as_int(usage.get("cacheReadInputTokenCount"))
    write = as_int(usage.get("cacheWriteInputTokens")) or as_int(usage.get("cacheWriteInputTokenCount"))
    w1 = sum(as_int(d.get("inputTokens")) for d in as_list(usage.get("cacheDetails"))
             if isinstance(d, dict) and d.get("ttl") == "1h")
    w1 = min(w1, write)
    return UsageRecord(
        provider=provider, model=model, operation=Operation.CHAT,
        input_tokens=as_int(usage.get("inputTokens")) + read + write,
        output_tokens=as_int(usage.get("outputTokens")),
        cache_read_tokens=read, cache_write_5m_tokens=write - w1, cache_write_1h_tokens=w1,
        service_tier=ServiceTier.STANDARD, self_hosted=self_hosted,
    )


def _header_usage(info: RequestInfo, headers: Mapping[str, str]) -> UsageRecord | None:
    inp = header(headers, "x-amzn-bedrock-input-token-count")
    out = header(headers, "x-amzn-bedrock-output-token-count")
    if not (inp.strip().isdigit() or out.strip().isdigit()):
        return None
    usage = {"inputTokens": int(inp) if inp.strip().isdigit() else 0,
             "outputTokens": int(out) if out.strip().isdigit() else 0}
    read = header(headers, "x-amzn-bedrock-cache-read-input-token-count")
    write = header(headers, "x-amzn-bedrock-cache-write-input-token-count")
    if read.strip().isdigit():
        usage["cacheReadInputTokens"] = int(read)
    if write.strip().isdigit():
        usage["cacheWriteInputTokens"] = int(write)
    rec = converse_usage(info.provider, info.request_model, usage, info.self_hosted)
    if rec is not None:
        rec.operation = info.operation
    return rec


def _is_anthropic(model: str, body: Any) -> bool:
    if isinstance(body, dict) and isinstance(body.get("anthropic_version"), str):
        return True
    return "anthropic." in model or model.startswith("anthropic")


def _generic_text(obj: dict, text: TextSink) -> str:
    """Text and stop reason of a non-Anthropic InvokeModel body (Llama, Titan, Mistral, Nova...)."""
    stop = ""
    for key in ("generation", "outputText", "completion"):
        if isinstance(obj.get(key), str):
            text.add(obj[key])
    for r in as_list(obj.get("results")) + as_list(obj.get("outputs")) + as_list(obj.get("generations")):
        if isinstance(r, dict):
            text.add(r.get("outputText") or r.get("text"))
            stop = stop or as_str(r.get("completionReason") or r.get("stop_reason") or r.get("finish_reason"))
    msg = as_dict(as_dict(obj.get("output")).get("message"))
    for part in as_list(msg.get("content")):
        if isinstance(part, dict):
            text.add(part.get("text"))
    return stop or as_str(obj.get("stop_reason") or obj.get("stopReason") or obj.get("completionReason"))


def _generic_usage(info: RequestInfo, obj: dict) -> UsageRecord | None:
    if isinstance(obj.get("usage"), dict):  # Nova invoke shape
        rec = converse_usage(info.provider, info.request_model, obj["usage"], info.self_hosted)
        if rec is not None:
            rec.operation = info.operation
            return rec
    inp = obj.get("prompt_token_count", obj.get("inputTextTokenCount"))
    out = obj.get("generation_token_count")
    if out is None:
        results = [r for r in as_list(obj.get("results")) if isinstance(r, dict)]
        if results:
            out = sum(as_int(r.get("tokenCount")) for r in results)
    if not (has_int(inp) or has_int(out)):
        return None
    return UsageRecord(provider=info.provider, model=info.request_model, operation=info.operation,
                       input_tokens=as_int(inp), output_tokens=as_int(out), self_hosted=info.self_hosted)


class _BedrockStreamParser:
    """Event-stream decoder folding either Converse events or InvokeModel chunks."""

    def __init__(self, info: RequestInfo) -> None:
        self.info = info
        self.converse = info.kind == "converse-stream"
        self.anthropic = _anthropic.AnthropicStreamState(info) if info.kind == "invoke-anthropic" else None
        self._dec = EventStreamDecoder(self._on_message)
        self.text = TextSink()
        self.content = False
        self.usage: Any = None
        self.metrics: dict | None = None
        self.stop = ""
        self.error_type = ""
        self.events = 0

    def _on_message(self, headers: dict[str, str], payload: bytes) -> None:
        self.events += 1
        if headers.get(":message-type") in ("exception", "error"):
            self.error_type = (headers.get(":exception-type") or headers.get(":error-code") or "error")[:64]
            return
        try:
            obj = json_loads(payload) if payload else {}
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(obj, dict):
            return
        etype = headers.get(":event-type", "")
        if self.converse:
            if etype == "contentBlockDelta":
                delta = as_dict(obj.get("delta"))
                if isinstance(delta.get("text"), str):
                    self.text.add(delta["text"])
                    self.content = self.content or bool(delta["text"])
                elif delta:
                    self.content = True
            elif etype == "messageStop":
                self.stop = as_str(obj.get("stopReason"))
            elif etype == "metadata":
                self.usage = obj.get("usage")
            return
        if etype != "chunk":
            return
        raw = obj.get("bytes")
        if not isinstance(raw, str):
            return
        try:
            inner = json_loads(base64.b64decode(raw, validate=False))
        except (ValueError, UnicodeDecodeError, TypeError):
            return
        if self.anthropic is not None:
            self.anthropic.on_event(inner)
            return
        if isinstance(inner, dict):
            before = self.text.size
            stop = _generic_text(inner, self.text)
            if self.text.size > before:
                self.content = True
            if stop:
                self.stop = stop
            m = inner.get("amazon-bedrock-invocationMetrics")
            if isinstance(m, dict):
                self.metrics = m

    def feed(self, data: bytes) -> bytes:
        self._dec.feed(data)
        return data

    def flush(self) -> bytes:
        return b""

    def first_content_seen(self) -> bool:
        return self.anthropic.content if self.anthropic is not None else self.content

    def finish(self) -> ParsedResponse:
        try:
            return self._finish()
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")

    def _finish(self) -> ParsedResponse:
        info = self.info
        broken = self._dec.broken or ("" if self.events else "no events")
        if self.anthropic is not None:
            out = self.anthropic.summary(broken)
            out.error_type = out.error_type or self.error_type
            return out
        out = ParsedResponse(output_text=self.text.text(), finish_reasons=[self.stop] if self.stop else [],
                             error_type=self.error_type)
        if self.converse:
            out.usage = converse_usage(info.provider, info.request_model, self.usage, info.self_hosted)
        elif self.metrics is not None:
            out.usage = converse_usage(info.provider, info.request_model, {
                "inputTokens": as_int(self.metrics.get("inputTokenCount")),
                "outputTokens": as_int(self.metrics.get("outputTokenCount")),
                "cacheReadInputTokens": as_int(self.metrics.get("cacheReadInputTokenCount")),
                "cacheWriteInputTokens": as_int(self.metrics.get("cacheWriteInputTokenCount"))}, info.self_hosted)
            if out.usage is not None:
                out.usage.operation = info.operation
        if out.usage is None:
            out.parse_error = broken or "no usage in stream"
        return out


class BedrockAdapter:
    """``/model/{modelId}/{converse,converse-stream,invoke,invoke-with-response-stream}``."""

    def __init__(self, provider: str = "aws.bedrock", *, self_hosted: bool = False) -> None:
        self.provider = provider
        self.self_hosted = self_hosted

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST":
            return None
        m = _PATH_RE.search(endpoint.path)
        if m is None:
            return None
        model = unquote(m.group(1))[:512]
        op = m.group(2)
        stream = op in ("converse-stream", "invoke-with-response-stream")
        obj, _ = loads(body)
        if op.startswith("converse"):
            b = obj if isinstance(obj, dict) else {}
            info = RequestInfo(provider=self.provider, operation=Operation.CHAT, request_model=model, stream=stream,
                               self_hosted=self.self_hosted, server_address=endpoint.host,
                               server_port=endpoint.port, body=obj if isinstance(obj, dict) else None, kind=op)
            cfg = as_dict(b.get("inferenceConfig"))
            set_request_params(info, cfg, "maxTokens")
            return info
        if _is_anthropic(model, obj):
            info = _anthropic.request_info(self.provider, endpoint, body, model=model, stream=stream,
                                           kind="invoke-anthropic")
            info.self_hosted = self.self_hosted
            return info
        operation = Operation.EMBEDDINGS if "embed" in model.lower() else Operation.CHAT
        return RequestInfo(provider=self.provider, operation=operation, request_model=model, stream=stream,
                           self_hosted=self.self_hosted, server_address=endpoint.host, server_port=endpoint.port,
                           body=obj if isinstance(obj, dict) else None, kind="invoke")

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        try:
            return self._parse_response(info, status, headers, body)
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")

    def _parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                        body: bytes) -> ParsedResponse:
        if status >= 400:
            obj, _ = loads(body)
            kind = header(headers, "x-amzn-errortype").split(":", 1)[0]
            out = error_response(status, obj, kind or "http_error")
            if kind:
                out.error_type = kind[:64]
            return out
        if info.kind == "invoke-anthropic":
            out = _anthropic.parse_message_response(info, status, body)
            if out.usage is None:
                out.usage = _header_usage(info, headers)
                if out.usage is not None:
                    out.parse_error = ""
            return out
        obj, err = loads(body)
        if info.kind == "converse":
            if not isinstance(obj, dict):
                return ParsedResponse(parse_error=err or "not a json object")
            out = ParsedResponse()
            text = TextSink()
            for part in as_list(as_dict(as_dict(obj.get("output")).get("message")).get("content")):
                if isinstance(part, dict):
                    text.add(part.get("text"))
            out.output_text = text.text()
            if isinstance(obj.get("stopReason"), str):
                out.finish_reasons.append(obj["stopReason"][:64])
            out.usage = converse_usage(info.provider, info.request_model, obj.get("usage"), info.self_hosted)
            if out.usage is None:
                out.parse_error = "no usage"
            return out
        # InvokeModel, other families: body text, headers (authoritative) then body counts.
        out = ParsedResponse()
        if isinstance(obj, dict):
            text = TextSink()
            stop = _generic_text(obj, text)
            out.output_text = text.text()
            if stop:
                out.finish_reasons.append(stop[:64])
        out.usage = _header_usage(info, headers)
        if out.usage is None and isinstance(obj, dict):
            out.usage = _generic_usage(info, obj)
        if out.usage is None:
            out.parse_error = err or "no usage"
        return out

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> _BedrockStreamParser:
        return _BedrockStreamParser(info)
