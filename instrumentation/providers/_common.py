"""Shared, total (never raising) helpers for the provider adapters.

Framing decoders for the three stream encodings providers use: Server-Sent
Events (OpenAI, Anthropic, Gemini ``alt=sse``, Cohere, Mistral), newline
delimited JSON (Ollama) and a streamed JSON array (Gemini without ``alt=sse``),
plus the binary AWS event-stream (Bedrock). Each decoder is fed arbitrary
fragments and hands back complete events with their exact byte spans, so a
filtering parser can drop one event and return every other byte unchanged.
"""

from __future__ import annotations

import binascii
import re
import struct
from typing import Any, Callable, Mapping

from inferops.names import GenAI, ServiceTier

from ._json import loads as json_loads
from .base import ParsedResponse, RequestInfo

#: Cap on the text kept for estimation/capture, so a huge stream cannot grow memory without bound.
MAX_TEXT_CHARS = 1_000_000
#: Cap on one undecoded event held back; beyond it the stream is declared unparseable.
MAX_EVENT_BYTES = 8 * 1024 * 1024

_loads = json_loads


def loads(body: bytes | str) -> tuple[Any, str]:
    """JSON-decode; returns (value, "") or (None, reason)."""
    if not body:
        return None, "empty body"
    try:
        return _loads(body), ""
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "not json"
    except Exception:  # pragma: no cover - defensive: never raise into the app
        return None, "not json"


try:
    from ._chunkscan import Absorber as _Absorber
    from ._chunkscan import sse_simple as _sse_simple
    from ._chunkscan import top_members as _top_members
except ImportError:  # built without a C compiler: request bodies are decoded whole, chunks tested in Python
    _Absorber = None
    _sse_simple = None
    _top_members = None


class RequestKeys:
    """The top-level request-body members an adapter reads (for :func:`request_fields`), encoded once."""

    __slots__ = ("raw", "names")

    def __init__(self, *names: str) -> None:
        if len(names) > 32 or any(not n.isascii() or '"' in n or "\\" in n for n in names):
            raise ValueError("at most 32 plain ASCII member names")
        self.raw = tuple(n.encode() for n in names)
        self.names = {n.encode(): n for n in names}


def request_fields(body: bytes, keys: RequestKeys) -> dict:
    """The members ``keys`` of a JSON-object request body, decoded; ``{}`` when the body is not a JSON object.

    Why not ``json.loads(body)``: a request body is mostly prompt, and decoding
    a 20 KiB prompt costs ~50 us (100 KiB: ~150 us), more than everything else
    inferops does per call, only to read ``model``, ``stream`` and a few scalars.
    The compiled ``_chunkscan.top_members`` walks the top level of the object,
    skipping the other values without decoding them, and returns a small JSON
    object of the wanted members only, decoded with one ``json.loads``. For a valid JSON body the result equals ``{k: obj[k] for k in keys
    if k in obj}`` of the decoded body (tests/test_request_fields.py); for a body
    that is not valid JSON in a member nobody reads, the members that are read are
    still returned (the provider rejects such a body anyway). Without the compiled
    extension (or for an unusual body: escaped keys, not one object) the body is
    decoded whole, as before. The full object, when needed, is
    :meth:`RequestInfo.parsed_body`.
    """
    if not body:
        return {}
    if _top_members is not None and type(body) is bytes:
        try:
            raw = _top_members(body, keys.raw)
        except Exception:  # pragma: no cover - defensive
            raw = None
        if raw is not None:
            if raw == b"{}":
                return {}
            try:
                return _loads(raw)  # one small object: the wanted members only
            except (ValueError, UnicodeDecodeError, RecursionError):
                pass  # a wanted value that is not JSON: decode the whole body (it fails the same way)
    obj, _ = loads(body)
    if not isinstance(obj, dict):
        return {}
    return {n: obj[n] for n in keys.names.values() if n in obj}


