"""Local servers of the demo: port checks, Prometheus, Alertmanager and the alert webhook receiver.

Prometheus and Alertmanager are the real binaries (Debian ``prometheus`` and
``prometheus-alertmanager``), bound to 127.0.0.1 on the ports given, with
temporary data folders, started in their own session (a Ctrl-C in the terminal
reaches the demo, which then stops them by pid) and always stopped on exit. They
run through :mod:`inferops.testing`, the same harness the end-to-end tests use.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any, Callable

import yaml

from inferops.testing import (
    AlertmanagerServer,
    PrometheusServer,
    WebhookReceiver,
    alertmanager_binary,
    prometheus_binary,
    prometheus_config as _config,
)

__all__ = ["AlertReceiver", "PortInUse", "alertmanager_binary", "check_port", "describe_alert",
           "prometheus_binary", "prometheus_config", "start_alertmanager", "start_prometheus"]


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


def prometheus_config(metrics_target: str, alertmanager_target: str, rule_files: list[str]) -> str:
    """prometheus.yml of the demo: 1s scrape and evaluation so the budget alert fires within seconds."""
    cfg = _config(jobs={"inferops-demo": [metrics_target]}, rule_files=rule_files,
                  alertmanagers=[alertmanager_target])
    return ("# prometheus.yml of `inferops demo` (start Prometheus with --enable-feature=exemplar-storage).\n"
            + yaml.safe_dump(cfg, sort_keys=False))


def start_alertmanager(binary: str, config: Path, data: Path, port: int, log: Path,
                       stop: threading.Event | None = None) -> AlertmanagerServer:
    """Alertmanager on 127.0.0.1:``port``, ready (or ``stop`` set) on return; stop it with ``.stop()``."""
    return AlertmanagerServer(config, workdir=log.parent, data_dir=data, port=port, log=log, log_level="warn",
                              binary=binary).start(stop)


def start_prometheus(binary: str, config: Path, data: Path, port: int, log: Path,
                     stop: threading.Event | None = None) -> PrometheusServer:
    """Prometheus (exemplar storage on) on 127.0.0.1:``port``, ready (or ``stop`` set) on return."""
    return PrometheusServer(config, workdir=log.parent, data_dir=data, port=port, log=log, exemplars=True,
                            log_level="warn", binary=binary).start(stop)


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
        self.alerts: list[dict[str, Any]] = []
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self._on_alert = on_alert
        self._receiver = WebhookReceiver(host, port, on_payload=lambda _path, payload: self._receive(payload),
                                         keep=False, thread_name="inferops-demo-webhook")
        self.port = self._receiver.port

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
        self._receiver.stop()
