"""The ``inferops serve`` HTTP server: OTLP/HTTP traces in, priced spans out, metrics on /metrics.

Endpoints (OTLP/HTTP specification, traces only):

* ``POST /v1/traces`` - ``application/x-protobuf`` or ``application/json``
  (OTLP/JSON), optionally ``Content-Encoding: gzip``/``deflate``. Answers 200
  with an ``ExportTraceServiceResponse`` in the request's encoding
  (``partial_success`` when spans were rejected); 400 with a ``google.rpc.Status``
  body for undecodable input; 401 for a wrong bearer token; 413 when the body
  (also once decompressed) exceeds ``serve_max_body_bytes``; 415 for another
  content type; 503 + ``Retry-After`` while the forwarding queue is full or
  the service is shutting down (retryable: the sender's queue keeps the data).
* ``GET /metrics`` - OpenMetrics with exemplars (or text 0.0.4) via
  :class:`inferops.processors.exposition.OpenMetricsReader`.
* ``GET /healthz`` (process alive) and ``GET /readyz`` (503 while the queue is
  over ``serve_ready_high_water`` or shutting down).

A request is acknowledged (200) only after its enriched spans are in the
forwarding queue (or, with no downstream configured, after they were priced
and counted); metrics are recorded at that moment, so a refused request that
the sender retries is counted once.
"""

from __future__ import annotations

import hmac
import logging
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from inferops._version import __version__
from inferops.names import DropReason, Label, Metrics, RefuseReason
from inferops.settings import Settings

from ..engine import CostEngine
from ..exposition import OpenMetricsReader
from ..recorder import CostRecorder, _create
from .enrich import Enricher
from .extract import AttributionResolver
from .fastpath import FastPath, why_not
from .forwarder import Forwarder, ForwarderStats, ForwardQueue
from .otlp import JSON, PROTOBUF, Encoded, RequestError, decode_request, decompress, encode_response, \
    encode_status, media_type

_log = logging.getLogger("inferops.serve")

TRACES_PATH = "/v1/traces"
RETRY_AFTER_S = 5


class ServiceMetrics:
    """The service's own health metrics (names contract: ``Metrics.SERVE_*``)."""

    def __init__(self, meter):
        self.received = _create(meter, Metrics.SERVE_SPANS_RECEIVED)
        self.priced = _create(meter, Metrics.SERVE_SPANS_PRICED)
        self.forwarded = _create(meter, Metrics.SERVE_SPANS_FORWARDED)
        self.dropped = _create(meter, Metrics.SERVE_SPANS_DROPPED)
        self.refused = _create(meter, Metrics.SERVE_REQUESTS_REFUSED)
        self.queue_bytes = _create(meter, Metrics.SERVE_QUEUE_BYTES)
        self.retries = _create(meter, Metrics.SERVE_FORWARD_RETRIES)
        # Make the zero visible from the first scrape (rate() needs a starting sample).
        self.received.add(0)
        self.forwarded.add(0)
        self.queue_bytes.add(0)

    def drop(self, n: int, reason: str) -> None:
        if n:
            self.dropped.add(n, {Label.REASON: reason})


