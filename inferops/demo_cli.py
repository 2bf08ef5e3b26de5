"""``inferops demo``: mock providers, instrumented traffic, live spend, budget alerts, chargeback.

The README's first command (``pip install -e '.[demo]' && inferops demo``).
With nothing else running it needs no network and no accounts; with
``prometheus`` and ``prometheus-alertmanager`` on PATH it also shows a budget
alert arriving. See docs/demo.md; the code is in :mod:`inferops.demo`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected 1-64 workers, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    from inferops.demo.run import DEFAULT_WEBHOOK_PORT, DemoOptions

    d = DemoOptions()
    p = sub.add_parser(
        "demo", help="run the whole loop locally: mock providers, instrumented traffic, spend, budget alerts",
        description="Start mock LLM providers, run an instrumented traffic mix across teams, projects, features "
                    "and models, expose the metrics (OpenMetrics with exemplars), show the spend live and end "
                    "with a chargeback summary. With prometheus and prometheus-alertmanager on PATH, also run "
                    "them with the generated rules and a tiny budget and show the budget alert arriving. "
                    "Writes dashboards, rules, Alertmanager config and Grafana provisioning to --out. "
                    "Port 0 picks a free port. Docs: docs/demo.md.")
    p.add_argument("--duration", type=_seconds, default=d.duration,
                   help=f"seconds of traffic (default {d.duration:g}; 0 = until Ctrl-C or SIGTERM)")
    p.add_argument("--concurrency", type=_workers, default=d.concurrency, help="traffic worker threads")
    p.add_argument("--out", type=Path, default=d.out, help=f"output folder (default ./{d.out})")
    p.add_argument("--bind", default=d.bind,
                   help="address of the metrics endpoint and the alert receiver (default 127.0.0.1; "
                        "0.0.0.0 in a container)")
    p.add_argument("--metrics-port", type=_port, default=d.metrics_port, help=f"metrics port (default {d.metrics_port})")
    p.add_argument("--mock-port", type=_port, default=d.mock_port,
                   help=f"mock providers port on 127.0.0.1 (default {d.mock_port})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--with-prometheus", dest="prometheus", action="store_const", const=True, default=None,
                   help="require Prometheus and Alertmanager (default: run them when both are on PATH)")
    g.add_argument("--no-prometheus", dest="prometheus", action="store_const", const=False,
                   help="do not run Prometheus and Alertmanager")
    p.add_argument("--prometheus-port", type=_port, default=d.prometheus_port,
                   help=f"Prometheus port on 127.0.0.1 (default {d.prometheus_port})")
    p.add_argument("--alertmanager-port", type=_port, default=d.alertmanager_port,
                   help=f"Alertmanager port on 127.0.0.1 (default {d.alertmanager_port})")
    p.add_argument("--webhook-port", type=_port, default=None,
                   help=f"alert webhook receiver port (default {DEFAULT_WEBHOOK_PORT} when Prometheus runs; "
                        "giving it also starts the receiver without the local Prometheus)")
    p.add_argument("--otlp-endpoint", default="",
                   help="also send the spans via OTLP/HTTP, e.g. http://otel-collector:4318 (the Collector)")
    p.add_argument("--service-name", default=d.service_name, help="service.name of the demo's telemetry")
    p.add_argument("--refresh", type=_seconds, default=d.refresh,
                   help="seconds between spend updates (default: 1 on a terminal, 5 otherwise)")
    p.add_argument("--alert-wait", type=_seconds, default=d.alert_wait,
                   help=f"with Prometheus: extra seconds to wait for the first budget alert (default {d.alert_wait:g})")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from inferops.cli import CommandError
    from inferops.demo.run import Demo, DemoError, DemoOptions
    from inferops.yamlfile import ConfigError

    opts = DemoOptions(
        duration=args.duration, concurrency=args.concurrency, bind=args.bind, metrics_port=args.metrics_port,
        mock_port=args.mock_port, prometheus=args.prometheus, prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port, webhook_port=args.webhook_port, out=args.out,
        otlp_endpoint=args.otlp_endpoint, service_name=args.service_name, refresh=args.refresh,
        alert_wait=args.alert_wait)
    try:
        return Demo(opts).run()
    except (DemoError, ConfigError) as exc:
        raise CommandError(str(exc), status=1) from None
    except RuntimeError as exc:  # Prometheus or Alertmanager failed to start (the message has its log)
        raise CommandError(str(exc), status=1) from None
