"""A local mock LLM provider server speaking the providers' real wire formats.

Used by the tests (real SDKs pointed at it with ``base_url``), by the
dashboards/alerts end-to-end tests and by ``inferops demo``. It is a real HTTP
server on 127.0.0.1 (threaded, HTTP/1.1 keep-alive, chunked streaming) so the
whole client stack (httpx/httpx2, gzip, SSE and AWS event-stream decoding)
runs as against the real provider.

Mounted APIs (``{base}`` is :attr:`MockProviderServer.base_url`)::

    {base}/openai/v1/{chat/completions,responses,completions,embeddings}   openai
    {base}/azure/openai/deployments/{d}/{chat/completions,...}            azure.ai.openai
    {base}/anthropic/v1/messages                                          anthropic
    {base}/gemini/{v1,v1beta}/models/{m}:{generateContent,streamGenerateContent}  gcp.gemini
    {base}/vertex/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent  gcp.vertex_ai
    {base}/vertex/v1beta1/publishers/google/models/{m}:generateContent  gcp.vertex_ai (express mode, API key)
    {base}/vertex/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict     gcp.vertex_ai
    {base}/bedrock/model/{id}/{converse,converse-stream,invoke,invoke-with-response-stream}  aws.bedrock
    {base}/mistral/v1/{chat/completions,embeddings}                       mistral_ai
    {base}/cohere/v2/{chat,embed}                                         cohere
    {base}/groq/openai/v1/...  {base}/deepseek/v1/...  (OpenAI-compatible)
    {base}/vllm/v1/...  {base}/ollama/{api/chat,api/generate,v1/...}      self-hosted

Usage is deterministic from the request so tests can assert exact figures:

* base input tokens = ``max(1, ceil(len(prompt text) / 4)) + 3``;
  the prompt text is every string found under the request's messages/input/contents/prompt.
* ``x-mock-cached-tokens: N`` adds N cache-read tokens, ``x-mock-cache-write-tokens: N``
  N cache-write (5 min) tokens, ``x-mock-cache-write-1h-tokens: N`` 1-hour ones.
  The logical input is base + read + write; each provider reports it its own way
  (OpenAI/Gemini include cached in the prompt count, Anthropic/Bedrock exclude it).
* visible output tokens = ``x-mock-output-tokens`` or ``min(max_tokens, 256)`` or 16;
  the text is that many words ``w0 w1 ...`` (one token each).
* reasoning tokens = ``x-mock-reasoning-tokens`` or 32 for reasoning models
  (o1/o3/o4/gpt-5*, gemini-2.5*, deepseek-reasoner), else 0; added to the output.
* streams send ``x-mock-chunks`` content chunks (default: one per word, at most 50).
* ``x-mock-status: 429`` (400, 401, 403, 404, 500, 503, 529...) answers the provider's
  documented error body; ``x-mock-stream-abort-after: N`` cuts a stream after its
  first N events (connection closed without the terminating chunk); ``x-mock-gzip-stream: 1``
  gzip-encodes a stream (when the client accepts gzip).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import re
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["MockProviderServer", "RecordedRequest", "DATED_MODELS", "encode_event_stream_message"]

#: Request model -> the dated model the provider reports back.
DATED_MODELS: dict[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
}

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5", "gemini-2.5", "gemini-3", "deepseek-reasoner")
_MAX_STREAM_CHUNKS = 50


def _dated(model: str) -> str:
    return DATED_MODELS.get(model, model)


def _is_reasoning(model: str) -> bool:
    return model.startswith(_REASONING_PREFIXES)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    #: Path including the query string, as sent.
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# ---------------------------------------------------------------------------
# Usage arithmetic (one place, so every provider reports the same logical call)
# ---------------------------------------------------------------------------


@dataclass
class _Plan:
    """What the mock 'generates' for one request."""

    model: str
    base_input: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    visible_output: int
    reasoning: int
    chunks: int
    words: list[str]

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total_input(self) -> int:
        return self.base_input + self.cache_read + self.cache_write

    @property
    def total_output(self) -> int:
        return self.visible_output + self.reasoning

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self) -> list[str]:
        """The output text split into ``chunks`` consecutive pieces (concatenation == text)."""
        words = self.words
        n = max(1, min(self.chunks, len(words)))
        out: list[str] = []
        per = len(words) / n
        for i in range(n):
            a, b = round(i * per), round((i + 1) * per)
            piece = " ".join(words[a:b])
            out.append(piece if i == 0 else " " + piece)
        return out


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    if depth > 20:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in ("role", "type", "model", "image_url", "cache_control"):
                continue
            _strings(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out, depth + 1)


def _int_header(headers: dict[str, str], name: str, default: int) -> int:
    try:
        return max(0, int(headers.get(name, "")))
    except ValueError:
        return default


def _plan(model: str, body: dict, headers: dict[str, str], *, messages: Any, max_tokens: Any) -> _Plan:
    texts: list[str] = []
    _strings(messages, texts)
    base_input = max(1, math.ceil(sum(len(t) for t in texts) / 4)) + 3
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        default_out = min(max_tokens, 256)
    else:
        default_out = 16
    visible = max(1, _int_header(headers, "x-mock-output-tokens", default_out))
    reasoning = _int_header(headers, "x-mock-reasoning-tokens", 32 if _is_reasoning(model) else 0)
    words = [f"w{i}" for i in range(visible)]
    chunks = _int_header(headers, "x-mock-chunks", min(visible, _MAX_STREAM_CHUNKS)) or 1
    return _Plan(
        model=model,
        base_input=base_input,
        cache_read=_int_header(headers, "x-mock-cached-tokens", 0),
        cache_write_5m=_int_header(headers, "x-mock-cache-write-tokens", 0),
        cache_write_1h=_int_header(headers, "x-mock-cache-write-1h-tokens", 0),
        visible_output=visible,
        reasoning=reasoning,
        chunks=chunks,
        words=words,
    )


def _rid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------------------
# AWS event-stream encoding (application/vnd.amazon.eventstream)
# ---------------------------------------------------------------------------


def _es_header(name: str, value: str) -> bytes:
    n = name.encode()
    v = value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v


def encode_event_stream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """Encode one AWS event-stream message (prelude, CRC32s, string headers, payload)."""
    hdr = b"".join(_es_header(k, v) for k, v in headers.items())
    total = 12 + len(hdr) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hdr))
    prelude_crc = struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + prelude_crc + hdr + payload
    return msg + struct.pack("!I", binascii.crc32(msg) & 0xFFFFFFFF)


def _es_event(event_type: str, payload: dict) -> bytes:
    return encode_event_stream_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def _es_exception(exception_type: str, message: str) -> bytes:
    return encode_event_stream_message(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"message": message}).encode(),
    )


# ---------------------------------------------------------------------------
# Responses: a non-streamed answer or a stream of byte events
# ---------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    #: When set, the response is streamed (chunked), one write per item.
    events: Iterable[bytes] | None = None


def _json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status=status, body=json.dumps(obj).encode(), headers=headers)


def _sse(data: Any, event: str | None = None, sep: str = "\n") -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{sep}" if event else ""
    return f"{head}data: {text}{sep}{sep}".encode()


# ---------------------------------------------------------------------------
# Error bodies, per provider (their documented shapes)
# ---------------------------------------------------------------------------

_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_request_error", "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", "server_error", "The server had an error while processing your request."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error", 503: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_BEDROCK_ERRORS = {
    400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
    408: "ModelTimeoutException", 429: "ThrottlingException", 500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def _error_reply(flavor: str, status: int) -> _Reply:
    hdrs = {"retry-after": "0"} if status in (429, 503, 529) else {}
    if flavor == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return _json_reply({"type": "error", "error": {"type": kind, "message": f"mock {kind}"},
                            "request_id": _rid("req_")}, status, {**hdrs, "request-id": _rid("req_")})
    if flavor == "google":
        st = _GOOGLE_STATUS.get(status, "UNKNOWN")
        return _json_reply({"error": {"code": status, "message": f"mock {st}", "status": st}}, status, hdrs)
    if flavor == "bedrock":
        kind = _BEDROCK_ERRORS.get(status, "InternalServerException")
        return _json_reply({"message": f"mock {kind}"}, status, {**hdrs, "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
    if flavor == "cohere":
        return _json_reply({"id": str(uuid.uuid4()), "message": f"mock error {status}"}, status, hdrs)
    if flavor == "mistral":
        return _json_reply({"object": "error", "message": f"mock error {status}", "type": "invalid_request_error" if status < 500 else "internal_error",
                            "param": None, "code": str(status)}, status, hdrs)
    if flavor == "ollama":
        return _json_reply({"error": f"mock error {status}"}, status, hdrs)
    typ, code, msg = _OPENAI_ERRORS.get(status, ("server_error", "server_error", "Error."))
    return _json_reply({"error": {"message": msg, "type": typ, "param": None, "code": code}}, status,
                       {**hdrs, "x-request-id": _rid("req_")})


# ---------------------------------------------------------------------------
# OpenAI wire format (also Azure, Mistral, Groq, DeepSeek, vLLM, Ollama /v1)
# ---------------------------------------------------------------------------


@dataclass
class _OpenAIFlavor:
    provider: str
    dated: bool = True
    #: Mistral sends usage on the last content chunk, always, without stream_options.
    mistral_stream: bool = False
    fingerprint: bool = True
    service_tier: bool = True


def _openai_usage(p: _Plan) -> dict:
    return {
        "prompt_tokens": p.total_input,
        "completion_tokens": p.total_output,
        "total_tokens": p.total_input + p.total_output,
        "prompt_tokens_details": {"cached_tokens": p.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": p.reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _openai_tier(body: dict) -> str:
    tier = body.get("service_tier")
    return tier if tier in ("flex", "priority", "scale") else "default"


def _openai_chat(fl: _OpenAIFlavor, body: dict, headers: dict[str, str], model: str) -> _Reply:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    p = _plan(model, body, headers, messages=body.get("messages"), max_tokens=max_tokens)
    resp_model = _dated(model) if fl.dated else model
    cid = _rid("chatcmpl-")
    created = int(time.time())
    finish = "length" if max_tokens and p.visible_output >= max_tokens else "stop"
    extra: dict[str, Any] = {}
    if fl.service_tier:
        extra["service_tier"] = _openai_tier(body)
    if fl.fingerprint:
        extra["system_fingerprint"] = "fp_mock0001"
    if not body.get("stream"):
        return _json_reply({
            "id": cid, "object": "chat.completion", "created": created, "model": resp_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": p.text, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": finish}],
            "usage": _openai_usage(p), **extra,
        })
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish_reason: str | None, **more: Any) -> dict:
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": resp_model, **extra,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            c["usage"] = None
        c.update(more)
        return c

    def events() -> Iterator[bytes]:
        yield _sse(chunk({"role": "assistant", "content": "", "refusal": None}, None))
        for piece in p.pieces():
            yield _sse(chunk({"content": piece}, None))
        if fl.mistral_stream:
            yield _sse(chunk({"content": ""}, finish, usage=_openai_usage(p)))
        else:
            yield _sse(chunk({}, finish))
            if include_usage:
                last = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": resp_model,
                        **extra, "choices": [], "usage": _openai_usage(p)}
                yield _sse(last)
        yield b"data: [DONE]\n\n"

    return _Reply(events=events(), content_type="text/event-stream; charset=utf-8")


def _openai_completions(fl: _OpenAIFlavor, body: dict, headers: dict[str, str], model: str) -> _Reply:
    p = _plan(model, body, headers, messages=body.get("prompt"), max_tokens=body.get("max_tokens"))
    resp_model = _dated(model) if fl.dated else model
    cid = _rid("cmpl-")
    created = int(time.time())
    finish = "length" if body.get("max_tokens") and p.visible_output >= body["max_tokens"] else "stop"
    usage = {"prompt_tokens": p.total_input, "completion_tokens": p.total_output,
             "total_tokens": p.total_input + p.total_output}
    if not body.get("stream"):
        return _json_reply({"id": cid, "object": "text_completion", "created": created, "model": resp_model,
                            "choices": [{"text": p.text, "index": 0, "logprobs": None, "finish_reason": finish}],
                            "usage": usage})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def events() -> Iterator[bytes]:
        pieces = p.pieces()
        for i, piece in enumerate(pieces):
            c = {"id": cid, "object": "text_completion", "created": created, "model": resp_model,
                 "choices": [{"text": piece, "index": 0, "logprobs": None,
                              "finish_reason": finish if i == len(pieces) - 1 else None}]}
            if include_usage:
                c["usage"] = None
            yield _sse(c)
        if include_usage:
            yield _sse({"id": cid, "object": "text_completion", "created": created, "model": resp_model,
                        "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    return _Reply(events=events(), content_type="text/event-stream; charset=utf-8")


def _openai_embeddings(fl: _OpenAIFlavor, body: dict, headers: dict[str, str], model: str) -> _Reply:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
    p = _plan(model, body, headers, messages=items, max_tokens=None)
    dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    data = []
    for i, _ in enumerate(items):
        vec = [round(((i + 1) * (j + 1) % 7) / 7.0, 6) for j in range(dims)]
        if body.get("encoding_format") == "base64":
            emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        else:
            emb = vec
        data.append({"object": "embedding", "index": i, "embedding": emb})
    usage = {"prompt_tokens": p.base_input, "total_tokens": p.base_input}
    out = {"object": "list", "data": data, "model": model if not fl.dated else _dated(model), "usage": usage}
    if fl.provider == "mistral_ai":
        # Mistral's body has a required "id" (mistralai 3.x mistralai/client/models/embeddingresponse.py:
        # EmbeddingResponse.id: str; the SDK rejects a body without it) and completion_tokens 0 in its usage.
        out = {"id": _rid("embd-"), **out, "usage": {**usage, "completion_tokens": 0}}
    return _json_reply(out)


def _openai_responses(fl: _OpenAIFlavor, body: dict, headers: dict[str, str], model: str) -> _Reply:
    p = _plan(model, body, headers, messages=[body.get("instructions") or "", body.get("input")],
              max_tokens=body.get("max_output_tokens"))
    resp_model = _dated(model)
    rid = _rid("resp_")
    mid = _rid("msg_")
    created = int(time.time())
    usage = {"input_tokens": p.total_input, "input_tokens_details": {"cached_tokens": p.cache_read},
             "output_tokens": p.total_output, "output_tokens_details": {"reasoning_tokens": p.reasoning},
             "total_tokens": p.total_input + p.total_output}
    incomplete = bool(body.get("max_output_tokens")) and p.visible_output >= body["max_output_tokens"]

    def response_obj(status: str, with_output: bool) -> dict:
        msg = {"type": "message", "id": mid, "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": p.text, "annotations": [], "logprobs": []}]}
        return {
            "id": rid, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete and with_output else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": resp_model, "output": [msg] if with_output else [], "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "service_tier": _openai_tier(body),
            "store": True, "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
            "top_p": 1.0, "truncation": "disabled", "usage": usage if with_output else None,
            "user": body.get("user"), "metadata": {},
        }

    if not body.get("stream"):
        return _json_reply(response_obj("incomplete" if incomplete else "completed", True))

    def events() -> Iterator[bytes]:
        seq = iter(range(10_000))

        def ev(kind: str, **fields: Any) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

        yield ev("response.created", response=response_obj("in_progress", False))
        yield ev("response.in_progress", response=response_obj("in_progress", False))
        item = {"id": mid, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        yield ev("response.output_item.added", output_index=0, item=item)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        yield ev("response.content_part.added", item_id=mid, output_index=0, content_index=0, part=part)
        for piece in p.pieces():
            yield ev("response.output_text.delta", item_id=mid, output_index=0, content_index=0,
                     delta=piece, logprobs=[])
        yield ev("response.output_text.done", item_id=mid, output_index=0, content_index=0, text=p.text,
                 logprobs=[])
        yield ev("response.content_part.done", item_id=mid, output_index=0, content_index=0,
                 part={**part, "text": p.text})
        final = response_obj("incomplete" if incomplete else "completed", True)
        yield ev("response.output_item.done", output_index=0, item=final["output"][0])
        yield ev("response.incomplete" if incomplete else "response.completed", response=final)

    return _Reply(events=events(), content_type="text/event-stream; charset=utf-8")


# ---------------------------------------------------------------------------
# Anthropic Messages (direct, Bedrock InvokeModel, Vertex rawPredict)
# ---------------------------------------------------------------------------


def _anthropic_usage(p: _Plan, *, with_tier: bool = True) -> dict:
    u: dict[str, Any] = {
        "input_tokens": p.base_input,
        "cache_creation_input_tokens": p.cache_write,
        "cache_read_input_tokens": p.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": p.cache_write_5m,
                           "ephemeral_1h_input_tokens": p.cache_write_1h},
        "output_tokens": p.total_output,
    }
    if with_tier:
        u["service_tier"] = "standard"
    return u


def _anthropic_plan(body: dict, headers: dict[str, str], model: str) -> _Plan:
    return _plan(model, body, headers, messages=[body.get("system") or "", body.get("messages")],
                 max_tokens=body.get("max_tokens"))


def _anthropic_message(p: _Plan, body: dict, resp_model: str, *, with_tier: bool = True) -> dict:
    max_tokens = body.get("max_tokens")
    stop = "max_tokens" if isinstance(max_tokens, int) and p.visible_output >= max_tokens else "end_turn"
    return {"id": _rid("msg_01"), "type": "message", "role": "assistant", "model": resp_model,
            "content": [{"type": "text", "text": p.text}], "stop_reason": stop, "stop_sequence": None,
            "usage": _anthropic_usage(p, with_tier=with_tier)}


def _anthropic_stream_events(p: _Plan, body: dict, resp_model: str, *, with_tier: bool = True) -> list[dict]:
    msg = _anthropic_message(p, body, resp_model, with_tier=with_tier)
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**_anthropic_usage(p, with_tier=with_tier), "output_tokens": 1}}
    events: list[dict] = [{"type": "message_start", "message": start},
                          {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                          {"type": "ping"}]
    for piece in p.pieces():
        events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    events.append({"type": "content_block_stop", "index": 0})
    # Cumulative usage, as the API sends it (input side repeated, output the running total).
    usage = _anthropic_usage(p, with_tier=False)
    usage.pop("cache_creation")
    events.append({"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                   "usage": usage})
    events.append({"type": "message_stop"})
    return events


def _anthropic_messages(body: dict, headers: dict[str, str], model: str, *, dated: bool = True,
                        with_tier: bool = True) -> _Reply:
    p = _anthropic_plan(body, headers, model)
    resp_model = _dated(model) if dated else model
    if not body.get("stream"):
        return _json_reply(_anthropic_message(p, body, resp_model, with_tier=with_tier),
                           headers={"request-id": _rid("req_")})

    def events() -> Iterator[bytes]:
        for ev in _anthropic_stream_events(p, body, resp_model, with_tier=with_tier):
            yield _sse(ev, event=ev["type"])

    return _Reply(events=events(), content_type="text/event-stream; charset=utf-8",
                  headers={"request-id": _rid("req_")})


# ---------------------------------------------------------------------------
# Gemini generateContent (Google AI and Vertex AI)
# ---------------------------------------------------------------------------


def _gemini_usage(p: _Plan, *, final: bool = True, partial_candidates: int = 0) -> dict:
    candidates = p.visible_output if final else partial_candidates
    u: dict[str, Any] = {
        "promptTokenCount": p.total_input,
        "candidatesTokenCount": candidates,
        # google-genai types.GenerateContentResponseUsageMetadata.total_token_count: "the sum of
        # prompt_token_count, candidates_token_count, tool_use_prompt_token_count, and thoughts_token_count",
        # on every streamed chunk too (the thoughts come before the text, so they are in every running total).
        "totalTokenCount": p.total_input + candidates + p.reasoning,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p.total_input}],
    }
    if p.cache_read:
        u["cachedContentTokenCount"] = p.cache_read
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": p.cache_read}]
    if p.reasoning:
        u["thoughtsTokenCount"] = p.reasoning
    return u


def _gemini(body: dict, headers: dict[str, str], model: str, stream: bool, sse: bool) -> _Reply:
    gen = body.get("generationConfig") or {}
    p = _plan(model, body, headers, messages=[body.get("systemInstruction") or "", body.get("contents")],
              max_tokens=gen.get("maxOutputTokens") if isinstance(gen, dict) else None)
    rid = uuid.uuid4().hex[:22]
    max_out = gen.get("maxOutputTokens") if isinstance(gen, dict) else None
    finish = "MAX_TOKENS" if isinstance(max_out, int) and p.visible_output >= max_out else "STOP"

    def cand(text: str, finish_reason: str | None) -> dict:
        c: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish_reason:
            c["finishReason"] = finish_reason
        return c

    if not stream:
        return _json_reply({"candidates": [cand(p.text, finish)], "usageMetadata": _gemini_usage(p),
                            "modelVersion": model, "responseId": rid})

    def chunks() -> Iterator[dict]:
        pieces = p.pieces()
        done_words = 0
        for i, piece in enumerate(pieces):
            done_words += len(piece.split())
            last = i == len(pieces) - 1
            yield {"candidates": [cand(piece, finish if last else None)],
                   "usageMetadata": _gemini_usage(p, final=last, partial_candidates=done_words),
                   "modelVersion": model, "responseId": rid}

    if sse:
        return _Reply(events=(_sse(c, sep="\r\n") for c in chunks()), content_type="text/event-stream")

    def array() -> Iterator[bytes]:
        for i, c in enumerate(chunks()):
            yield (b"[" if i == 0 else b"\n,\r\n") + json.dumps(c).encode()
        yield b"]"

    return _Reply(events=array(), content_type="application/json; charset=UTF-8")


# ---------------------------------------------------------------------------
# Bedrock runtime
# ---------------------------------------------------------------------------


def _converse_plan(body: dict, headers: dict[str, str], model: str) -> _Plan:
    cfg = body.get("inferenceConfig") or {}
    return _plan(model, body, headers, messages=[body.get("system") or "", body.get("messages")],
                 max_tokens=cfg.get("maxTokens") if isinstance(cfg, dict) else None)


def _converse_usage(p: _Plan) -> dict:
    # inputTokens excludes cache reads and writes (as in Bedrock's prompt-caching docs).
    u: dict[str, Any] = {"inputTokens": p.base_input, "outputTokens": p.total_output,
                         "totalTokens": p.total_input + p.total_output}
    if p.cache_read or p.cache_write:
        u["cacheReadInputTokens"] = p.cache_read
        u["cacheWriteInputTokens"] = p.cache_write
        details = []
        if p.cache_write_5m:
            details.append({"inputTokens": p.cache_write_5m, "ttl": "5m"})
        if p.cache_write_1h:
            details.append({"inputTokens": p.cache_write_1h, "ttl": "1h"})
        if details:
            u["cacheDetails"] = details
    return u


def _bedrock_stop(p: _Plan, body: dict) -> str:
    cfg = body.get("inferenceConfig") or {}
    mt = cfg.get("maxTokens") if isinstance(cfg, dict) else None
    return "max_tokens" if isinstance(mt, int) and p.visible_output >= mt else "end_turn"


def _bedrock_converse(body: dict, headers: dict[str, str], model: str) -> _Reply:
    p = _converse_plan(body, headers, model)
    return _json_reply({
        "output": {"message": {"role": "assistant", "content": [{"text": p.text}]}},
        "stopReason": _bedrock_stop(p, body), "usage": _converse_usage(p), "metrics": {"latencyMs": 42},
    }, headers={"x-amzn-RequestId": str(uuid.uuid4())})


def _bedrock_converse_stream(body: dict, headers: dict[str, str], model: str) -> _Reply:
    p = _converse_plan(body, headers, model)

    def events() -> Iterator[bytes]:
        yield _es_event("messageStart", {"p": "abcdefgh", "role": "assistant"})
        for piece in p.pieces():
            yield _es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}, "p": "abcd"})
        yield _es_event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcd"})
        yield _es_event("messageStop", {"p": "abcd", "stopReason": _bedrock_stop(p, body)})
        yield _es_event("metadata", {"metrics": {"latencyMs": 42}, "p": "abc", "usage": _converse_usage(p)})

    return _Reply(events=events(), content_type="application/vnd.amazon.eventstream",
                  headers={"x-amzn-RequestId": str(uuid.uuid4())})


def _bedrock_invoke(body: dict, headers: dict[str, str], model: str, stream: bool) -> _Reply:
    base = model.split(":")[0]
    family = base.split(".")[-2] if base.count(".") >= 2 else base.split(".")[0]
    rid = str(uuid.uuid4())
    if "anthropic" in (family, base.split(".")[0]) or base.startswith(("anthropic.", "us.anthropic.", "eu.anthropic.", "global.anthropic.")):
        p = _anthropic_plan(body, headers, model)
        token_headers = {"x-amzn-RequestId": rid, "x-amzn-bedrock-input-token-count": str(p.base_input),
                         "x-amzn-bedrock-output-token-count": str(p.total_output),
                         "x-amzn-bedrock-invocation-latency": "42"}
        if p.cache_read:
            token_headers["x-amzn-bedrock-cache-read-input-token-count"] = str(p.cache_read)
        if p.cache_write:
            token_headers["x-amzn-bedrock-cache-write-input-token-count"] = str(p.cache_write)
        if not stream:
            return _json_reply(_anthropic_message(p, body, model, with_tier=False), headers=token_headers)

        def events() -> Iterator[bytes]:
            evs = _anthropic_stream_events(p, body, model, with_tier=False)
            for ev in evs:
                if ev["type"] == "ping":
                    continue
                if ev["type"] == "message_stop":
                    ev = {**ev, "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": p.base_input, "outputTokenCount": p.total_output,
                        "invocationLatency": 42, "firstByteLatency": 10,
                        "cacheReadInputTokenCount": p.cache_read, "cacheWriteInputTokenCount": p.cache_write}}
                raw = base64.b64encode(json.dumps(ev).encode()).decode()
                yield _es_event("chunk", {"bytes": raw, "p": "abcd"})

        return _Reply(events=events(), content_type="application/vnd.amazon.eventstream",
                      headers={"x-amzn-RequestId": rid, "X-Amzn-Bedrock-Content-Type": "application/json"})
    # Meta Llama / generic text models: the Llama body shape.
    p = _plan(model, body, headers, messages=body.get("prompt"), max_tokens=body.get("max_gen_len"))
    token_headers = {"x-amzn-RequestId": rid, "x-amzn-bedrock-input-token-count": str(p.total_input),
                     "x-amzn-bedrock-output-token-count": str(p.total_output),
                     "x-amzn-bedrock-invocation-latency": "42"}
    stop = "length" if isinstance(body.get("max_gen_len"), int) and p.visible_output >= body["max_gen_len"] else "stop"
    if not stream:
        return _json_reply({"generation": p.text, "prompt_token_count": p.total_input,
                            "generation_token_count": p.total_output, "stop_reason": stop}, headers=token_headers)

    def llama_events() -> Iterator[bytes]:
        pieces = p.pieces()
        for i, piece in enumerate(pieces):
            ev: dict[str, Any] = {"generation": piece, "prompt_token_count": p.total_input if i == 0 else None,
                                  "generation_token_count": i + 1, "stop_reason": None}
            if i == len(pieces) - 1:
                ev["stop_reason"] = stop
                ev["generation_token_count"] = p.total_output
                ev["amazon-bedrock-invocationMetrics"] = {"inputTokenCount": p.total_input,
                                                          "outputTokenCount": p.total_output,
                                                          "invocationLatency": 42, "firstByteLatency": 10}
            yield _es_event("chunk", {"bytes": base64.b64encode(json.dumps(ev).encode()).decode()})

    return _Reply(events=llama_events(), content_type="application/vnd.amazon.eventstream",
                  headers={"x-amzn-RequestId": rid})


# ---------------------------------------------------------------------------
# Cohere v2
# ---------------------------------------------------------------------------


def _cohere_usage(p: _Plan) -> dict:
    # billed_units exclude the chat template tokens that `tokens` counts.
    return {"billed_units": {"input_tokens": p.total_input, "output_tokens": p.total_output},
            "tokens": {"input_tokens": p.total_input + 200, "output_tokens": p.total_output + 2},
            "cached_tokens": p.cache_read}


def _cohere_chat(body: dict, headers: dict[str, str], model: str) -> _Reply:
    p = _plan(model, body, headers, messages=body.get("messages"), max_tokens=body.get("max_tokens"))
    cid = str(uuid.uuid4())
    finish = "MAX_TOKENS" if isinstance(body.get("max_tokens"), int) and p.visible_output >= body["max_tokens"] else "COMPLETE"
    if not body.get("stream"):
        return _json_reply({"id": cid, "finish_reason": finish,
                            "message": {"role": "assistant", "content": [{"type": "text", "text": p.text}]},
                            "usage": _cohere_usage(p)})

    def events() -> Iterator[bytes]:
        def ev(obj: dict) -> bytes:
            return _sse(obj, event=obj["type"])
        yield ev({"type": "message-start", "id": cid,
                  "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [],
                                        "citations": []}}})
        yield ev({"type": "content-start", "index": 0,
                  "delta": {"message": {"content": {"type": "text", "text": ""}}}})
        for piece in p.pieces():
            yield ev({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}})
        yield ev({"type": "content-end", "index": 0})
        yield ev({"type": "message-end", "delta": {"finish_reason": finish, "usage": _cohere_usage(p)}})
        yield b"data: [DONE]\n\n"

    return _Reply(events=events(), content_type="text/event-stream")


def _cohere_embed(body: dict, headers: dict[str, str], model: str) -> _Reply:
    texts = body.get("texts") or body.get("inputs") or []
    p = _plan(model, body, headers, messages=texts, max_tokens=None)
    vecs = [[round(((i + 1) * (j + 1) % 5) / 5.0, 4) for j in range(8)] for i, _ in enumerate(texts)]
    types = body.get("embedding_types") or ["float"]
    # "response_type": cohere's v2 EmbedByTypeResponse.response_type (cohere/types/embed_by_type_response.py,
    # Literal "embeddings_by_type" for the v2 embeddings-by-type body).
    return _json_reply({"id": str(uuid.uuid4()), "response_type": "embeddings_by_type",
                        "texts": texts if isinstance(texts, list) else [],
                        "embeddings": {t: vecs for t in types if isinstance(t, str)},
                        "meta": {"api_version": {"version": "2"},
                                 "billed_units": {"input_tokens": p.base_input}}})


# ---------------------------------------------------------------------------
# Ollama native API
# ---------------------------------------------------------------------------


def _ollama(body: dict, headers: dict[str, str], model: str, kind: str) -> _Reply:
    opts = body.get("options") or {}
    msgs = body.get("messages") if kind == "chat" else [body.get("system") or "", body.get("prompt")]
    p = _plan(model, body, headers, messages=msgs,
              max_tokens=opts.get("num_predict") if isinstance(opts, dict) else None)
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    stream = body.get("stream", True) is not False
    done_reason = "length" if isinstance(opts, dict) and isinstance(opts.get("num_predict"), int) and p.visible_output >= opts["num_predict"] else "stop"
    final = {"model": model, "created_at": created, "done": True, "done_reason": done_reason,
             "total_duration": 123456789, "load_duration": 1234567, "prompt_eval_count": p.total_input,
             "prompt_eval_duration": 2345678, "eval_count": p.total_output, "eval_duration": 98765432}

    def content(text: str) -> dict:
        if kind == "chat":
            return {"message": {"role": "assistant", "content": text}}
        return {"response": text}

    if not stream:
        return _json_reply({**final, **content(p.text)})

    def events() -> Iterator[bytes]:
        for piece in p.pieces():
            yield json.dumps({"model": model, "created_at": created, **content(piece), "done": False}).encode() + b"\n"
        yield json.dumps({**final, **content("")}).encode() + b"\n"

    return _Reply(events=events(), content_type="application/x-ndjson")


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------

_OPENAI_MOUNTS: dict[str, _OpenAIFlavor] = {
    "/openai/v1": _OpenAIFlavor("openai"),
    "/mistral/v1": _OpenAIFlavor("mistral_ai", dated=False, mistral_stream=True, fingerprint=False,
                                 service_tier=False),
    "/groq/openai/v1": _OpenAIFlavor("groq", dated=False, service_tier=False),
    "/deepseek/v1": _OpenAIFlavor("deepseek", dated=False, service_tier=False),
    "/vllm/v1": _OpenAIFlavor("vllm", dated=False, fingerprint=False, service_tier=False),
    "/ollama/v1": _OpenAIFlavor("ollama", dated=False, fingerprint=False, service_tier=False),
}

_AZURE_RE = re.compile(r"^/azure/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$")
_GEMINI_RE = re.compile(r"^/gemini/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent)$")
_VERTEX_RE = re.compile(
    r"^/vertex/v1(?:beta1)?/(?:projects/[^/]+/locations/[^/]+/)?publishers/(google|anthropic)/models/([^/:]+)"
    r":(generateContent|streamGenerateContent|rawPredict|streamRawPredict)$")
_BEDROCK_RE = re.compile(r"^/bedrock/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")


def _openai_dispatch(fl: _OpenAIFlavor, op: str, body: dict, headers: dict[str, str], model: str) -> _Reply | None:
    if op == "chat/completions":
        return _openai_chat(fl, body, headers, model)
    if op == "completions":
        return _openai_completions(fl, body, headers, model)
    if op == "embeddings":
        return _openai_embeddings(fl, body, headers, model)
    if op == "responses" and fl.provider == "openai":
        return _openai_responses(fl, body, headers, model)
    return None


def _route(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: dict) -> tuple[str, Callable[[], _Reply | None]]:
    """Return (error flavor, handler) for a request path (without query)."""
    model = body.get("model") if isinstance(body.get("model"), str) else ""
    for mount, fl in _OPENAI_MOUNTS.items():
        if path.startswith(mount + "/"):
            op = path[len(mount) + 1:]
            flavor = "mistral" if fl.provider == "mistral_ai" else "openai"
            return flavor, lambda: _openai_dispatch(fl, op, body, headers, model or "unknown-model")
    m = _AZURE_RE.match(path)
    if m:
        deployment, op = unquote(m.group(1)), m.group(2)
        fl = _OpenAIFlavor("azure.ai.openai")
        # Azure answers with the deployed model's dated name; deployments named after a model map to it.
        return "openai", lambda: _openai_dispatch(fl, op, body, headers, model or deployment)
    if path == "/anthropic/v1/messages":
        return "anthropic", lambda: _anthropic_messages(body, headers, model or "unknown-model")
    m = _GEMINI_RE.match(path)
    if m:
        mdl, op = unquote(m.group(1)), m.group(2)
        stream = op == "streamGenerateContent"
        sse = query.get("alt", [""])[0] == "sse"
        return "google", lambda: _gemini(body, headers, mdl, stream, sse)
    m = _VERTEX_RE.match(path)
    if m:
        publisher, mdl, op = m.group(1), unquote(m.group(2)), m.group(3)
        if publisher == "anthropic":
            body = {**body, "stream": op == "streamRawPredict" or bool(body.get("stream"))}
            return "google", lambda: _anthropic_messages(body, headers, mdl, dated=False)
        sse = query.get("alt", [""])[0] == "sse"
        return "google", lambda: _gemini(body, headers, mdl, op == "streamGenerateContent", sse)
    m = _BEDROCK_RE.match(path)
    if m:
        mdl, op = unquote(m.group(1)), m.group(2)
        if op == "converse":
            return "bedrock", lambda: _bedrock_converse(body, headers, mdl)
        if op == "converse-stream":
            return "bedrock", lambda: _bedrock_converse_stream(body, headers, mdl)
        return "bedrock", lambda: _bedrock_invoke(body, headers, mdl, op == "invoke-with-response-stream")
    if path == "/cohere/v2/chat":
        return "cohere", lambda: _cohere_chat(body, headers, model or "command-a-03-2025")
    if path == "/cohere/v2/embed":
        return "cohere", lambda: _cohere_embed(body, headers, model or "embed-v4.0")
    if path in ("/ollama/api/chat", "/ollama/api/generate"):
        kind = path.rsplit("/", 1)[1]
        return "ollama", lambda: _ollama(body, headers, model or "llama3.2", kind)
    return "openai", lambda: None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"
    #: Send each small stream write at once (TCP_NODELAY), as real providers' servers do; with Nagle on,
    #: a chunk after the first waits ~40 ms for the client's delayed ACK, which distorts time to first chunk.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        owner = self.server.owner
        raw = self._read_body()
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                pass
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(RecordedRequest(self.command, self.path, headers, raw))
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if owner.latency_s:
            time.sleep(owner.latency_s)
        flavor, handler = _route(self.command, split.path, query, headers,
                                 body if isinstance(body, dict) else {})
        forced = headers.get("x-mock-status", "")
        if forced.isdigit() and int(forced) >= 400:
            reply: _Reply | None = _error_reply(flavor, int(forced))
        elif self.command != "POST":
            reply = _error_reply(flavor, 404)
        elif not isinstance(body, dict):
            reply = _error_reply(flavor, 400)
        else:
            reply = handler()
            if reply is None:
                reply = _error_reply(flavor, 404)
        self._send(reply, headers)

    do_POST = _handle
    do_GET = _handle

    def _send(self, reply: _Reply, req_headers: dict[str, str]) -> None:
        accept_gzip = "gzip" in req_headers.get("accept-encoding", "")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for k, v in (reply.headers or {}).items():
            self.send_header(k, v)
        if reply.events is None:
            body = reply.body
            if accept_gzip and len(body) > 0:
                body = gzip.compress(body, compresslevel=5)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            return
        compress = accept_gzip and req_headers.get("x-mock-gzip-stream") == "1"
        abort_after = _int_header(req_headers, "x-mock-stream-abort-after", -1)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        if compress:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.flush()
        gz = zlib.compressobj(5, zlib.DEFLATED, 31) if compress else None
        delay = self.server.owner.chunk_delay_s
        for i, event in enumerate(reply.events):
            if 0 <= abort_after <= i:
                # Simulate a dropped connection: no terminating chunk, socket closed.
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            if i and delay:
                time.sleep(delay)
            data = gz.compress(event) + gz.flush(zlib.Z_SYNC_FLUSH) if gz else event
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
        if gz:
            tail = gz.flush()
            if tail:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "MockProviderServer"

    def handle_error(self, request, client_address) -> None:
        """Clients dropping keep-alive connections (SDK shutdown, aborted streams) are normal here:
        no traceback for those; anything else still gets the default report."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class MockProviderServer:
    """A threaded mock of the LLM providers' HTTP APIs on ``host:port`` (port 0: a free port).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0,
                 chunk_delay_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_s
        self.chunk_delay_s = chunk_delay_s
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------
    def start(self) -> "MockProviderServer":
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="inferops-mock-providers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "MockProviderServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # endpoints -----------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoints(self) -> dict[str, str]:
        """Base URL -> provider name, for ``settings.provider_endpoints``."""
        b = self.base_url
        return {
            f"{b}/openai/v1": "openai",
            f"{b}/anthropic": "anthropic",
            f"{b}/gemini": "gcp.gemini",
            f"{b}/vertex": "gcp.vertex_ai",
            f"{b}/azure": "azure.ai.openai",
            f"{b}/bedrock": "aws.bedrock",
            f"{b}/mistral/v1": "mistral_ai",
            f"{b}/cohere": "cohere",
            f"{b}/groq/openai/v1": "groq",
            f"{b}/deepseek/v1": "deepseek",
        }

    def self_hosted_endpoints(self) -> dict[str, str]:
        """Base URL -> provider name, for ``settings.self_hosted``."""
        b = self.base_url
        return {f"{b}/vllm/v1": "vllm", f"{b}/ollama": "ollama"}

    # recorded requests -----------------------------------------------------------
    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
