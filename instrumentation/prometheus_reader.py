"""``OTEL_METRICS_EXPORTER=inferops_prometheus``: a Prometheus endpoint that keeps exemplars.

Drop-in replacement for ``OTEL_METRICS_EXPORTER=prometheus`` (same names, same
``OTEL_EXPORTER_PROMETHEUS_HOST``/``_PORT`` variables and defaults), except that
an OpenMetrics scrape gets the trace id and span id of the call on every cost
and token sample. opentelemetry-sdk's auto-configuration instantiates a
``MetricReader`` subclass from the ``opentelemetry_metrics_exporter`` entry
point with no arguments and adds it to the meter provider directly (no
periodic wrapper), which is what this class expects.
"""

from __future__ import annotations

import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from inferops.processors.exposition import OpenMetricsReader

_log = logging.getLogger(__name__)

HOST_ENV = "OTEL_EXPORTER_PROMETHEUS_HOST"
PORT_ENV = "OTEL_EXPORTER_PROMETHEUS_PORT"
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 9464


def _handler_for(reader: OpenMetricsReader):
    class Handler(BaseHTTPRequestHandler):
        server_version = "inferops-prometheus"

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = self.path.split("?", 1)[0]
            if path not in ("/metrics", "/"):
                self.send_error(404, "only /metrics is served here")
                return
            try:
                body, ctype = reader.render(self.headers.get("Accept", ""))
                status = 200
            except Exception:  # never take the app down; say so to the scraper
                _log.exception("inferops: rendering /metrics failed")
                body, ctype, status = b"metrics rendering failed\n", "text/plain; charset=utf-8", 500
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args) -> None:  # scrapes every second: stay quiet
            return

    return Handler


class InferopsPrometheusMetricReader(OpenMetricsReader):
    """Serves ``/metrics`` (OpenMetrics with exemplars, or text 0.0.4) on a daemon thread."""

    def __init__(self, host: str | None = None, port: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        host = host if host is not None else os.environ.get(HOST_ENV, DEFAULT_HOST)
        if port is None:
            raw = os.environ.get(PORT_ENV, "").strip()
            try:
                port = int(raw) if raw else DEFAULT_PORT
            except ValueError:
                _log.warning("inferops: %s=%r is not a port number; using %d", PORT_ENV, raw, DEFAULT_PORT)
                port = DEFAULT_PORT
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="inferops-prometheus",
                                        daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 picks a free one)."""
        return self._server.server_address[:2]

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
