"""Local servers of the demo: port checks, Prometheus, Alertmanager and the alert webhook receiver.

Prometheus and Alertmanager are the real binaries (Debian ``prometheus`` and
``prometheus-alertmanager``), bound to 127.0.0.1 on the ports given, with
temporary data folders, started in their own session (a Ctrl-C in the terminal
reaches the demo, which then stops them by pid) and always stopped on exit.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import yaml


class PortInUse(Exception):
    """A configured port is taken; the message names the port and the flag that sets it."""


def check_port(host: str, port: int, flag: str) -> int:
    """Return ``port`` if free on ``host`` (0: a free port is chosen); else raise :class:`PortInUse`."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # As the servers do: a port in TIME_WAIT is reusable, a port with a listener is not (Linux).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} on {host} is not available ({exc.strerror or exc}); it is set by "
                            f"{flag}: pass {flag} with another port, or {flag} 0 for any free port") from None
        return s.getsockname()[1]


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def prometheus_config(metrics_target: str, alertmanager_target: str, rule_files: list[str]) -> str:
    """prometheus.yml of the demo: 1s scrape and evaluation so the budget alert fires within seconds."""
    cfg = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]},
        "scrape_configs": [{"job_name": "inferops-demo", "static_configs": [{"targets": [metrics_target]}]}],
    }
    return ("# prometheus.yml of `inferops demo` (start Prometheus with --enable-feature=exemplar-storage).\n"
            + yaml.safe_dump(cfg, sort_keys=False))


class ChildProcess:
    """One server binary: started, waited on until ready, always terminated by its own pid."""

    def __init__(self, name: str, args: list[str], log: Path, ready_url: str) -> None:
        self.name, self.args, self.log, self.ready_url = name, args, log, ready_url
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, stop: threading.Event | None = None) -> None:
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(self.args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        if stop and stop.is_set():
            return
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f}s at {self.ready_url}:\n{self.log_tail()}")

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_alertmanager(binary: str, config: Path, data: Path, port: int, log: Path,
                       stop: threading.Event | None = None) -> ChildProcess:
    data.mkdir(parents=True, exist_ok=True)
    child = ChildProcess("alertmanager", [
        binary, f"--config.file={config}", f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=warn"], log, f"http://127.0.0.1:{port}/-/ready")
    child.start(stop=stop)
    return child


def start_prometheus(binary: str, config: Path, data: Path, port: int, log: Path,
                     stop: threading.Event | None = None) -> ChildProcess:
    data.mkdir(parents=True, exist_ok=True)
    child = ChildProcess("prometheus", [
        binary, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage", "--log.level=warn"], log, f"http://127.0.0.1:{port}/-/ready")
    child.start(stop=stop)
    return child


def describe_alert(alert: dict[str, Any]) -> str:
    """One line for an Alertmanager webhook alert: name, team, budget and the figures of its summary."""
    labels, ann = alert.get("labels", {}), alert.get("annotations", {})
    parts = [f"{k}={labels[k]}" for k in ("team", "project", "budget", "threshold", "window", "severity")
             if labels.get(k)]
    text = ann.get("description") or ann.get("summary") or ""
    return f"ALERT received: {labels.get('alertname', '?')} {' '.join(parts)} -- {text}".rstrip(" -")


class AlertReceiver:
    """Alertmanager webhook receiver: reports each firing (alert name, labels) once through ``on_alert``."""

    def __init__(self, host: str, port: int, on_alert: Callable[[dict[str, Any]], None]) -> None:
        receiver = self
        self.alerts: list[dict[str, Any]] = []
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self._on_alert = on_alert

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
                receiver._receive(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="inferops-demo-webhook", daemon=True)
        self._thread.start()

    def _receive(self, payload: dict[str, Any]) -> None:
        for alert in payload.get("alerts", []) if isinstance(payload, dict) else []:
            if not isinstance(alert, dict) or alert.get("status") != "firing":
                continue
            labels = alert.get("labels", {})
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "severity"))
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
                self.alerts.append(alert)
            self._on_alert(alert)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
