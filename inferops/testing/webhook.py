"""A local Alertmanager webhook receiver: the other end of a budget alert, for tests and the demo.

Alertmanager POSTs JSON (``{"alerts": [...], ...}``) to each webhook receiver's
URL; this server answers 200 at once (Alertmanager would retry otherwise), then
keeps each payload with the path it came to and/or hands it to a callback.
Bodies that are not JSON are answered and dropped: Alertmanager never sends them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Self

#: Called with (path, decoded JSON body) for each POST.
PayloadCallback = Callable[[str, Any], None]


class WebhookReceiver:
    """HTTP server on ``host:port`` (0: a free port), serving from a daemon thread as soon as it is made.

    ``payloads`` holds ``{"path": ..., "body": ...}`` for each POST unless ``keep`` is false (a
    long-running demo passes ``on_payload`` and keeps nothing).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, on_payload: PayloadCallback | None = None,
                 keep: bool = True, thread_name: str = "inferops-webhook") -> None:
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._on_payload, self._keep = on_payload, keep
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    return
                receiver._receive(self.path, payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=thread_name, daemon=True)
        self._thread.start()

    def _receive(self, path: str, payload: Any) -> None:
        if self._keep:
            with self._lock:
                self.payloads.append({"path": path, "body": payload})
        if self._on_payload is not None:
            self._on_payload(path, payload)

    def alerts(self, path: str = "") -> list[dict[str, Any]]:
        """Every alert of every kept payload sent to a path starting with ``path``, in arrival order."""
        with self._lock:
            return [alert for p in self.payloads if p["path"].startswith(path) and isinstance(p["body"], dict)
                    for alert in p["body"].get("alerts", [])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
