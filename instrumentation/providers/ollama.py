"""Ollama's native API: ``/api/chat`` and ``/api/generate`` (streamed by default, NDJSON).

Usage is ``prompt_eval_count`` (input) and ``eval_count`` (output) on the
object with ``done: true`` (the last line of a stream). Ollama omits
``prompt_eval_count`` when the whole prompt came from its KV cache; that is
reported as 0 input tokens with a note, not as missing usage. Ollama's
OpenAI-compatible ``/v1`` endpoints use the OpenAI adapter.
"""

from __future__ import annotations

from typing import Any, Mapping

from inferops.names import Operation
from inferops.processors.usage import UsageRecord

from ._json import loads as json_loads
from ._common import LineStream, TextSink, as_dict, as_int, as_str, error_response, has_int, loads, set_request_params
from .base import Endpoint, ParsedResponse, RequestInfo


def ollama_usage(info: RequestInfo, obj: dict) -> UsageRecord | None:
    if obj.get("done") is not True or not (has_int(obj.get("eval_count")) or has_int(obj.get("prompt_eval_count"))):
        return None
    rec = UsageRecord(provider=info.provider, model=as_str(obj.get("model")) or info.request_model,
                      operation=info.operation, input_tokens=as_int(obj.get("prompt_eval_count")),
                      output_tokens=as_int(obj.get("eval_count")), self_hosted=info.self_hosted)
    if not has_int(obj.get("prompt_eval_count")):
        rec.notes.append("prompt_eval_count absent (prompt cached by ollama)")
    return rec


class _Fold:
    def __init__(self, info: RequestInfo) -> None:
        self.info = info
        self.text = TextSink()
        self.content = False
        self.final: dict | None = None
        self.model = ""
        self.objects = 0
        self.error_type = ""

    def on_obj(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        self.objects += 1
        if isinstance(obj.get("error"), str):
            self.error_type = "error"
        self.model = self.model or as_str(obj.get("model"))
        t = as_dict(obj.get("message")).get("content") if self.info.kind == "ollama-chat" else obj.get("response")
        if isinstance(t, str) and t:
            self.text.add(t)
            self.content = True
        elif as_dict(obj.get("message")).get("tool_calls") or as_dict(obj.get("message")).get("thinking"):
            self.content = True
        if obj.get("done") is True:
            self.final = obj

    def summary(self, broken: str = "") -> ParsedResponse:
        out = ParsedResponse(response_model=self.model, output_text=self.text.text(), error_type=self.error_type)
        if self.final is not None:
            dr = self.final.get("done_reason")
            if isinstance(dr, str):
                out.finish_reasons.append(dr[:64])
            out.usage = ollama_usage(self.info, self.final)
        if out.usage is None:
            out.parse_error = broken or ("not json" if not self.objects else "no usage")
        return out


class OllamaStreamParser:
    def __init__(self, info: RequestInfo) -> None:
        self.fold = _Fold(info)
        self._lines = LineStream(self._on_line)

    def _on_line(self, line: bytes) -> None:
        try:
            self.fold.on_obj(json_loads(line))
        except (ValueError, UnicodeDecodeError):
            pass

    def feed(self, data: bytes) -> bytes:
        self._lines.feed(data)
        return data

    def flush(self) -> bytes:
        self._lines.flush()
        return b""

    def first_content_seen(self) -> bool:
        return self.fold.content

    def finish(self) -> ParsedResponse:
        try:
            return self.fold.summary(self._lines.broken)
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")


class OllamaAdapter:
    def __init__(self, provider: str = "ollama", *, self_hosted: bool = True) -> None:
        self.provider = provider
        self.self_hosted = self_hosted

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST":
            return None
        path = endpoint.path.rstrip("/")
        if path.endswith("/api/chat"):
            kind, operation = "ollama-chat", Operation.CHAT
        elif path.endswith("/api/generate"):
            kind, operation = "ollama-generate", Operation.TEXT_COMPLETION
        else:
            return None
        obj, _ = loads(body)
        b = obj if isinstance(obj, dict) else {}
        info = RequestInfo(provider=self.provider, operation=operation, request_model=as_str(b.get("model")),
                           stream=b.get("stream", True) is not False, self_hosted=self.self_hosted,
                           server_address=endpoint.host, server_port=endpoint.port,
                           body=obj if isinstance(obj, dict) else None, kind=kind)
        opts = as_dict(b.get("options"))
        set_request_params(info, opts, "num_predict")
        return info

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        obj, err = loads(body)
        if status >= 400:
            return error_response(status, obj, "http_error")
        fold = _Fold(info)
        if isinstance(obj, dict):
            fold.on_obj(obj)
        elif err and body:
            # A streamed answer read whole (stream flag defaulted to true): fold its lines.
            for line in body.split(b"\n"):
                o, _ = loads(line)
                fold.on_obj(o)
        return fold.summary(err if not fold.objects else "")

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> OllamaStreamParser:
        return OllamaStreamParser(info)
