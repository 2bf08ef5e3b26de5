"""Patching aiohttp's ``ClientSession._request`` (google-genai's async transport, and plain aiohttp code).

``ClientSession.request/get/post`` and google-genai's async client all call
``_request``, once per attempt, with the caller's ``data=``/``json=``,
``headers=`` and ``params=``. This module adapts that call to the transport-
neutral :class:`~inferops.instrumentation.runtime.Runtime` (the same ``begin``
-> ``Call`` machinery, adapters, span, cost and metrics as httpx); it parses
nothing itself.

Before the request leaves
    One URL build plus one router lookup for every request; other hosts go
    straight to the original ``_request``. For LLM hosts, a light request view
    (method, URL, merged headers, body bytes) goes through ``Runtime.begin``:
    ``X-Inferops-*`` and (by default) ``baggage`` are removed from the merged
    headers, including ones set as session default headers (see
    :func:`_prepare_headers`). The body is read only when it is ``bytes``,
    ``str`` or ``json=`` (serialized with the session's own serializer, for
    parsing only); streams, files, forms and payload objects are never read.
    A rewritten body (usage injection, budget downgrade, routing) is passed on
    as ``data=`` of the same kind; the rest of the call is unchanged.

After the response headers
    aiohttp returns the response before the body is read, and feeds the body,
    already decompressed, into ``response.content`` (a ``StreamReader``, which
    has ``__slots__``). The reader of a tracked response is switched to a
    subclass whose ``feed_data``/``feed_eof``/``set_exception`` hand each
    fragment to the ``Call`` first and then do exactly what the original does,
    so every read API (``read``, ``text``, ``json``, ``readline``,
    ``iter_chunked``, ``iter_any``, ``readany``) sees the provider's bytes as
    they arrive, with no buffering added. Bytes that arrived with the headers
    are already in the reader's buffer: they are observed in place.

The span ends (the rules of ``streams.py``) on EOF; on ``release()``/``close()``
of the response before the end (``stream_closed`` unless the parser saw the end
of the answer); on a read error (its type); and when the response is garbage
collected unfinished (``stream_abandoned``). Note that aiohttp keeps an unread
response alive until its connection finishes or fails (the reader, held by the
connection, refers back to the response), so a dropped response whose stream
completes is recorded at its EOF, complete and priced, as the provider bills it.
"""

from __future__ import annotations

import collections
import functools
import weakref
from typing import Any, Callable

from .patch import Hooks

#: reader id -> its _Tracker while a tracked response body is in flight.
_TRACKERS: dict[int, "_Tracker"] = {}
#: StreamReader class -> its tracked subclass.
_TRACKED_CLASSES: dict[type, type] = {}


#: CIMultiDict subclass marking headers inferops already merged with the session's defaults (_prepare_headers).
_MERGED_CLS: type | None = None


def _merged_class(cimultidict: type) -> type:
    global _MERGED_CLS
    if _MERGED_CLS is None:
        _MERGED_CLS = type("CIMultiDict", (cimultidict,), {"__module__": __name__})
    return _MERGED_CLS


class _URLView:
    """What ``Runtime.begin`` and ``Call`` read of a URL (httpx's shape: port None when default)."""

    __slots__ = ("scheme", "host", "port", "path", "query")

    def __init__(self, url) -> None:
        self.scheme = url.scheme
        self.host = url.host
        self.port = _explicit_port(url)
        self.path = url.path
        self.query = url.raw_query_string


def _explicit_port(url) -> int | None:
    try:
        return url.explicit_port
    except AttributeError:  # yarl < 1.10
        port = url.port
        return None if port == {"http": 80, "https": 443}.get(url.scheme) else port


