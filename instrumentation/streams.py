"""Tee over a streamed response body: bytes to the caller at once, a decompressed copy to the parser.

The tee replaces ``response.stream`` (httpx ``BoundSyncStream`` /
``BoundAsyncStream``) and keeps the original inside, so closing still
reaches the connection and ``response.elapsed`` still works (httpx2 reads it
from ``response.stream.elapsed``). It must subclass the library's own
``SyncByteStream``/``AsyncByteStream`` (httpx checks), so the concrete classes
are made per library by :func:`tee_classes`.

Everything the span needs at the end lives in a separate state object (the
``call``): when the caller abandons a stream without closing it, the tee's
``__del__`` ends the span (``Call.abandoned``). A ``__del__`` rather than a
``weakref.finalize``: making and detaching a finalizer costs ~2.3 us per
stream, a ``__del__`` that finds the call done ~0.2 us. Like the finalizer it
replaces (``atexit=False``), it does nothing while the interpreter shuts down.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any


class Decoder:
    """gzip / deflate decompression of a copy of the stream, for the parser only."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self._raw_deflate_tried = False
        if encoding in ("gzip", "x-gzip"):
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._obj = zlib.decompressobj()
        else:
            raise ValueError(f"unsupported content-encoding {encoding!r}")

    def decode(self, data: bytes) -> bytes:
        try:
            return self._obj.decompress(data)
        except zlib.error:
            if self.encoding == "deflate" and not self._raw_deflate_tried:
                # Some servers send raw deflate without the zlib header (httpx does the same retry).
                self._raw_deflate_tried = True
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._obj.decompress(data)
            raise


def make_decoder(content_encoding: str) -> Decoder | None:
    """None for identity; raises ValueError for encodings we do not parse (br, zstd, stacked)."""
    enc = (content_encoding or "").strip().lower()
    if not enc or enc == "identity":
        return None
    return Decoder(enc)


class _Tee:
    """What both tees share: the wrapped stream, the call, and the span's end on garbage collection."""

    def __init__(self, inner: Any, call: Any):
        self._inner = inner
        self._call = call

    def __del__(self) -> None:
        # Collected without close(): the caller abandoned the stream. Never raises (nor at shutdown, when
        # module globals may already be gone: then nothing is recorded, as with an atexit=False finalizer).
        try:
            call = self.__dict__.get("_call")
            if call is not None and not call._done and not sys.is_finalizing():
                call.abandoned()
        except Exception:
            pass

    @property
    def elapsed(self):
        return getattr(self._inner, "elapsed", None)


class _SyncTee(_Tee):
    """Mixin; concrete classes also subclass the library's ``SyncByteStream``."""

    def __iter__(self):
        call = self._call
        absorb = None  # the parser's text-only fast path, once the call has one (Call.steady)
        try:
            for chunk in self._inner:
                if absorb is not None:
                    try:
                        if absorb(chunk):
                            yield chunk
                            continue
                    except Exception:  # absorb changes nothing before it returns True: on_chunk takes it
                        call.steady = None
                if call.early and call.hold(chunk):
                    yield chunk  # the caller first; parsed when it comes back for more (Call.hold)
                    call.release()
                else:
                    out = call.on_chunk(chunk)
                    if out:
                        yield out
                absorb = call.steady
        except GeneratorExit:
            # The consumer stopped iterating; close() or garbage collection of the tee ends the span.
            raise
        except BaseException as exc:
            call.failed(exc)
            raise
        tail = call.on_eof()
        if tail:
            yield tail

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._call.closed()


class _AsyncTee(_Tee):
    """Mixin; concrete classes also subclass the library's ``AsyncByteStream``."""

    async def __aiter__(self):
        call = self._call
        absorb = None  # as in _SyncTee.__iter__
        try:
            async for chunk in self._inner:
                if absorb is not None:
                    try:
                        if absorb(chunk):
                            yield chunk
                            continue
                    except Exception:
                        call.steady = None
                if call.early and call.hold(chunk):
                    yield chunk  # as in _SyncTee.__iter__
                    call.release()
                else:
                    out = call.on_chunk(chunk)
                    if out:
                        yield out
                absorb = call.steady
        except GeneratorExit:
            # The consumer stopped iterating; close() or garbage collection of the tee ends the span.
            raise
        except BaseException as exc:
            call.failed(exc)
            raise
        tail = call.on_eof()
        if tail:
            yield tail

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._call.closed()


def tee_classes(lib) -> tuple[type, type]:
    """(sync tee, async tee) subclassing ``lib.SyncByteStream`` / ``lib.AsyncByteStream``."""
    sync_cls = type("InferopsSyncTee", (_SyncTee, lib.SyncByteStream), {"__module__": __name__})
    async_cls = type("InferopsAsyncTee", (_AsyncTee, lib.AsyncByteStream), {"__module__": __name__})
    return sync_cls, async_cls
