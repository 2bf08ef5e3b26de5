"""The helpers the alert tests import, on top of :mod:`inferops.testing` (the one server harness).

``run_prometheus`` / ``run_alertmanager`` keep their files in the given
workdir (``prometheus.log``, ``alertmanager.log``, ``prom-data``, ``am-data``)
so a failing test can print them; ``WebhookSink`` is the harness' webhook
receiver; ``wait_until`` retries through any error (a server still starting).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from inferops.testing import AlertmanagerServer, PrometheusServer, WebhookReceiver, free_port, wait_for

__all__ = ["WebhookSink", "free_port", "http_json", "post_alerts", "run_alertmanager", "run_prometheus",
           "wait_until"]

#: A local Alertmanager webhook receiver that keeps every payload it gets.
WebhookSink = WebhookReceiver


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    """GET (or POST ``data`` as JSON to) ``url``; the decoded JSON answer, None if empty."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """The first truthy value of ``predicate()``; errors are retried (TimeoutError names the last one)."""
    return wait_for(predicate, timeout=timeout, interval=interval, what=what, ignore=(Exception,))


@contextlib.contextmanager
def run_alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """Alertmanager 0.25 on 127.0.0.1 (clustering off); yields its base URL."""
    with AlertmanagerServer(config, workdir=workdir, data_dir=workdir / "am-data", log_level="warn",
                            ready_timeout=20) as am:
        yield am.url


@contextlib.contextmanager
def run_prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """Prometheus 2.42 on 127.0.0.1 with a temporary TSDB; yields its base URL."""
    with PrometheusServer(config, workdir=workdir, data_dir=workdir / "prom-data", log_level="warn",
                          ready_timeout=20) as prom:
        yield prom.url


def post_alerts(am_url: str, alerts: list[dict[str, Any]]) -> None:
    """POST alerts to Alertmanager's ``/api/v2/alerts`` as Prometheus does."""
    http_json(f"{am_url}/api/v2/alerts", alerts)