class _RequestView:
    """What ``Runtime.begin`` reads and may change: headers in place, the body via ``_content``."""

    __slots__ = ("method", "url", "headers", "_content", "stream")

    def __init__(self, method: str, url: _URLView, headers, body: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self._content = body
        self.stream = None


class _ResponseView:
    """What ``Call.response`` reads; ``stream`` carries the aiohttp response to :func:`_attach`."""

    __slots__ = ("status_code", "headers", "stream")

    def __init__(self, status: int, headers, stream) -> None:
        self.status_code = status
        self.headers = headers
        self.stream = stream


def _no_stream(body: bytes) -> None:
    """``Hooks.byte_stream``: aiohttp builds its own payload from the ``data=`` we pass on."""
    return None


# -- the reader side ------------------------------------------------------------------------------


class _Tracker:
    """One tracked body: the call, the reader's original class, the finalizer on the response."""

    __slots__ = ("call", "key", "base", "fin")

    def __init__(self, call, key: int, base: type) -> None:
        self.call = call
        self.key = key
        self.base = base
        self.fin = None

    def release(self) -> None:
        """Forget the reader (its span is ending); keep the finalizer from firing."""
        if _TRACKERS.get(self.key) is self:
            del _TRACKERS[self.key]
        fin = self.fin
        if fin is not None:
            fin.detach()

    def abandoned(self) -> None:
        """The response was garbage-collected unfinished."""
        if _TRACKERS.get(self.key) is self:
            del _TRACKERS[self.key]
        self.call.abandoned()


class _TrackMixin:
    """Overrides of a tracked ``StreamReader``: observe, then do exactly what the original does."""

    __slots__ = ()

    def feed_data(self, data, *args, **kwargs):
        tr = _TRACKERS.get(id(self))
        if tr is None or not data:
            return super().feed_data(data, *args, **kwargs)
        call = tr.call
        absorb = call.steady
        if absorb is not None:  # the parser's text-only fast path (see streams._SyncTee.__iter__)
            try:
                if absorb(data):
                    return super().feed_data(data, *args, **kwargs)
            except Exception:
                call.steady = None
        out = call.on_chunk(data)  # never raises
        if out is data:
            return super().feed_data(data, *args, **kwargs)
        # filter mode (inferops injected the usage option): deliver what the parser let through
        if not out:
            return False
        return super().feed_data(out, *((len(out),) + args[1:] if args else ()), **kwargs)

    def feed_eof(self, *args, **kwargs):
        tr = _TRACKERS.get(id(self))
        if tr is not None:
            tr.release()
            tail = tr.call.on_eof()  # never raises; ends the span
            if tail:
                try:
                    super().feed_data(tail, len(tail))
                except Exception as exc:
                    tr.call.rt.count_internal("aiohttp stream tail", exc, tr.call.info.provider)
        result = super().feed_eof(*args, **kwargs)
        if tr is not None:
            _restore_class(self, tr.base)
        return result

    def set_exception(self, exc, *args, **kwargs):
        tr = _TRACKERS.get(id(self))
        if tr is not None:
            tr.release()
            if _closed_by_caller(exc):
                tr.call.closed()  # release()/close() of the response before the end
            else:
                tr.call.failed(exc)
        result = super().set_exception(exc, *args, **kwargs)
        if tr is not None:
            _restore_class(self, tr.base)
        return result


#: (aiohttp.streams.StreamReader, EmptyStreamReader), set by patch().
_READERS: list[Any] = [(), ()]
#: aiohttp's ``_CONNECTION_CLOSED_EXCEPTION``: what ``ClientResponse.release()/close()`` set on an unfinished body.
_CLOSED_BY_CALLER: list[Any] = [None]


def _closed_by_caller(exc: BaseException) -> bool:
    closed = _CLOSED_BY_CALLER[0]
    if closed is not None:
        return exc is closed
    # aiohttp without the shared instance: a fresh ClientConnectionError("Connection closed")
    return type(exc).__name__ == "ClientConnectionError" and str(exc) == "Connection closed"


def _restore_class(reader, base: type) -> None:
    try:
        reader.__class__ = base
    except Exception:
        pass


def _tracked_class(base: type) -> type:
    cls = _TRACKED_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (_TrackMixin, base), {"__slots__": (), "__module__": __name__,
                                                        "__qualname__": base.__qualname__})
        _TRACKED_CLASSES[base] = cls
    return cls


def _set_buffered(reader, old: bytes, new: bytes) -> None:
    """Replace the not-yet-read bytes ``old`` in the reader's buffer by ``new`` (filter mode only)."""
    buf = reader._buffer
    buf.clear()
    if new:
        buf.append(new)
    reader._buffer_offset = 0
    delta = len(new) - len(old)
    reader._size += delta
    reader.total_bytes += delta
    splits = reader._http_chunk_splits
    if splits:
        total = reader.total_bytes
        reader._http_chunk_splits = collections.deque(sorted({min(p, total) for p in splits}))


