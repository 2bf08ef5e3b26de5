"""Subcommands ``report``, ``reconcile`` and ``advise`` (FinOps outside Grafana). See docs/finops.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from inferops.cli import CommandError
from inferops.yamlfile import ConfigError

DEFAULT_BY = "team,project,feature,model"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="chargeback report of spend and tokens for a period (table, CSV, JSON, FOCUS)")
    _period_args(p)
    p.add_argument("--by", default=DEFAULT_BY, help=f"labels to group by, comma-separated (default {DEFAULT_BY})")
    p.add_argument("--format", choices=("table", "csv", "json", "focus"), default="table")
    p.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    p.add_argument("--billing-account", action="append", default=[], metavar="PROVIDER=ID",
                   help="FOCUS BillingAccountId per provider (default inferops:<provider>)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reconcile", help="compare inferops' estimates with provider bills; exit 1 past a tolerance")
    _period_args(p)
    p.add_argument("--openai-costs", action="append", default=[], metavar="FILE",
                   help="OpenAI /v1/organization/costs export (JSON page or list of pages)")
    p.add_argument("--openai-usage", action="append", default=[], metavar="FILE",
                   help="OpenAI /v1/organization/usage/completions export")
    p.add_argument("--anthropic-costs", action="append", default=[], metavar="FILE",
                   help="Anthropic /v1/organizations/cost_report export")
    p.add_argument("--anthropic-usage", action="append", default=[], metavar="FILE",
                   help="Anthropic /v1/organizations/usage_report/messages export")
    p.add_argument("--focus", action="append", default=[], metavar="FILE",
                   help="cloud FOCUS CSV export (Bedrock, Azure OpenAI, Vertex AI rows are used)")
    p.add_argument("--fetch", default="", metavar="PROVIDERS",
                   help="fetch live from openai,anthropic with admin keys from $OPENAI_ADMIN_KEY / $ANTHROPIC_ADMIN_KEY")
    p.add_argument("--openai-base-url", default="https://api.openai.com")
    p.add_argument("--anthropic-base-url", default="https://api.anthropic.com")
    p.add_argument("--save-exports", default="", metavar="DIR", help="write fetched pages here as JSON")
    p.add_argument("--project-map", action="append", default=[], metavar="ID=PROJECT",
                   help="OpenAI project_id / Anthropic workspace_id -> inferops project label")
    p.add_argument("--focus-project-tag", default="project", help="Tags key holding the project in FOCUS exports")
    p.add_argument("--focus-cost-column", choices=("BilledCost", "EffectiveCost"), default="BilledCost")
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed |drift| of window totals (default 0.05)")
    p.add_argument("--min-amount", type=float, default=0.01, help="ignore totals under this many USD (both sides)")
    p.add_argument("--textfile", default="", metavar="PATH",
                   help="write inferops_billing_drift_ratio to this .prom file (node-exporter textfile collector)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--totals-only", action="store_true", help="table: only the window totals")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("advise", help="rank cheaper same-tier models for observed traffic (changes nothing)")
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    p.add_argument("--window", default="30d", help="usage window ending now (or at --at), default 30d")
    p.add_argument("--at", default="", help="end of the window (ISO date-time, default now)")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--per-model", type=int, default=1, help="candidates listed per (feature, model)")
    p.add_argument("--lookback", default="1h", help=argparse.SUPPRESS)
    p.add_argument("--chunk", default="6h", help=argparse.SUPPRESS)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_advise)


def _period_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL (http://host:9090)")
    p.add_argument("--period", default="", metavar="YYYY-MM", help="calendar month (UTC)")
    p.add_argument("--from", dest="start", default="", help="start (ISO date or date-time, UTC), inclusive")
    p.add_argument("--to", dest="end", default="", help="end (ISO date or date-time, UTC), exclusive")
    p.add_argument("--lookback", default="1h",
                   help="how far before the start a series' last sample is taken as its baseline (default 1h)")
    p.add_argument("--chunk", default="6h", help="raw-sample fetch chunk, must divide a day (default 6h)")


def _period(args):
    from .report import Period, month_period, parse_time

    try:
        if args.period and (args.start or args.end):
            raise ValueError("give --period or --from/--to, not both")
        if args.period:
            return month_period(args.period)
        if not (args.start and args.end):
            raise ValueError("give --period YYYY-MM, or both --from and --to")
        return Period(parse_time(args.start, "--from"), parse_time(args.end, "--to"))
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _cube(args, period):
    from .report import PrometheusClient, ReportError, load_cube, parse_duration

    try:
        client = PrometheusClient(args.prometheus)
        return load_cube(client, period, lookback=parse_duration(args.lookback), chunk=parse_duration(args.chunk))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except ReportError as exc:
        raise CommandError(str(exc), status=1) from None


def _engine():
    from inferops.settings import load_settings

    from .engine import CostEngine

    try:
        settings = load_settings()
        return settings, CostEngine.from_settings(settings)
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip() or not item.split("=", 1)[1].strip():
            raise CommandError(f"{what}: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _write(path: str, text: str) -> None:
    if path in ("", "-"):
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")


def cmd_report(args: argparse.Namespace) -> int:
    from .focus import focus_csv, focus_rows
    from .report import build_report, report_csv, report_json, report_table, validate_by

    try:
        by = validate_by(args.by.split(","))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    period = _period(args)
    accounts = _pairs(args.billing_account, "--billing-account")
    cube = _cube(args, period)
    if args.format == "focus":
        rows, skipped = focus_rows(cube, by, billing_accounts=accounts)
        _write(args.output, focus_csv(rows))
        if skipped.unpriced_requests:
            print(f"inferops: warning: {int(round(skipped.unpriced_requests))} unpriced requests "
                  f"({int(round(skipped.total_tokens)):,} tokens) left out of the FOCUS file: their cost is unknown",
                  file=sys.stderr)
        return 0
    report = build_report(cube, by)
    text = {"table": report_table, "csv": report_csv, "json": report_json}[args.format](report)
    _write(args.output, text)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from . import reconcile as rc

    period = _period(args)
    settings, engine = _engine()
    pmap = _pairs(args.project_map, "--project-map")
    lines: list = []

    def read_json(path: str):
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"{path}: file not found") from None
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: not a JSON export: {exc}") from None

    try:
        for path in args.openai_costs:
            lines += rc.parse_openai_costs(read_json(path), pmap, where=path)
        for path in args.openai_usage:
            lines += rc.parse_openai_usage(read_json(path), pmap, where=path)
        for path in args.anthropic_costs:
            lines += rc.parse_anthropic_costs(read_json(path), pmap, where=path)
        for path in args.anthropic_usage:
            lines += rc.parse_anthropic_usage(read_json(path), pmap, where=path)
        for path in args.focus:
            try:
                text = Path(path).read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise CommandError(f"{path}: cannot read: {exc}") from None
            lines += rc.parse_focus(text, engine, project_tag=args.focus_project_tag,
                                    cost_column=args.focus_cost_column, where=path)
        for provider in [p.strip() for p in args.fetch.split(",") if p.strip()]:
            if provider == "openai":
                key = os.environ.get(rc.OPENAI_KEY_ENV, "")
                if not key:
                    raise CommandError(f"--fetch openai needs an OpenAI admin key in ${rc.OPENAI_KEY_ENV}")
                costs, usage = rc.fetch_openai(key, period, args.openai_base_url)
                lines += rc.parse_openai_costs(costs, pmap) + rc.parse_openai_usage(usage, pmap)
            elif provider == "anthropic":
                key = os.environ.get(rc.ANTHROPIC_KEY_ENV, "")
                if not key:
                    raise CommandError(f"--fetch anthropic needs an Anthropic admin key in ${rc.ANTHROPIC_KEY_ENV}")
                costs, usage = rc.fetch_anthropic(key, period, args.anthropic_base_url)
                lines += rc.parse_anthropic_costs(costs, pmap) + rc.parse_anthropic_usage(usage, pmap)
            else:
                raise CommandError(f"--fetch: unknown provider {provider!r}; expected openai or anthropic")
            if args.save_exports:
                out = Path(args.save_exports)
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{provider}-costs.json").write_text(json.dumps(costs, indent=1))
                (out / f"{provider}-usage.json").write_text(json.dumps(usage, indent=1))
    except rc.ReconcileError as exc:
        raise CommandError(str(exc)) from None
    if not lines:
        raise CommandError("nothing to reconcile: give exports (--openai-costs, --anthropic-costs, --focus, ...) "
                           "or --fetch")
    cube = _cube(args, period)
    rec = rc.reconcile(cube, lines, engine, tolerance=args.tolerance, min_amount=args.min_amount)
    if args.textfile:
        rc.write_drift_textfile(rec, args.textfile)
    if args.format == "json":
        sys.stdout.write(json.dumps({
            "period": {"start": rc.iso(period.start), "end": rc.iso(period.end)}, "currency": "USD",
            "tolerance": rec.tolerance, "providers": list(rec.providers),
            "daily": [c.as_dict() for c in rec.daily], "totals": [c.as_dict() for c in rec.totals],
            "breaches": [c.as_dict() for c in rec.breaches()],
        }, indent=2) + "\n")
    else:
        sys.stdout.write(rc.reconciliation_table(rec, daily=not args.totals_only))
    return 1 if rec.breaches() else 0


def cmd_advise(args: argparse.Namespace) -> int:
    import time

    from .advise import advice_table, advise
    from .report import Period, iso, parse_duration, parse_time

    try:
        end = parse_time(args.at, "--at") if args.at else float(int(time.time()))
        period = Period(end - parse_duration(args.window), end)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings, engine = _engine()
    cube = _cube(args, period)
    advice = advise(cube, engine, catalog_file=settings.catalog_file, top=args.top, per_group=args.per_model)
    if args.format == "json":
        sys.stdout.write(json.dumps({"window": {"start": iso(period.start), "end": iso(period.end)},
                                     "currency": "USD", "projection_days": 30,
                                     "advice": [a.as_dict() for a in advice]}, indent=2) + "\n")
    else:
        sys.stdout.write(advice_table(advice, cube))
    return 0
