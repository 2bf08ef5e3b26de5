"""Run real Prometheus and Alertmanager on 127.0.0.1 for tests and the demo, and a webhook sink.

Each server gets a free port, a temporary data folder and is stopped (by its
own pid) on exit. Used by inferops' end-to-end tests; handy for a local demo.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # server not up yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})"
                                                                            if last_exc else ""))


@contextlib.contextmanager
def _process(args: list[str], log: Path, ready_url: str, timeout: float = 20.0) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {log.read_text(errors='replace')[-2000:]}")
            with urllib.request.urlopen(ready_url, timeout=1) as resp:
                return resp.status == 200
        try:
            wait_until(ready, timeout, what=f"{args[0]} at {ready_url}")
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-2000:]}") from None
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def run_alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """Alertmanager 0.25 on 127.0.0.1 (clustering off); yields its base URL."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        raise RuntimeError("prometheus-alertmanager is required (Debian package prometheus-alertmanager)")
    port = free_port()
    data = workdir / "am-data"
    data.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    args = [binary, f"--config.file={config}", f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]
    with _process(args, workdir / "alertmanager.log", f"{url}/-/ready"):
        yield url


@contextlib.contextmanager
def run_prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """Prometheus 2.42 on 127.0.0.1 with a temporary TSDB; yields its base URL."""
    binary = shutil.which("prometheus")
    if not binary:
        raise RuntimeError("prometheus is required (Debian package prometheus)")
    port = free_port()
    data = workdir / "prom-data"
    data.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with _process(args, workdir / "prometheus.log", f"{url}/-/ready"):
        yield url


class WebhookSink:
    """A local Alertmanager webhook receiver that keeps every payload it gets."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with sink._lock:
                    sink.payloads.append({"path": self.path, "body": json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookSink":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, path: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [a for p in self.payloads if p["path"].startswith(path) for a in p["body"].get("alerts", [])]


def post_alerts(am_url: str, alerts: list[dict[str, Any]]) -> None:
    """POST alerts to Alertmanager's ``/api/v2/alerts`` as Prometheus does."""
    http_json(f"{am_url}/api/v2/alerts", alerts)