def as_int(value: Any) -> int:
    """A non-negative int from a JSON number; 0 for anything else (bool, str, None, NaN...)."""
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float and value == value and 0 < value < 1e15:
        return int(value)
    return 0


def has_int(value: Any) -> bool:
    return type(value) is int or (type(value) is float and value == value)


def as_str(value: Any, limit: int = 256) -> str:
    return value[:limit] if isinstance(value, str) else ""


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def set_request_params(info: RequestInfo, params: dict, max_tokens_key: str) -> None:
    """Put the request's max-tokens and temperature (wherever the wire format keeps them) on the
    span attributes, when they are JSON numbers (anything else is ignored, never guessed)."""
    if has_int(params.get(max_tokens_key)):
        info.attributes[GenAI.REQUEST_MAX_TOKENS] = as_int(params[max_tokens_key])
    t = params.get("temperature")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        info.attributes[GenAI.REQUEST_TEMPERATURE] = float(t)


def header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header lookup that works for dicts and httpx Headers; "" when absent."""
    try:
        v = headers.get(name)
        if v is None and name.lower() != name:
            v = headers.get(name.lower())
        if v is None:
            for k, val in headers.items():
                if isinstance(k, str) and k.lower() == name:
                    return str(val)
            return ""
        return str(v)
    except Exception:
        return ""


def tier(value: Any) -> str:
    """Map a provider's service-tier string to a catalog tier ("" when not telling)."""
    if not isinstance(value, str):
        return ""
    v = value.lower()
    if v in ("flex",):
        return ServiceTier.FLEX
    if v in ("priority",):
        return ServiceTier.PRIORITY
    if v in ("batch",):
        return ServiceTier.BATCH
    if v in ("default", "standard", "auto", "scale", "standard_only", "on_demand"):
        return ServiceTier.STANDARD
    return ""


def error_response(status: int, obj: Any, default_reason: str) -> ParsedResponse:
    """A ParsedResponse for a non-2xx answer, with the provider error type when found."""
    etype = ""
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            etype = as_str(err.get("type")) or as_str(err.get("code")) or as_str(err.get("status"))
        elif isinstance(err, str):
            etype = "error"
        if not etype:
            etype = as_str(obj.get("type")) if obj.get("type") == "error" else ""
    return ParsedResponse(parse_error=f"http {status}", error_type=etype or default_reason)


