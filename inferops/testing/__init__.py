"""Real servers on 127.0.0.1 for inferops' tests, benchmarks and demo.

One harness instead of a copy per test: :class:`PrometheusServer` and
:class:`AlertmanagerServer` (the real binaries, free ports, temporary data,
readiness with the server's log tail on failure, API helpers, stop by pid),
:class:`WebhookReceiver` (the Alertmanager webhook end) and the generic
:class:`ServerProcess` / :func:`wait_for` they are built on. It lives in the
package, not in tests/, because ``inferops demo`` runs the same servers.
"""

from .process import ServerProcess, ServerStartError, free_port, wait_for
from .prometheus import (
    AlertmanagerServer,
    PrometheusAPIError,
    PrometheusServer,
    alertmanager_binary,
    prometheus_binary,
    prometheus_config,
)
from .webhook import WebhookReceiver

__all__ = [
    "AlertmanagerServer", "PrometheusAPIError", "PrometheusServer", "ServerProcess", "ServerStartError",
    "WebhookReceiver", "alertmanager_binary", "free_port", "prometheus_binary", "prometheus_config", "wait_for",
]