class Service:
    """One running ``inferops serve``: HTTP server, enricher, queue and forwarder."""

    def __init__(self, settings: Settings, *, host: str | None = None, port: int | None = None,
                 downstream: str | None = None):
        self.settings = settings
        self.host = settings.serve_host if host is None else host
        self.port = settings.serve_port if port is None else port
        self.downstream = settings.serve_downstream if downstream is None else downstream
        self.reader = OpenMetricsReader()
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource.create({"service.name": "inferops-serve", "service.version": __version__}))
        meter = self.meter_provider.get_meter("inferops.serve", __version__)
        self.metrics = ServiceMetrics(meter)
        recorder = CostRecorder(meter, label_value_cap=settings.label_value_cap, user_label=settings.user_label,
                                semconv_histograms=settings.serve_semconv_metrics)
        self.enricher = Enricher(
            CostEngine.from_settings(settings), recorder,
            AttributionResolver(settings.baggage_keys, settings.resource_keys, settings.required_tags),
            reprice=settings.serve_reprice)
        #: The compiled fast path for protobuf requests (None: every request takes the Python path).
        self.fast: FastPath | None = None
        self.fast_path_off_reason = "serve_fast_path is off" if not settings.serve_fast_path else \
            why_not(self.enricher, settings.serve_semconv_metrics)
        if self.fast_path_off_reason is None:
            self.fast = FastPath(self.enricher)
        self.queue = ForwardQueue(settings.serve_queue_bytes, on_bytes=self.metrics.queue_bytes.add)
        self.forwarder: Forwarder | None = None
        if self.downstream:
            self.forwarder = Forwarder(
                self.queue, self.downstream,
                ForwarderStats(forwarded=lambda n: self.metrics.forwarded.add(n),
                               dropped=self.metrics.drop,
                               retried=lambda reason: self.metrics.retries.add(1, {Label.REASON: reason})),
                batch_bytes=settings.serve_batch_bytes, retry_max_seconds=settings.serve_retry_max_seconds,
                timeout=settings.serve_forward_timeout_seconds)
        self.draining = False
        self._inflight = 0
        self._inflight_lock = threading.Condition()
        self.httpd = _Server((self.host, self.port), _handler(self))
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self.forwarder is not None:
            self.forwarder.start()
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="inferops-http", daemon=True)
        self._thread.start()
        _log.info("listening", extra={"host": self.host, "port": self.port,
                                      "downstream": self.downstream or None,
                                      "auth": bool(self.settings.serve_token),
                                      "queue_bytes": self.settings.serve_queue_bytes,
                                      "path": "compiled" if self.fast is not None else "python",
                                      "path_reason": self.fast_path_off_reason})

    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "shutting down"
        if self.queue.fill > self.settings.serve_ready_high_water:
            return False, f"forwarding queue {self.queue.fill:.0%} full"
        return True, "ready"

    def stop(self, deadline_s: float | None = None) -> int:
        """Stop accepting (503), flush the queue within the deadline, stop the server. Returns spans lost."""
        deadline_s = self.settings.serve_shutdown_seconds if deadline_s is None else deadline_s
        end = time.monotonic() + deadline_s
        self.draining = True
        _log.info("shutting down: refusing new requests, flushing the queue",
                  extra={"queued_bytes": self.queue.bytes, "deadline_s": deadline_s})
        with self._inflight_lock:  # requests already past the gate finish (accepted or refused)
            while self._inflight and time.monotonic() < end:
                self._inflight_lock.wait(0.05)
        lost = 0
        if self.forwarder is not None:
            self.forwarder.stop_by(end)
            self.forwarder.join(max(0.0, end - time.monotonic()) + 1.0)
            leftover = self.queue.drain_all()
            if leftover:
                lost = sum(i.spans for i in leftover)
                self.metrics.drop(lost, DropReason.SHUTDOWN)
                _log.error("spans dropped", extra={"spans": lost, "reason": DropReason.SHUTDOWN})
        else:
            self.queue.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        _log.info("stopped", extra={"spans_lost": lost})
        return lost

    def enter(self) -> None:
        with self._inflight_lock:
            self._inflight += 1

    def leave(self) -> None:
        with self._inflight_lock:
            self._inflight -= 1
            self._inflight_lock.notify_all()

    # -- one export request ---------------------------------------------------------------

    def export(self, body: bytes, mtype: str) -> tuple[int, bytes, str, dict[str, str]]:
        """Process a decoded-transport body; (status, body, content type, extra headers).

        Protobuf bodies take the compiled fast path when it is on; a request it
        declines (malformed or unusual: ``ValueError``) takes the Python path,
        which decides (and words any 400) exactly as without the fast path.
        """
        fast = None
        if self.fast is not None and mtype == PROTOBUF:
            try:
                fast = self.fast.process(body)
            except ValueError:
                fast = None
        if fast is not None:
            rejected, spans, result = fast.rejected, fast.spans, fast
            data = fast.data
        else:
            req = decode_request(body, mtype)
            rejected = _drop_invalid_spans(req)
            result = self.enricher.process(req)
            spans = result.spans
            data = None
        if self.forwarder is not None and spans:
            if data is None:
                data = req.SerializeToString()
            if len(data) > self.queue.max_bytes:
                raise RequestError(413, f"request of {len(data)} bytes is larger than the forwarding queue "
                                        f"({self.queue.max_bytes} bytes)", RefuseReason.TOO_LARGE)
            if not self.queue.offer(Encoded(data, spans)):
                reason = RefuseReason.SHUTTING_DOWN if self.queue.closed else RefuseReason.QUEUE_FULL
                raise _Retryable(reason)
        elif self.draining:
            raise _Retryable(RefuseReason.SHUTTING_DOWN)
        # Accepted: count it.
        if fast is not None:
            self.fast.commit(fast)
        else:
            self.enricher.commit(result)
        m = self.metrics
        m.received.add(spans)
        for (status, source), n in result.priced.items():
            m.priced.add(n, {Label.PRICING_STATUS: status, Label.SOURCE: source})
        msg = ""
        if rejected:
            m.drop(rejected, DropReason.INVALID_SPAN)
            msg = f"{rejected} span(s) rejected: trace_id must be 16 bytes and span_id 8 bytes"
        return 200, encode_response(mtype, rejected, msg), mtype, {}


class _Retryable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _drop_invalid_spans(req) -> int:
    """Remove spans whose ids are not 16/8 bytes (the OTLP spec's invalid spans); return how many."""
    rejected = 0
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            spans = ss.spans
            bad = [i for i, s in enumerate(spans) if not _valid_ids(s.trace_id, s.span_id)]
            for i in reversed(bad):
                del spans[i]
            rejected += len(bad)
    return rejected