class TextSink:
    """Collects generated text up to :data:`MAX_TEXT_CHARS` characters."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: Any) -> None:
        if isinstance(text, str) and text and self.size < MAX_TEXT_CHARS:
            self.parts.append(text)
            self.size += len(text)

    def text(self) -> str:
        return "".join(self.parts)[:MAX_TEXT_CHARS]


#: Undecoded events kept by :class:`LazyText` before they are decoded anyway (bounds memory).
LAZY_RESOLVE_BYTES = 1 << 20


class LazyText:
    """Generated text kept as the raw events that carry it, decoded only if someone reads it.

    Stream parsers hand content-only events here undecoded (``add_raw``) once
    they have seen the first content: the text is needed only for content
    capture and for the tiktoken estimate when a stream ends without usage, so
    most streams never decode these events at all. ``extract(data)`` turns one
    event's data into its text pieces (it may raise: that event then adds
    nothing, as an undecodable event does when parsed eagerly). Order is kept
    between raw events and text added decoded (``add``); the result is the
    same as a :class:`TextSink` fed every piece in stream order.
    """

    __slots__ = ("_sink", "_pending", "_pending_bytes", "_extract", "_absorbed")

    def __init__(self, extract: Callable[[bytes], list]) -> None:
        self._sink = TextSink()
        self._pending: list[bytes | str | tuple[bytes]] = []
        self._pending_bytes = 0
        self._extract = extract
        #: [events, bytes] taken in by this text's compiled absorbers since :meth:`take_absorbed`.
        self._absorbed = [0, 0]

    def add(self, text: Any) -> None:
        if self._pending:
            if isinstance(text, str) and text:
                self._pending.append(text)
        else:
            self._sink.add(text)

    def add_raw(self, data: bytes, fragment: bool = False) -> None:
        """One event's data, or (``fragment``) the raw bytes of several whole SSE events (LF line ends),
        split into events only when resolved."""
        if self._sink.size >= MAX_TEXT_CHARS:
            return
        self._pending.append((data,) if fragment else data)
        self._pending_bytes += len(data)
        if self._pending_bytes > LAZY_RESOLVE_BYTES:
            self.resolve()

    def absorber(self, kind: int, pattern: bytes):
        """A compiled ``_chunkscan.Absorber`` appending fragments to this text's queue (None without the
        extension): ``kind`` 0 is the OpenAI chunk test with ``pattern`` its tier form, 1 the Anthropic
        delta test with ``pattern`` the delta line. It appends while fewer than the bytes left before a
        resolve are queued; what it took in is counted until :meth:`take_absorbed`, which the parser
        calls before it asks for the next absorber and before it reads its events."""
        if _Absorber is None:
            return None
        pending = None if self._sink.size >= MAX_TEXT_CHARS else self._pending  # full: count, keep nothing
        return _Absorber(kind, pattern, pending, self._absorbed, max(0, LAZY_RESOLVE_BYTES - self._pending_bytes))

    def take_absorbed(self) -> int:
        """The events the compiled absorbers took in since the last call; their bytes join the queue's count."""
        absorbed = self._absorbed
        events = absorbed[0]
        if events or absorbed[1]:
            self._pending_bytes += absorbed[1]
            absorbed[0] = absorbed[1] = 0
        return events

    def resolve(self) -> None:
        pending = self._pending
        if not pending:
            return
        # Emptied in place: an Absorber made earlier holds this very list.
        pending = pending[:]
        self._pending.clear()
        self._pending_bytes = 0
        sink, extract = self._sink, self._extract
        for item in pending:
            if type(item) is str:
                sink.add(item)
                continue
            for data in (sse_data_of_block(item[0]) if type(item) is tuple else (item,)):
                try:
                    pieces = extract(data)
                except Exception:  # that event adds nothing, as an undecodable event does when parsed eagerly
                    continue
                for piece in pieces:
                    sink.add(piece)

    def text(self) -> str:
        self.resolve()
        return self._sink.text()


_TEXT_SLOT = ParsedResponse.__dict__["output_text"]


class LazyTextResponse(ParsedResponse):
    """A :class:`ParsedResponse` whose ``output_text`` is decoded from a :class:`LazyText` on first read."""

    __slots__ = ("_lazy",)

    def __init__(self, lazy: LazyText | None = None, response_model: str = "", response_id: str = "",
                 finish_reasons: list[str] | None = None, error_type: str = "") -> None:
        # Positional into the dataclass __init__ (field order: usage, response_model, response_id,
        # finish_reasons, output_text, parse_error, error_type): one per streamed call, and keywords
        # passed on through **kw cost twice as much.
        _PARSED_INIT(self, None, response_model, response_id, [] if finish_reasons is None else finish_reasons,
                     "", "", error_type)
        self._lazy = lazy

    def _get_text(self) -> str:
        lazy = self._lazy
        if lazy is not None:
            self._lazy = None
            try:
                _TEXT_SLOT.__set__(self, lazy.text())
            except Exception:  # pragma: no cover - defensive: reading text must never raise
                _TEXT_SLOT.__set__(self, "")
        return _TEXT_SLOT.__get__(self)

    def _set_text(self, value: str) -> None:
        self._lazy = None
        _TEXT_SLOT.__set__(self, value)

    output_text = property(_get_text, _set_text)  # type: ignore[assignment]


_PARSED_INIT = ParsedResponse.__init__


# ---------------------------------------------------------------------------
# Server-Sent Events
# ---------------------------------------------------------------------------

