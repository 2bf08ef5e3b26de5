"""The contract between the HTTP patching and the provider parsers.

The patching layer (``inferops.instrumentation.patch``) knows nothing about
providers; the adapters here know nothing about httpx, spans or metrics. An
adapter turns a provider's documented wire format into plain data:

* :meth:`Adapter.parse_request` reads the outgoing request (URL, headers,
  body bytes) into a :class:`RequestInfo` (operation, requested model, stream
  flag, user id, service tier...). It may return a replacement body
  (``RequestInfo.new_body``), e.g. with ``stream_options.include_usage``
  injected; the patching layer then sends that instead.
* :meth:`Adapter.parse_response` reads a complete (decompressed) response body.
* :meth:`Adapter.stream_parser` returns a :class:`StreamParser` that is fed the
  decompressed bytes of a streamed response as they pass, in arbitrary
  fragments, and summarises at the end. When inferops injected the usage
  option it also filters the usage-only event out of what the caller gets.

Every method must be total: on bodies it does not understand it records a
reason in ``ParsedResponse.parse_error`` (or returns ``None`` from
``parse_request``) and never raises. The patching layer still wraps every
call in ``try/except`` (fail-safe twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

from ._json import loads as json_loads

from inferops.processors.usage import UsageRecord


@dataclass(slots=True)
class Endpoint:
    """Where a request goes: enough to choose an adapter cheaply."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str = ""


@dataclass(slots=True)
class RequestInfo:
    """What inferops learned from an outgoing request."""

    provider: str
    operation: str
    request_model: str = ""
    stream: bool = False
    self_hosted: bool = False
    #: End-user id from the body (OpenAI ``user``, Anthropic ``metadata.user_id``), attribution fallback.
    user: str = ""
    service_tier: str = "standard"
    server_address: str = ""
    server_port: int | None = None
    #: Replacement request body (bytes) when the adapter rewrote it, else None.
    new_body: bytes | None = None
    #: True when inferops injected ``stream_options.include_usage`` (hide the usage-only chunk).
    injected_stream_usage: bool = False
    #: Parsed JSON request body (kept only for estimation / content capture / routing; may be None).
    #: Adapters that read only a few members leave it None and keep ``raw_body``: use :meth:`parsed_body`.
    body: object = None
    #: The request body not decoded yet (decoded by :meth:`parsed_body` only if someone needs it).
    raw_body: bytes | None = None
    #: Request parameters worth a span attribute (max_tokens, temperature...), semconv names.
    attributes: dict[str, object] = field(default_factory=dict)
    #: Adapter-private API variant (e.g. "responses", "converse-stream"), read back by the same adapter.
    kind: str = ""

    def parsed_body(self) -> object:
        """The decoded JSON request body (a dict), or None; decoded on first use when only ``raw_body`` was kept.

        Decoding a long prompt costs more than everything else inferops does per
        call, and is needed only for tiktoken estimates, content capture and routing.
        """
        if self.body is None and self.raw_body is not None:
            raw, self.raw_body = self.raw_body, None
            try:
                obj = json_loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                obj = None
            self.body = obj if isinstance(obj, dict) else None
        return self.body


def new_request_info(provider: str, operation: str, request_model: str, stream: bool, self_hosted: bool, user: str,
                     service_tier: str, server_address: str, server_port: int | None, raw_body: bytes | None,
                     kind: str = "") -> RequestInfo:
    """``RequestInfo(...)`` built positionally, for the adapters' per-call path.

    The dataclass's ``__init__`` matches each keyword against its 15 fields
    (about twice the cost of positional arguments, once per LLM call). The
    order below is the field order (tests/test_usage_record.py holds it to the
    keyword form).
    """
    return RequestInfo(provider, operation, request_model, stream, self_hosted, user, service_tier, server_address,
                       server_port, None, False, None, raw_body, {}, kind)


@dataclass(slots=True)
class ParsedResponse:
    """What inferops learned from a response (complete or streamed)."""

    usage: UsageRecord | None = None
    response_model: str = ""
    response_id: str = ""
    finish_reasons: list[str] = field(default_factory=list)
    #: Generated text (for tiktoken estimation when usage is missing, and opt-in content capture).
    output_text: str = ""
    #: Why the body was not understood (e.g. "not json", "no usage"), else "".
    parse_error: str = ""
    #: Provider error type when the body is an error object (e.g. "rate_limit_error").
    error_type: str = ""


class StreamParser(Protocol):
    """Incremental parser of a streamed response body (decompressed bytes).

    Normally the patching layer hands the caller the provider's raw bytes and
    only *feeds* this parser a decompressed copy (the return value of
    :meth:`feed` is ignored). When inferops injected
    ``stream_options.include_usage`` (``RequestInfo.injected_stream_usage``),
    it also asked for an uncompressed response, and delivers to the caller
    what :meth:`feed` returns: the input with the usage-only event removed,
    cut at event boundaries (at most one partial event held back), then what
    :meth:`flush` returns at the end.
    """

    def feed(self, data: bytes) -> bytes:
        """Consume the next fragment; return the bytes the caller should get now. Never raises."""

    def flush(self) -> bytes:
        """Bytes held back at the end of the stream (filtering mode only)."""

    def first_content_seen(self) -> bool:
        """True once a chunk carrying generated content has been parsed (time to first chunk)."""

    def finish(self) -> ParsedResponse:
        """Summarise what was seen (also after an interrupted stream). Never raises."""


class Adapter(Protocol):
    """One provider wire format."""

    #: Provider name (``inferops.names.Provider`` values, or the configured self-hosted name).
    provider: str

    def parse_request(self, method: str, endpoint: Endpoint, headers: Mapping[str, str],
                      body: bytes) -> RequestInfo | None:
        """``None`` when this is not an LLM operation inferops prices (e.g. GET /v1/models)."""

    def parse_response(self, info: RequestInfo, status: int, headers: Mapping[str, str],
                       body: bytes) -> ParsedResponse:
        """Parse a complete response body (already decompressed)."""

    def stream_parser(self, info: RequestInfo, headers: Mapping[str, str]) -> StreamParser:
        """A parser for a streamed response."""
