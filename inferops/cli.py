"""The ``inferops`` command.

Each subpackage contributes its subcommands through a ``register(subparsers)``
function in a CLI module listed in ``COMMAND_MODULES``; a module that cannot be
imported (an optional part not installed) is skipped. Every command returns an
exit status; errors go to stderr with a non-zero status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from ._version import __version__

#: Modules that contribute subcommands, in help order.
COMMAND_MODULES = (
    "inferops.commands",  # prices, settings, names
    "inferops.demo_cli",
    "inferops.instrumentation.cli",
    "inferops.processors.serve_cli",
    "inferops.dashboards.cli",
    "inferops.alerts.cli",
    "inferops.processors.report_cli",
)


class CommandError(Exception):
    """An expected failure: printed as ``inferops: error: <message>`` with exit status 2 (or ``status``)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferops",
        description="AI FinOps for inference costs: price LLM calls, emit Prometheus metrics, "
                    "generate Grafana dashboards and Alertmanager budgets. All amounts are USD.",
    )
    parser.add_argument("--version", action="version", version=f"inferops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
                continue  # that part is not written or not installed
            raise
        register: Callable[[argparse._SubParsersAction], None] = getattr(module, "register")
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except CommandError as exc:
        print(f"inferops: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("inferops: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module so CommandError is the same class the subcommands raise.
    from inferops.cli import main as _main

    sys.exit(_main())