_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def _valid_ids(trace_id: bytes, span_id: bytes) -> bool:
    return len(trace_id) == 16 and len(span_id) == 8 and trace_id != _ZERO_TRACE_ID and span_id != _ZERO_SPAN_ID


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _handler(service: Service):
    settings = service.settings
    token = settings.serve_token.encode() if settings.serve_token else b""
    limit = settings.serve_max_body_bytes

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"inferops-serve/{__version__}"
        sys_version = ""

        def log_message(self, fmt, *args) -> None:  # access logs off: structured logs only
            return

        # -- helpers ------------------------------------------------------------------
        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, message: str, reason: str, mtype: str,
                    headers: dict[str, str] | None = None) -> None:
            service.metrics.refused.add(1, {Label.REASON: reason})
            level = logging.INFO if status in (429, 503) else logging.WARNING
            _log.log(level, "request refused", extra={"status": status, "reason": reason, "detail": message,
                                                       "peer": self.client_address[0]})
            body, ctype = encode_status(mtype if mtype in (JSON, PROTOBUF) else PROTOBUF, status, message)
            self._send(status, body, ctype, headers)

        def _read_body(self) -> bytes:
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                return self._read_chunked()
            length = self.headers.get("Content-Length")
            if length is None:
                self.close_connection = True
                raise RequestError(411, "Content-Length (or chunked Transfer-Encoding) required", RefuseReason.BAD_REQUEST)
            try:
                n = int(length)
            except ValueError:
                self.close_connection = True
                raise RequestError(400, f"invalid Content-Length {length!r}", RefuseReason.BAD_REQUEST) from None
            if n > limit:
                self.close_connection = True  # do not read it
                raise RequestError(413, f"request body of {n} bytes exceeds the limit of {limit} bytes",
                                   RefuseReason.TOO_LARGE)
            return self.rfile.read(n)

        def _read_chunked(self) -> bytes:
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise RequestError(400, "malformed chunked body", RefuseReason.BAD_REQUEST) from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > limit:
                    self.close_connection = True
                    raise RequestError(413, f"request body exceeds the limit of {limit} bytes", RefuseReason.TOO_LARGE)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)

        # -- routes -------------------------------------------------------------------
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body, ctype = service.reader.render(self.headers.get("Accept", ""))
                    self._send(200, body, ctype)
                except Exception:
                    _log.exception("rendering /metrics failed")
                    self._send(500, b"metrics rendering failed\n", "text/plain; charset=utf-8")
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                ok, why = service.ready()
                self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found: POST /v1/traces, GET /metrics, /healthz, /readyz\n",
                           "text/plain; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            mtype = media_type(self.headers.get("Content-Type"))
            if path != TRACES_PATH:
                self.close_connection = True
                self._send(404, f"not found: only POST {TRACES_PATH} is served\n".encode(),
                           "text/plain; charset=utf-8")
                return
            service.enter()
            try:
                self._post(mtype)
            except Exception:  # a bug must not kill the connection thread silently
                _log.exception("unexpected error handling an export request")
                self.close_connection = True
                try:
                    self._refuse(500, "internal error", "internal", mtype)
                except OSError:
                    pass
            finally:
                service.leave()

        def _post(self, mtype: str) -> None:
            if service.draining:
                self.close_connection = True
                self._refuse(503, "shutting down; retry another replica or later", RefuseReason.SHUTTING_DOWN,
                             mtype, {"Retry-After": str(RETRY_AFTER_S)})
                return
            if token:
                auth = (self.headers.get("Authorization") or "").encode("latin-1", "replace")
                scheme, _, given = auth.partition(b" ")
                if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), token):
                    self.close_connection = True
                    self._refuse(401, "missing or wrong bearer token", RefuseReason.UNAUTHORIZED, mtype,
                                 {"WWW-Authenticate": 'Bearer realm="inferops"'})
                    return
            if mtype not in (PROTOBUF, JSON):
                self.close_connection = True
                self._refuse(415, f"unsupported Content-Type {self.headers.get('Content-Type')!r}; "
                                  f"expected {PROTOBUF} or {JSON}", RefuseReason.UNSUPPORTED_MEDIA_TYPE, PROTOBUF)
                return
            try:
                raw = self._read_body()
                body = decompress(raw, self.headers.get("Content-Encoding"), limit)
                status, out, ctype, headers = service.export(body, mtype)
            except RequestError as exc:
                reason = exc.reason if exc.reason in RefuseReason.ALL else RefuseReason.BAD_REQUEST
                self._refuse(exc.status, str(exc), reason, mtype)
                return
            except _Retryable as exc:
                msg = ("forwarding queue full; retry later" if exc.reason == RefuseReason.QUEUE_FULL
                       else "shutting down; retry another replica or later")
                self._refuse(503, msg, exc.reason, mtype, {"Retry-After": str(RETRY_AFTER_S)})
                return
            self._send(status, out, ctype, headers)

    return Handler


def run(settings: Settings, *, host: str | None = None, port: int | None = None,
        downstream: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; then refuse new requests, flush, exit 0."""
    service = Service(settings, host=host, port=port, downstream=downstream)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        _log.info("signal received", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    while not stop.wait(0.5):
        pass
    service.stop()
    service.meter_provider.shutdown()
    return 0
