"""Bounded (by bytes) forwarding queue and the thread that exports batches downstream.

Every accepted export request is queued as its enriched protobuf encoding.
Serialized ``ExportTraceServiceRequest`` messages concatenate into one valid
message (``resource_spans`` is a repeated field), so a batch is the plain
concatenation of queued requests up to ``serve_batch_bytes``: no re-encoding.

Bytes stay counted against the bound until their batch is delivered or
dropped, so a slow or dead downstream fills the queue and the server answers
senders 503 + ``Retry-After`` (their own queues then hold the data) instead of
accepting what it cannot deliver. A batch is retried on 429/502/503/504
(honouring ``Retry-After``) and on connection errors with exponential back-off
and full jitter, for at most ``serve_retry_max_seconds``; any other answer
drops it. Every dropped span is counted (``inferops_serve_spans_dropped_total``)
and logged.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from inferops.names import DropReason

from .otlp import PROTOBUF, Encoded

_log = logging.getLogger("inferops.serve.forwarder")

RETRYABLE = frozenset({429, 502, 503, 504})
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0
RETRY_AFTER_MAX = 60.0


class ForwardQueue:
    """FIFO of encoded requests bounded by total bytes (queued + in flight)."""

    def __init__(self, max_bytes: int, on_bytes: Callable[[int], None] | None = None):
        self.max_bytes = max_bytes
        self._items: deque[Encoded] = deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition()
        self._on_bytes = on_bytes or (lambda delta: None)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def fill(self) -> float:
        return self._bytes / self.max_bytes

    def offer(self, item: Encoded) -> bool:
        """Queue ``item``; False when it does not fit or the queue is closed (nothing queued)."""
        n = len(item.body)
        with self._cond:
            if self._closed or self._bytes + n > self.max_bytes:
                return False
            self._items.append(item)
            self._bytes += n
            self._cond.notify()
        self._on_bytes(n)
        return True

    def take(self, max_bytes: int, timeout: float) -> list[Encoded] | None:
        """Up to ``max_bytes`` of items (at least one); [] on timeout; None once closed and empty."""
        with self._cond:
            if not self._items:
                if self._closed:
                    return None
                self._cond.wait(timeout)
                if not self._items:
                    return None if self._closed else []
            batch = [self._items.popleft()]
            size = len(batch[0].body)
            while self._items and size + len(self._items[0].body) <= max_bytes:
                item = self._items.popleft()
                size += len(item.body)
                batch.append(item)
            return batch

    def release(self, batch: list[Encoded]) -> None:
        """The batch was delivered or dropped: its bytes no longer count."""
        n = sum(len(i.body) for i in batch)
        with self._cond:
            self._bytes -= n
        self._on_bytes(-n)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain_all(self) -> list[Encoded]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items


@dataclass
class ForwarderStats:
    """Callbacks into the service metrics."""

    forwarded: Callable[[int], None]
    dropped: Callable[[int, str], None]
    retried: Callable[[str], None]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, min(RETRY_AFTER_MAX, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, min(RETRY_AFTER_MAX, when - time.time()))


class Forwarder(threading.Thread):
    """Exports queued batches to ``url`` (OTLP/HTTP protobuf) until the queue is closed and empty."""

    def __init__(self, queue: ForwardQueue, url: str, stats: ForwarderStats, *, batch_bytes: int,
                 retry_max_seconds: float, timeout: float, headers: dict[str, str] | None = None):
        super().__init__(name="inferops-forwarder", daemon=True)
        self.queue = queue
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/v1/traces") + (f"?{parts.query}" if parts.query else "")
        self.stats = stats
        self.batch_bytes = batch_bytes
        self.retry_max_seconds = retry_max_seconds
        self.timeout = timeout
        self.headers = {"Content-Type": PROTOBUF, **(headers or {})}
        self._conn: http.client.HTTPConnection | None = None
        #: Monotonic time after which retries stop (set by :meth:`stop_by`).
        self._deadline: float | None = None
        self._wake = threading.Event()

    def stop_by(self, deadline: float) -> None:
        """Close the queue; deliver what is queued until ``deadline`` (monotonic), then drop the rest."""
        self._deadline = deadline
        self.queue.close()
        self._wake.set()

    def run(self) -> None:
        while True:
            batch = self.queue.take(self.batch_bytes, timeout=0.5)
            if batch is None:
                break
            if not batch:
                continue
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die with data in hand
                _log.exception("forwarding failed unexpectedly; batch dropped",
                               extra={"spans": sum(i.spans for i in batch)})
                self.stats.dropped(sum(i.spans for i in batch), DropReason.DOWNSTREAM_REJECTED)
            finally:
                self.queue.release(batch)
        self._close()

    # -- one batch ----------------------------------------------------------------------

    def _deliver(self, batch: list[Encoded]) -> None:
        body = batch[0].body if len(batch) == 1 else b"".join(i.body for i in batch)
        spans = sum(i.spans for i in batch)
        started = time.monotonic()
        attempt = 0
        while True:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._drop(spans, DropReason.SHUTDOWN, "shutdown deadline passed")
                return
            status, retry_after, detail = self._post(body)
            if 200 <= status < 300:
                rejected = _rejected_spans(detail)
                if rejected:
                    self._drop(min(rejected, spans), DropReason.DOWNSTREAM_REJECTED,
                               "downstream rejected spans (partial_success)")
                self.stats.forwarded(spans - min(rejected, spans))
                return
            if status and status not in RETRYABLE:
                self._drop(spans, DropReason.DOWNSTREAM_REJECTED, f"downstream answered {status}")
                return
            reason = str(status) if status else "connection_error"
            if time.monotonic() - started >= self.retry_max_seconds:
                self._drop(spans, DropReason.RETRY_EXHAUSTED, f"still failing after {self.retry_max_seconds}s ({reason})")
                return
            self.stats.retried(reason)
            delay = min(BACKOFF_MAX, BACKOFF_INITIAL * (2 ** attempt)) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = max(delay, retry_after)
            attempt += 1
            if attempt == 1 or attempt % 10 == 0:
                _log.warning("downstream export failed; retrying",
                             extra={"reason": reason, "attempt": attempt, "delay_s": round(delay, 3),
                                    "spans": spans, "detail": detail[:200] if isinstance(detail, str) else ""})
            if self._deadline is not None:
                delay = min(delay, max(0.0, self._deadline - time.monotonic()))
            self._wake.wait(delay)

    def _drop(self, spans: int, reason: str, why: str) -> None:
        self.stats.dropped(spans, reason)
        _log.error("spans dropped", extra={"spans": spans, "reason": reason, "detail": why})

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _post(self, body: bytes) -> tuple[int, float | None, bytes | str]:
        """(status, Retry-After seconds, response body or error text); status 0 = connection error."""
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self._close()
            return resp.status, _retry_after(resp.getheader("Retry-After")), data
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            return 0, None, f"{type(exc).__name__}: {exc}"


def _rejected_spans(body: bytes | str) -> int:
    if not isinstance(body, bytes) or not body:
        return 0
    try:
        resp = ExportTraceServiceResponse()
        resp.ParseFromString(body)
        return int(resp.partial_success.rejected_spans)
    except Exception:
        return 0
