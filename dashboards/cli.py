"""``inferops dashboards build --out DIR``: write the Grafana dashboard JSON files."""

from __future__ import annotations

import argparse
from pathlib import Path

from inferops.cli import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboards", help="generate the Grafana dashboards (JSON, for import or provisioning)")
    dsub = p.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="write the dashboard JSON files to a directory")
    b.add_argument("--out", required=True, help="directory to write inferops-*.json into (created if missing)")
    b.set_defaults(func=cmd_build)
    pv = dsub.add_parser("provisioning", help="write Grafana provisioning files (datasources, dashboard provider)")
    pv.add_argument("--out", required=True, help="provisioning directory (gets datasources/ and dashboards/)")
    pv.set_defaults(func=cmd_provisioning)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import write

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: is a file, expected a directory")
    try:
        written = write(out)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    for path in written:
        print(path)
    return 0


def cmd_provisioning(args: argparse.Namespace) -> int:
    from .provisioning import write

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: is a file, expected a directory")
    try:
        written = write(out)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    for path in written:
        print(path)
    return 0