def _attach(response, call) -> None:
    """``Hooks.async_tee``: observe the body of ``response`` for ``call`` (called by ``Call.response``).

    May raise (``Call.response`` counts it and ends the span); never changes what the caller reads
    unless filtering, and then only in a consistent state.
    """
    reader = response.content
    if reader is None or isinstance(reader, _READERS[1]):
        call.on_eof()  # no body (HEAD, 204, 304...)
        return
    if not isinstance(reader, _READERS[0]):
        call.rt.count_internal("aiohttp reader type", None, call.info.provider)
        call.closed()
        return
    # Bytes that came with the headers are already buffered; the caller has read nothing yet.
    buf = reader._buffer
    offset = reader._buffer_offset
    if buf:
        data = b"".join(buf) if len(buf) > 1 else buf[0]
        if offset:
            data = data[offset:]
    else:
        data = b""
    out = call.on_chunk(data) if data else data
    if reader.is_eof() or reader.exception() is not None:
        exc = reader.exception()
        if exc is not None:
            if out is not data:
                _set_buffered(reader, data, out)
            call.failed(exc)
            return
        tail = call.on_eof()
        final = out + tail if tail else out
        if final is not data:
            _set_buffered(reader, data, final)
        return
    if out is not data:
        _set_buffered(reader, data, out)
    base = type(reader)
    key = id(reader)
    tr = _Tracker(call, key, base)
    fin = weakref.finalize(response, tr.abandoned)
    fin.atexit = False
    tr.fin = fin
    _TRACKERS[key] = tr
    try:
        reader.__class__ = _tracked_class(base)
    except Exception:
        tr.release()
        raise


# -- the request side -----------------------------------------------------------------------------


def _request_body(session, data: Any, json_obj: Any) -> tuple[bytes, str] | None:
    """(body bytes for parsing, kind) or None when the body must not (or cannot) be read.

    Streams, files, async generators, forms and payload objects are never touched; a body aiohttp itself
    will refuse (both ``data`` and ``json``, an unserializable object) is left for aiohttp to report.
    """
    try:
        if json_obj is not None:
            if data is not None:
                return None
            dumps_b = getattr(session, "_json_serialize_bytes", None)
            if dumps_b is not None:
                return bytes(dumps_b(json_obj)), "json"
            return session._json_serialize(json_obj).encode("utf-8"), "json"
        if data is None:
            return b"", "none"
        if isinstance(data, bytes):
            return data, "bytes"
        if isinstance(data, (bytearray, memoryview)):
            return bytes(data), "bytes"
        if isinstance(data, str):
            return data.encode("utf-8"), "str"  # aiohttp's StringPayload encodes str as UTF-8
    except Exception:
        return None
    return None


def _send_kwargs(session, kwargs: dict, headers, body: bytes, kind: str, new_body: bytes,
                 length: str | None, skip) -> dict:
    """The keyword arguments for the original ``_request``: merged headers, the rewritten body if any."""
    out = dict(kwargs)
    out["headers"] = headers
    if new_body is body or kind in ("unread", "none"):
        # Nothing rewritten (or nothing we may rewrite): undo a Content-Length the runtime may have set.
        if headers.get("Content-Length") != length:
            headers.popall("Content-Length", None)
            if length is not None:
                headers["Content-Length"] = length
        return out
    if length is None:
        headers.popall("Content-Length", None)  # aiohttp computes it from the new body
    if kind == "str":
        out["data"] = new_body.decode("utf-8")
    else:
        out["data"] = new_body
    if kind == "json":
        out["json"] = None
        if "Content-Type" not in headers and not _skipped(session, skip, "Content-Type"):
            headers["Content-Type"] = "application/json"  # what aiohttp sets for json=
    return out


def _skipped(session, skip, name: str) -> bool:
    lowered = name.lower()
    for group in (skip or (), getattr(session, "_skip_auto_headers", None) or ()):
        if str(group).lower() == lowered:
            return True
    return False


def _make_request(orig: Callable, hooks: Hooks, state) -> Callable:
    @functools.wraps(orig)
    async def _request(self, method, str_or_url, **kwargs):
        rt = state.runtime
        if rt is None:
            return await orig(self, method, str_or_url, **kwargs)
        prepared = _begin(rt, self, method, str_or_url, kwargs, hooks)  # raises only BudgetExceededError
        if prepared is None:
            return await orig(self, method, str_or_url, **kwargs)
        call, send_kwargs = prepared
        if call is None:
            return await orig(self, method, str_or_url, **send_kwargs)
        token = call.enter()
        try:
            response = await orig(self, method, str_or_url, **send_kwargs)
        except BaseException as exc:
            call.exit(token)
            call.transport_error(exc)
            raise
        call.exit(token)
        _observe(call, response, kwargs.get("auto_decompress"), self)
        return response

    _request.__inferops_original__ = orig
    return _request


