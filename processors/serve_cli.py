"""``inferops serve``: run the OTLP/HTTP cost-enrichment service (see docs/serve.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the OTLP/HTTP cost-enrichment service (traces in, priced traces out)",
                       description="Receive OTLP/HTTP traces on /v1/traces, price GenAI spans, expose inferops_* "
                                   "metrics on /metrics and forward the enriched spans downstream. Settings: "
                                   "INFEROPS_SERVE_* (docs/settings.md); the options below override them.")
    p.add_argument("--host", default=None, help="address to bind (default: serve_host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: serve_port; 0 picks a free port)")
    p.add_argument("--downstream", default=None,
                   help="OTLP/HTTP traces URL to forward to (default: serve_downstream)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from inferops.cli import CommandError
    from inferops.settings import load_settings, parse_url
    from inferops.yamlfile import ConfigError

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    downstream = None
    if args.downstream is not None:
        try:
            downstream = parse_url(args.downstream)
        except ValueError as exc:
            raise CommandError(f"--downstream: {exc}, got {args.downstream!r}") from None
    if args.port is not None and not 0 <= args.port <= 65535:
        raise CommandError(f"--port: expected 0-65535, got {args.port}")

    from .serve import logs
    from .serve.server import run

    logs.configure(settings.log_level)
    try:
        return run(settings, host=args.host, port=args.port, downstream=downstream)
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host or settings.serve_host}:"
                           f"{args.port if args.port is not None else settings.serve_port}: {exc}") from None
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from None
