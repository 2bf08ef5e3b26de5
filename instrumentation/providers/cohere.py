"""Cohere v2: ``/v2/chat`` (plain and streamed) and ``/v2/embed``.

Billing is on ``billed_units`` (FACTS.md): ``usage.billed_units.input_tokens`` /
``output_tokens`` for chat, ``meta.billed_units.input_tokens`` for embed. The
``usage.tokens`` counts include the chat template and are *not* billed.
Streams end with a ``message-end`` event whose ``delta.usage`` has the same
shape. Stream lines are read with or without the SSE ``data:`` prefix (the v2
API sends SSE; older v1 streams were newline-delimited JSON).
"""

from __future__ import annotations

from typing import Any, Mapping

from inferops.names import Operation, ServiceTier
from inferops.processors.usage import UsageRecord

from ._json import loads as json_loads
from ._common import LineStream, TextSink, as_dict, as_int, as_list, as_str, error_response, has_int, loads, set_request_params
from .base import Endpoint, ParsedResponse, RequestInfo


def cohere_usage(info: RequestInfo, usage: Any) -> UsageRecord | None:
    """From ``usage`` (chat) or ``meta`` (embed): billed units, falling back to ``tokens``."""
    if not isinstance(usage, dict):
        return None
    billed = usage.get("billed_units")
    src = billed if isinstance(billed, dict) else as_dict(usage.get("tokens"))
    if not (has_int(src.get("input_tokens")) or has_int(src.get("output_tokens"))):
        return None
    rec = UsageRecord(provider=info.provider, model=info.request_model, operation=info.operation,
                      input_tokens=as_int(src.get("input_tokens")), output_tokens=as_int(src.get("output_tokens")),
                      service_tier=ServiceTier.STANDARD, self_hosted=info.self_hosted)
    if not isinstance(billed, dict):
        rec.notes.append("usage.tokens used: no billed_units")
    return rec


def _message_text(message: Any) -> str:
    return "".join(p["text"] for p in as_list(as_dict(message).get("content"))
                   if isinstance(p, dict) and isinstance(p.get("text"), str))


class CohereStreamParser:
    def __init__(self, info: RequestInfo) -> None:
        self.info = info
        self._lines = LineStream(self._on_line)
        self.text = TextSink()
        self.content = False
        self.usage: Any = None
        self.id = ""
        self.finish_reason = ""
        self.events = 0
        self.error_type = ""

    def _on_line(self, line: bytes) -> None:
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        elif line.startswith((b"event:", b"id:", b"retry:", b":")):
            return
        if not line or line == b"[DONE]":
            return
        try:
            obj = json_loads(line)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(obj, dict):
            return
        self.events += 1
        typ = obj.get("type")
        delta = as_dict(obj.get("delta"))
        if typ == "message-start":
            self.id = as_str(obj.get("id"))
        elif typ == "content-delta":
            content = as_dict(as_dict(delta.get("message")).get("content"))
            t = content.get("text")
            if isinstance(t, str) and t:
                self.text.add(t)
                self.content = True
            elif content.get("thinking"):
                # Reasoning models stream thinking first (cohere's ChatContentDeltaEventDeltaMessageContent has
                # ``thinking`` beside ``text``): the first chunk of the answer, as Anthropic's thinking_delta.
                self.content = True
        elif typ in ("tool-call-start", "tool-plan-delta", "tool-call-delta"):
            self.content = True
        elif typ == "message-end":
            self.usage = delta.get("usage")
            if isinstance(delta.get("finish_reason"), str):
                self.finish_reason = delta["finish_reason"][:64]
            err = delta.get("error")
            if isinstance(err, str) and err:
                self.error_type = "error"

    def feed(self, data: bytes) -> bytes:
        self._lines.feed(data)
        return data

    def flush(self) -> bytes:
        self._lines.flush()
        return b""

    def first_content_seen(self) -> bool:
        return self.content

    def finish(self) -> ParsedResponse:
        try:
            out = ParsedResponse(response_id=self.id, output_text=self.text.text(),
                                 finish_reasons=[self.finish_reason] if self.finish_reason else [], error_type=self.error_type)
            out.usage = cohere_usage(self.info, self.usage)
            if out.usage is None:
                out.parse_error = self._lines.broken or ("no events" if not self.events else "no usage in stream")
            return out
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")


class CohereAdapter:
    """Cohere v2 chat and embed (v1 ``/chat`` and rerank are not priced here)."""

    def __init__(self, provider: str = "cohere", *, self_hosted: bool = False) -> None:
        self.provider = provider
        self.self_hosted = self_hosted

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST":
            return None
        path = endpoint.path.rstrip("/")
        if path.endswith("/v2/chat"):
            operation = Operation.CHAT
        elif path.endswith("/v2/embed"):
            operation = Operation.EMBEDDINGS
        else:
            return None
        obj, _ = loads(body)
        b = obj if isinstance(obj, dict) else {}
        info = RequestInfo(provider=self.provider, operation=operation, request_model=as_str(b.get("model")),
                           stream=b.get("stream") is True, self_hosted=self.self_hosted,
                           server_address=endpoint.host, server_port=endpoint.port,
                           body=obj if isinstance(obj, dict) else None)
        set_request_params(info, b, "max_tokens")
        return info

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        obj, err = loads(body)
        if status >= 400:
            out = error_response(status, obj, "http_error")
            return out
        if not isinstance(obj, dict):
            return ParsedResponse(parse_error=err or "not a json object")
        out = ParsedResponse(response_id=as_str(obj.get("id")))
        if info.operation == Operation.EMBEDDINGS:
            out.usage = cohere_usage(info, obj.get("meta"))
        else:
            if isinstance(obj.get("finish_reason"), str):
                out.finish_reasons.append(obj["finish_reason"][:64])
            out.output_text = _message_text(obj.get("message"))
            out.usage = cohere_usage(info, obj.get("usage"))
        if out.usage is None:
            out.parse_error = "no usage"
        return out

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> CohereStreamParser:
        return CohereStreamParser(info)
