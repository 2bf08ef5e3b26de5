"""Anthropic Messages API: direct (``/v1/messages``), on Vertex AI (``:rawPredict`` /
``:streamRawPredict``) and on Bedrock (InvokeModel bodies, see ``bedrock.py``).

Counting (FACTS.md): Anthropic's ``input_tokens`` **excludes** cache reads and
writes, so the whole input is ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens``; the writes split into 5-minute and 1-hour by
``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``
(all 5-minute when the split is absent). ``output_tokens`` includes thinking.
In a stream ``message_start`` carries the input usage and ``message_delta.usage``
is **cumulative**: each field present overwrites, nothing is added.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import unquote

from inferops.names import Operation, ServiceTier
from inferops.processors.usage import UsageRecord, provider_usage

from ._json import loads as json_loads
from ._common import (LazyText, LazyTextResponse, RequestKeys, SSEStream, as_dict, as_int, as_str, error_response,
                      has_int, loads, request_fields, tier, set_request_params)
from .base import Endpoint, ParsedResponse, RequestInfo, new_request_info

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_VERTEX_RE = re.compile(r"/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$")


def anthropic_usage(provider: str, model: str, usage: Any, self_hosted: bool = False,
                    default_tier: str = ServiceTier.STANDARD) -> UsageRecord | None:
    """Normalise an Anthropic ``usage`` object (cache tokens added back into the input)."""
    if not isinstance(usage, dict):
        return None
    for k in _USAGE_FIELDS:  # a loop, not any(<generator>): this runs once per call, on its path
        if has_int(usage.get(k)):
            break
    else:
        return None
    base = as_int(usage.get("input_tokens"))
    read = as_int(usage.get("cache_read_input_tokens"))
    write = as_int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    if isinstance(split, dict) and ("ephemeral_5m_input_tokens" in split or "ephemeral_1h_input_tokens" in split):
        w5 = as_int(split.get("ephemeral_5m_input_tokens"))
        w1 = as_int(split.get("ephemeral_1h_input_tokens"))
        if w5 + w1 != write and write:
            w5 = max(0, write - w1)  # the total is authoritative; the split names the 1h part
    else:
        w5, w1 = write, 0
    return provider_usage(provider, model, Operation.CHAT, base + read + w5 + w1, as_int(usage.get("output_tokens")),
                          read, w5, w1, 0, 0, 0, tier(usage.get("service_tier")) or default_tier, self_hosted)


def fill_from_message(obj: dict, out: ParsedResponse) -> None:
    """Text, id, model and stop reason from a complete Anthropic ``message`` object."""
    out.response_model = as_str(obj.get("model"))
    out.response_id = as_str(obj.get("id"))
    sr = obj.get("stop_reason")
    if isinstance(sr, str):
        out.finish_reasons.append(sr[:64])
    content = obj.get("content")
    if isinstance(content, list):
        parts = []  # a loop, not "".join(<generator>): one text block is the usual answer
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text":
                text = b.get("text")
                if isinstance(text, str):
                    parts.append(text)
        out.output_text = parts[0] if len(parts) == 1 else "".join(parts)


#: The request members the Anthropic Messages adapters read (everything else in the body is prompt: not decoded).
_REQUEST_KEYS = RequestKeys("model", "stream", "metadata", "max_tokens", "temperature")


def request_info(provider: str, endpoint: Endpoint, body: bytes, model: str = "",
                 stream: bool | None = None, kind: str = "") -> RequestInfo:
    b = request_fields(body, _REQUEST_KEYS)
    info = new_request_info(provider, Operation.CHAT, model or as_str(b.get("model")),
                            (b.get("stream") is True) if stream is None else stream, False,
                            as_str(as_dict(b.get("metadata")).get("user_id")), ServiceTier.STANDARD,
                            endpoint.host, endpoint.port, body or None, kind)
    set_request_params(info, b, "max_tokens")
    return info


def parse_message_response(info: RequestInfo, status: int, body: bytes) -> ParsedResponse:
    obj, err = loads(body)
    if status >= 400:
        return error_response(status, obj, "http_error")
    if not isinstance(obj, dict):
        return ParsedResponse(parse_error=err or "not a json object")
    out = ParsedResponse()
    fill_from_message(obj, out)
    out.usage = anthropic_usage(info.provider, out.response_model or info.request_model, obj.get("usage"),
                                info.self_hosted, info.service_tier)
    if out.usage is None:
        out.parse_error = "no usage"
    return out


class AnthropicStreamState:
    """Folds Anthropic stream events (dicts) into a summary; shared by SSE and Bedrock streams."""

    def __init__(self, info: RequestInfo) -> None:
        self.info = info
        self.usage: dict[str, Any] = {}
        self.model = ""
        self.id = ""
        self.stop = ""
        self.text = LazyText(_delta_text)
        self.content = False
        self.events = 0
        self.error_type = ""
        self.fallback_usage: dict[str, int] | None = None

    def on_event(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        self.events += 1
        typ = obj.get("type")
        if typ == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            text = delta.get("text")
            if isinstance(text, str) and text:
                self.text.add(text)
                self.content = True
            elif delta.get("thinking") or delta.get("partial_json"):
                self.content = True
        elif typ == "message_start":
            msg = as_dict(obj.get("message"))
            self.model = as_str(msg.get("model"))
            self.id = as_str(msg.get("id"))
            self._merge(msg.get("usage"))
        elif typ == "message_delta":
            self._merge(obj.get("usage"))
            sr = as_dict(obj.get("delta")).get("stop_reason")
            if isinstance(sr, str):
                self.stop = sr[:64]
        elif typ == "error":
            self.error_type = as_str(as_dict(obj.get("error")).get("type")) or "error"
        metrics = obj.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, dict):
            self.fallback_usage = {
                "input_tokens": as_int(metrics.get("inputTokenCount")),
                "output_tokens": as_int(metrics.get("outputTokenCount")),
                "cache_read_input_tokens": as_int(metrics.get("cacheReadInputTokenCount")),
                "cache_creation_input_tokens": as_int(metrics.get("cacheWriteInputTokenCount")),
            }

    def _merge(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for k, v in usage.items():  # cumulative: overwrite what is present
            if v is not None:
                self.usage[k] = v

    def summary(self, broken: str = "") -> ParsedResponse:
        info = self.info
        out = LazyTextResponse(self.text, response_model=self.model, response_id=self.id,
                               finish_reasons=[self.stop] if self.stop else [], error_type=self.error_type)
        out.usage = anthropic_usage(info.provider, self.model or info.request_model, self.usage or None,
                                    info.self_hosted, info.service_tier)
        if out.usage is None and self.fallback_usage:
            out.usage = anthropic_usage(info.provider, self.model or info.request_model, self.fallback_usage,
                                        info.self_hosted, info.service_tier)
        if out.usage is None:
            out.parse_error = broken or ("no events" if not self.events else "no usage in stream")
        return out


def _delta_text(data: bytes) -> list[str]:
    """The text of one raw ``content_block_delta`` event, as :meth:`AnthropicStreamState.on_event` adds it."""
    obj = json_loads(data)
    if not isinstance(obj, dict) or obj.get("type") != "content_block_delta":
        return []
    text = as_dict(obj.get("delta")).get("text")
    return [text] if isinstance(text, str) and text else []


#: The exact data of events that carry nothing the state reads (it only counts them), as the API writes
#: them: valid JSON by construction, so they are counted without being decoded. Any other spelling of the
#: same events is decoded as usual.
_QUIET_EVENTS = frozenset(
    [b'{"type":"ping"}', b'{"type": "ping"}', b'{"type":"message_stop"}', b'{"type": "message_stop"}']
    + [b'{"type":"content_block_stop","index":%d}' % i for i in range(16)]
    + [b'{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}' % i
       for i in range(16)])

#: The start of a ``content_block_delta`` event's data (the API puts ``type`` first).
_CONTENT_DELTA = re.compile(rb'\{\s*"type"\s*:\s*"content_block_delta"')
#: The start of every content delta event's data line, as the API writes it (compact JSON, ``type`` first).
_DELTA_LINE = b'data: {"type":"content_block_delta"'


#: The data lines of the events a fragment may hold besides content deltas: the state only counts these
#: (whatever else their objects hold; an ``error`` or a Bedrock metrics event never matches).
_QUIET_LINES = (b'data: {"type":"content_block_stop"', b'data: {"type":"message_stop"', b'data: {"type":"ping"',
                b'data: {"type": "ping"')


def _delta_events_py(data: bytes, delta_line: bytes) -> int:
    """The events in a fragment of whole LF-terminated events that are content deltas or quiet events
    (``_QUIET_LINES``; no CR, no Bedrock metrics), else -1.

    The reference for the compiled ``_chunkscan.anthropic_deltas``, used when
    that optional extension was not built. Quiet events are taken in with the
    deltas (the text decoder skips them), so the end of a content block and of
    the message cost no Python frame either.
    """
    if not delta_line or not data.endswith(b"\n\n") or b"\r" in data:
        return -1
    n = data.count(b"\n\n")
    known = data.count(delta_line)
    if known < n:
        known += sum(data.count(q) for q in _QUIET_LINES)
    if known != n or b"amazon-bedrock" in data:
        return -1
    return n


try:
    from ._chunkscan import anthropic_deltas as _delta_events
except ImportError:  # built without a C compiler: the same test in Python
    _delta_events = _delta_events_py


class AnthropicSSEParser:
    """Anthropic SSE stream (direct API and Vertex ``streamRawPredict``). Never filters.

    Fast path: once the first content was seen, ``content_block_delta`` events
    (the bulk of a stream; they carry only text) are not JSON-decoded: their
    bytes go to the state's :class:`LazyText`, decoded only if the text is read.
    A fragment of whole events (the usual network read) that holds nothing but
    content deltas and quiet events (as many delta and ``_QUIET_LINES`` data
    lines as events, no Bedrock metrics) goes there in one piece, without being
    split into events. Quotes inside
    generated text are escaped, so a delta line is never counted from the text.
    """

    def __init__(self, info: RequestInfo) -> None:
        self.state = AnthropicStreamState(info)
        self._sse = SSEStream(self._on_event)
        self._bad = 0

    def _on_event(self, name: str, data: bytes) -> bool:
        state = self.state
        if state.content and _CONTENT_DELTA.match(data) and b"amazon-bedrock-invocationMetrics" not in data:
            state.events += 1
            state.text.add_raw(data)
            return False
        if data in _QUIET_EVENTS:
            state.events += 1
            return False
        if data:
            try:
                self.state.on_event(json_loads(data))
            except (ValueError, UnicodeDecodeError):
                self._bad += 1
        return False

    def absorb(self, data: bytes) -> bool:
        """Take in a fragment of whole content-delta events (True), or do nothing (False). Never raises."""
        state = self.state
        if not state.content or not self._sse.idle:
            return False
        n = _delta_events(data, _DELTA_LINE)
        if n < 0:
            return False
        state.events += n
        state.text.add_raw(data, fragment=True)
        return True

    def steady(self):
        """As :meth:`OpenAIStreamParser.steady`: a compiled absorber for this quiet stretch, the Python
        :meth:`absorb` without the extension, or None."""
        state = self.state
        state.events += state.text.take_absorbed()
        if not state.content or not self._sse.idle:
            return None
        return state.text.absorber(1, _DELTA_LINE) or self.absorb

    def feed(self, data: bytes) -> bytes:
        if self.absorb(data):
            return data
        return self._sse.feed(data)

    def flush(self) -> bytes:
        return self._sse.flush()

    def first_content_seen(self) -> bool:
        return self.state.content

    def finish(self) -> ParsedResponse:
        try:
            self.state.events += self.state.text.take_absorbed()
            broken = self._sse.broken or ("not json" if self._bad and not self.state.events else "")
            return self.state.summary(broken)
        except Exception as exc:  # pragma: no cover - defensive
            return ParsedResponse(parse_error=f"internal: {type(exc).__name__}")


class AnthropicAdapter:
    """Anthropic Messages API at ``/v1/messages`` (batches, token counting and models are not priced calls)."""

    def __init__(self, provider: str = "anthropic", *, self_hosted: bool = False) -> None:
        self.provider = provider
        self.self_hosted = self_hosted

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        if method.upper() != "POST" or not endpoint.path.rstrip("/").endswith("/v1/messages"):
            return None
        info = request_info(self.provider, endpoint, body)
        info.self_hosted = self.self_hosted
        return info

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        return parse_message_response(info, status, body)

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> AnthropicSSEParser:
        return AnthropicSSEParser(info)


def vertex_anthropic_request(provider: str, endpoint: Endpoint, body: bytes) -> RequestInfo | None:
    """``.../publishers/anthropic/models/{model}:rawPredict`` (model from the path, not the body)."""
    m = _VERTEX_RE.search(endpoint.path)
    if m is None or m.group(1) == "count-tokens":
        return None
    stream = m.group(2) == "streamRawPredict"
    return request_info(provider, endpoint, body, model=unquote(m.group(1))[:256], stream=stream or None,
                        kind="anthropic")