def _begin(rt, session, method, str_or_url, kwargs: dict, hooks: Hooks):
    """None: not an LLM host (send unchanged). Else (call or None, kwargs to send). Raises only BudgetExceededError."""
    from inferops.errors import BudgetExceededError

    try:
        url = session._build_url(str_or_url)
        adapter = rt.router.route(url.scheme, url.host, _explicit_port(url), url.path)
        if adapter is None:
            return None
    except Exception:
        return None  # aiohttp reports a bad URL itself
    try:
        params = kwargs.get("params")
        if params:
            url = url.extend_query(params)
        read = _request_body(session, kwargs.get("data"), kwargs.get("json"))
        body, kind = read if read is not None else (b"", "unread")
        headers = session._prepare_headers(kwargs.get("headers"))
        headers = _merged_class(type(headers))(headers)
        length = headers.get("Content-Length")
        view = _RequestView(str(method).upper(), _URLView(url), headers, body)
    except Exception as exc:
        rt.count_internal("aiohttp request", exc)
        return None
    call = rt.begin(view, hooks, adapter)  # raises only BudgetExceededError
    try:
        new_body = view._content
        if not isinstance(new_body, bytes):
            new_body = body
        send = _send_kwargs(session, kwargs, headers, body, kind, new_body, length, kwargs.get("skip_auto_headers"))
    except BudgetExceededError:
        raise
    except Exception as exc:
        rt.count_internal("aiohttp request", exc)
        if call is not None:
            call.abort()
        # the headers view is ours: send it (attribution headers stay removed), with the caller's body
        return None, {**kwargs, "headers": headers}
    return call, send


def _observe(call, response, auto_decompress, session) -> None:
    """Hand the response to the call (``Call.response`` -> :func:`_attach`). Never raises."""
    try:
        if auto_decompress is None:
            auto_decompress = getattr(session, "_auto_decompress", True)
        headers = response.headers
        if auto_decompress and "Content-Encoding" in headers:
            # aiohttp already decompressed what reaches the reader: the parser must not decode again.
            headers = headers.copy()
            headers.popall("Content-Encoding", None)
        call.response(_ResponseView(response.status, headers, response), True, True)
    except Exception as exc:
        try:
            call.rt.count_internal("aiohttp response", exc, call.info.provider)
            call.closed()
        except Exception:
            pass


# -- install / remove -------------------------------------------------------------------------------


def _make_prepare_headers(orig: Callable) -> Callable:
    @functools.wraps(orig)
    def _prepare_headers(self, headers):
        # Headers inferops merged with the session defaults (and from which it removed X-Inferops-* and
        # baggage) must not be merged again: the defaults would bring those headers back.
        if headers is not None and type(headers) is _MERGED_CLS:
            return headers
        return orig(self, headers)

    _prepare_headers.__inferops_original__ = orig
    return _prepare_headers


def patch(state) -> bool:
    """Patch aiohttp when importable; originals go to ``state.originals``. False when aiohttp is absent."""
    try:
        import aiohttp
        from aiohttp import client_reqrep
        from aiohttp.streams import EmptyStreamReader, StreamReader
        from multidict import CIMultiDict
    except ImportError:
        return False
    _READERS[:] = [StreamReader, EmptyStreamReader]
    _CLOSED_BY_CALLER[0] = getattr(client_reqrep, "_CONNECTION_CLOSED_EXCEPTION", None)
    _merged_class(CIMultiDict)
    hooks = Hooks(sync_tee=_attach, async_tee=_attach, byte_stream=_no_stream)
    cls = aiohttp.ClientSession
    current = cls.__dict__.get("_request")
    prep = cls.__dict__.get("_prepare_headers")
    if current is None or prep is None or hasattr(current, "__inferops_original__"):
        return False
    cls._prepare_headers = _make_prepare_headers(prep)
    state.originals.append((cls, "_prepare_headers", prep))
    cls._request = _make_request(current, hooks, state)
    state.originals.append((cls, "_request", current))
    return True


__all__ = ["patch"]
