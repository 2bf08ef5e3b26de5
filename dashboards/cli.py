"""``inferops dashboards build --out DIR [--gpu FILE]``: write the Grafana dashboard JSON files."""

from __future__ import annotations

import argparse
from pathlib import Path

from inferops.cli import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboards", help="generate the Grafana dashboards (JSON, for import or provisioning)")
    dsub = p.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="write the dashboard JSON files to a directory")
    b.add_argument("--out", required=True, help="directory to write inferops-*.json into (created if missing)")
    b.add_argument("--gpu", default="", metavar="FILE",
                   help="self-hosted GPU cost config (gpu: section, docs/gpu.md): tailor inferops-gpu.json to it "
                        "(leaves out panels its series cannot produce, adds its engines' panels); "
                        "default: every panel, vLLM as the engine")
    b.set_defaults(func=cmd_build)
    pv = dsub.add_parser("provisioning", help="write Grafana provisioning files (datasources, dashboard provider)")
    pv.add_argument("--out", required=True, help="provisioning directory (gets datasources/ and dashboards/)")
    pv.set_defaults(func=cmd_provisioning)


def _gpu_config(path: str):
    """Load ``--gpu FILE`` as ``inferops alerts build --gpu`` does (same catalog and overrides)."""
    from inferops.alerts.gpu_config import load_gpu_config
    from inferops.settings import load_settings
    from inferops.yamlfile import ConfigError

    try:
        settings = load_settings()
        return load_gpu_config(path, catalog_file=settings.catalog_file or None,
                               prices_file=settings.prices_file or None)
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc), status=1) from None


def cmd_build(args: argparse.Namespace) -> int:
    from .build import write

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: is a file, expected a directory")
    gpu_config = _gpu_config(args.gpu) if args.gpu else None
    try:
        written = write(out, gpu_config)
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