_SSE_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def sse_fields(raw: bytes) -> tuple[str, bytes]:
    """(event name, data) of one SSE event block (data lines joined with LF)."""
    if raw.startswith(b"data:") and b"\n" not in raw and b"\r" not in raw:  # the common one-line event
        v = raw[5:]
        return "", (v[1:] if v.startswith(b" ") else v)
    event = ""
    data: list[bytes] = []
    for line in (raw.split(b"\n") if b"\r" not in raw else raw.splitlines()):
        if line.startswith(b"data:"):
            v = line[5:]
            data.append(v[1:] if v.startswith(b" ") else v)
        elif line.startswith(b"event:"):
            v = line[6:]
            event = (v[1:] if v.startswith(b" ") else v).decode("utf-8", "replace")
    return event, b"\n".join(data)


class SSEStream:
    """Incremental SSE splitter, optionally dropping events (filter mode).

    ``on_event(event_name, data) -> bool`` is called per complete event; when it
    returns True and ``filtering`` is on, that event's bytes (including its
    terminating blank line) are left out of what :meth:`feed` returns.

    Streams whose lines end in LF only (every provider in practice) take a
    fast path: ``bytes.find`` for the blank line, no copy of a fragment that
    holds whole events, and (filter mode) the fragment itself handed back when
    nothing is dropped or held. Once a CR is seen the general splitter (CRLF,
    CR) takes over for the rest of the stream.
    """

    __slots__ = ("_buf", "_scan", "_on_event", "_filtering", "broken", "_cr")

    @property
    def idle(self) -> bool:
        """Every byte fed so far formed whole LF-terminated events, none is held back, and the stream is
        not broken: a fragment of whole LF events may then be taken in without this splitter (the
        parsers' fragment fast path) and the splitter's state stays right."""
        return not self._buf and not self._cr and not self.broken

    def __init__(self, on_event: Callable[[str, bytes], bool], filtering: bool = False) -> None:
        self._buf = bytearray()
        self._scan = 0
        self._on_event = on_event
        self._filtering = filtering
        self.broken = ""
        self._cr = False

    def feed(self, data: bytes) -> bytes:
        if self.broken:
            return data
        if not self._cr:
            if not self._buf and _sse_simple is not None and type(data) is bytes:
                # A fragment of whole simple events (the usual network read): split in C, same events and
                # the same bytes back as _feed_lf (tests/test_sse_simple.py); None sends it to _feed_lf.
                events = _sse_simple(data)
                if events is not None:
                    return self._simple_events(data, events)
            if b"\r" not in data:
                return self._feed_lf(data)
            self._cr = True
        return self._feed_any(data)

    def _simple_events(self, data: bytes, events: list) -> bytes:
        on_event = self._on_event
        self._scan = 0
        if not self._filtering:
            for name, payload, _ in events:
                try:
                    on_event(name, payload)
                except Exception:
                    pass
            return data
        pieces: list[bytes] | None = None
        start = kept = 0
        for name, payload, end in events:
            try:
                drop = bool(on_event(name, payload))
            except Exception:
                drop = False
            if drop:
                if pieces is None:
                    pieces = []
                if start > kept:
                    pieces.append(data[kept:start])
                kept = end
            start = end
        if pieces is None:
            return data
        if start > kept:
            pieces.append(data[kept:start])
        return b"".join(pieces)

    def _event(self, block: bytes) -> bool:
        try:
            name, payload = sse_fields(block)
            return bool(self._on_event(name, payload))
        except Exception:
            return False

    def _feed_lf(self, data: bytes) -> bytes:
        buf = self._buf
        if buf:
            pos = max(0, len(buf) - 1)  # a held LF may end the event with the new fragment's first byte
            buf += data
            work = bytes(buf)
            buf.clear()
            carried = True
        else:
            work, pos, carried = data, 0, False
        find = work.find
        filtering = self._filtering
        pieces: list[bytes] | None = None  # filter mode, once something is dropped: what the caller gets
        start = kept = 0  # start of the current event; start of the bytes not yet put into ``pieces``
        while True:
            i = find(b"\n\n", pos)
            if i < 0:
                break
            end = i + 2
            if i == start:
                drop = False
            else:
                block = work[start:i]
                if block.startswith(b"data:") and b"\n" not in block:  # one-line event (sse_fields inlined)
                    try:
                        drop = bool(self._on_event("", block[6:] if block[5:6] == b" " else block[5:]))
                    except Exception:
                        drop = False
                elif block.startswith(b"event:") and block.startswith(b"data:", block.find(b"\n") + 1) \
                        and block.count(b"\n") == 1:  # "event: x" + one data line (Anthropic's shape, inlined)
                    nl = block.find(b"\n")
                    name = block[7:nl] if block[6:7] == b" " else block[6:nl]
                    try:
                        drop = bool(self._on_event(name.decode("utf-8", "replace"),
                                                   block[nl + 7:] if block[nl + 6:nl + 7] == b" " else block[nl + 6:]))
                    except Exception:
                        drop = False
                else:
                    drop = bool(block.strip()) and self._event(block)
            if drop and filtering:
                if pieces is None:
                    pieces = []
                if start > kept:
                    pieces.append(work[kept:start])
                kept = end
            start = pos = end
        if start < len(work):
            buf += work[start:] if start else work
            self._scan = len(buf)
            if len(buf) > MAX_EVENT_BYTES:
                self.broken = "event too large"
                buf.clear()
                if not filtering:
                    return data
                if pieces is None:
                    return work[kept:] if carried or kept else data
                pieces.append(work[kept:])
                return b"".join(pieces)
        else:
            self._scan = 0
        if not filtering:
            return data
        if pieces is None:
            if not carried and start == len(work):
                return data  # nothing dropped, nothing held: the fragment as it came
            return work[:start]
        if start > kept:
            pieces.append(work[kept:start])
        return b"".join(pieces)

    def _feed_any(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray() if self._filtering else None
        start = 0
        search = _SSE_BOUNDARY.search
        pos = max(0, self._scan - 3)
        while True:
            m = search(buf, pos)
            if m is None:
                break
            end = m.end()
            block = bytes(buf[start:m.start()])
            drop = False
            if block.strip():
                drop = self._event(block)
            if out is not None and not drop:
                out += buf[start:end]
            start = pos = end
        if start:
            del buf[:start]
        self._scan = len(buf)
        if len(buf) > MAX_EVENT_BYTES:
            self.broken = "event too large"
            held = bytes(buf)
            buf.clear()
            if out is not None:
                out += held
        if out is None:
            return data
        return bytes(out)

    def flush(self) -> bytes:
        """The held-back partial event; parsed too (a last event without a trailing blank line)."""
        held = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        if held.strip() and not self.broken:
            try:
                name, payload = sse_fields(held)
                if self._on_event(name, payload) and self._filtering:
                    return b""
            except Exception:
                pass
        return held if self._filtering else b""

    def pending(self) -> bytes:
        return bytes(self._buf)


def sse_data_of_block(block: bytes) -> list[bytes]:
    """The data of every event in a fragment of whole SSE events (LF line ends), in order."""
    out = []
    for raw in block.split(b"\n\n"):
        if raw.strip():
            _, data = sse_fields(raw)
            if data:
                out.append(data)
    return out


# ---------------------------------------------------------------------------
# Newline-delimited JSON (Ollama) and a streamed JSON array (Gemini alt=json)
# ---------------------------------------------------------------------------


class LineStream:
    """Incremental NDJSON splitter: ``on_line(bytes)`` per complete non-empty line."""

    __slots__ = ("_buf", "_on_line", "broken")

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._buf = bytearray()
        self._on_line = on_line
        self.broken = ""

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        buf = self._buf
        buf += data
        if b"\n" not in data:
            if len(buf) > MAX_EVENT_BYTES:
                self.broken = "line too large"
                buf.clear()
            return
        *lines, rest = bytes(buf).split(b"\n")
        buf.clear()
        buf += rest
        for line in lines:
            if line.strip():
                try:
                    self._on_line(line)
                except Exception:
                    pass

    def flush(self) -> None:
        rest = bytes(self._buf)
        self._buf.clear()
        if rest.strip() and not self.broken:
            try:
                self._on_line(rest)
            except Exception:
                pass


class JSONArrayStream:
    """Splits a streamed top-level JSON array ``[{...},{...}]`` into its objects."""

    __slots__ = ("_buf", "_depth", "_in_str", "_esc", "_start", "_on_obj", "broken", "_pos")

    def __init__(self, on_obj: Callable[[bytes], None]) -> None:
        self._buf = bytearray()
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._start = -1
        self._pos = 0
        self._on_obj = on_obj
        self.broken = ""

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        buf = self._buf
        buf += data
        i = self._pos
        n = len(buf)
        depth, in_str, esc, start = self._depth, self._in_str, self._esc, self._start
        cut = 0
        while i < n:
            c = buf[i]
            if in_str:
                if esc:
                    esc = False
                elif c == 0x5C:  # backslash
                    esc = True
                elif c == 0x22:
                    in_str = False
            elif c == 0x22:
                in_str = True
            elif c == 0x7B:  # {
                if depth == 0:
                    start = i
                depth += 1
            elif c == 0x7D:  # }
                depth -= 1
                if depth == 0 and start >= 0:
                    try:
                        self._on_obj(bytes(buf[start:i + 1]))
                    except Exception:
                        pass
                    start = -1
                    cut = i + 1
                elif depth < 0:
                    self.broken = "unbalanced json"
                    buf.clear()
                    return
            i += 1
        if start < 0 and cut:
            del buf[:cut]
            i -= cut
        elif start > 0:
            del buf[:start]
            i -= start
            start = 0
        self._pos = i
        self._depth, self._in_str, self._esc, self._start = depth, in_str, esc, start
        if len(buf) > MAX_EVENT_BYTES:
            self.broken = "object too large"
            buf.clear()


# ---------------------------------------------------------------------------
# AWS event-stream (application/vnd.amazon.eventstream)
# ---------------------------------------------------------------------------


def _es_headers(raw: bytes) -> dict[str, str]:
    """Decode event-stream headers; only string (type 7) values are kept, others skipped."""
    out: dict[str, str] = {}
    i, n = 0, len(raw)
    sizes = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    while i < n:
        nlen = raw[i]
        name = raw[i + 1:i + 1 + nlen].decode("utf-8", "replace")
        i += 1 + nlen
        if i >= n:
            break
        typ = raw[i]
        i += 1
        if typ in (6, 7):
            (vlen,) = struct.unpack_from("!H", raw, i)
            value = raw[i + 2:i + 2 + vlen]
            i += 2 + vlen
            if typ == 7:
                out[name] = value.decode("utf-8", "replace")
        elif typ in sizes:
            i += sizes[typ]
        else:
            break
    return out


class EventStreamDecoder:
    """Incremental AWS event-stream decoder: ``on_message(headers, payload)`` per message.

    The prelude CRC is checked so garbage stops decoding (``broken`` set)
    instead of waiting for a bogus multi-gigabyte length.
    """

    __slots__ = ("_buf", "_on_message", "broken")

    def __init__(self, on_message: Callable[[dict[str, str], bytes], None]) -> None:
        self._buf = bytearray()
        self._on_message = on_message
        self.broken = ""

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        buf = self._buf
        buf += data
        while len(buf) >= 12:
            total, hlen, pcrc = struct.unpack_from("!III", buf, 0)
            if binascii.crc32(bytes(buf[:8])) & 0xFFFFFFFF != pcrc or total < 16 or hlen > total - 16 \
                    or total > MAX_EVENT_BYTES:
                self.broken = "bad event-stream prelude"
                buf.clear()
                return
            if len(buf) < total:
                return
            msg = bytes(buf[:total])
            del buf[:total]
            try:
                headers = _es_headers(msg[12:12 + hlen])
                self._on_message(headers, msg[12 + hlen:total - 4])
            except Exception:
                pass

    def pending(self) -> int:
        return len(self._buf)
