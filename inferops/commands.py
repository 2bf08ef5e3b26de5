"""Core subcommands: ``prices``, ``settings`` and ``names``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import CommandError
from .yamlfile import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    prices = sub.add_parser("prices", help="look up, compute, update and validate prices (USD)")
    psub = prices.add_subparsers(dest="prices_command", metavar="ACTION", required=True)

    p = psub.add_parser("lookup", help="show the catalog entry a model resolves to")
    p.add_argument("model")
    p.add_argument("--provider", default="", help="provider (openai, anthropic, aws.bedrock, ...)")
    p.add_argument("--prices-file", default=None, help="price overrides YAML (default: settings)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_lookup)

    p = psub.add_parser("cost", help="price one call and print the breakdown in USD")
    p.add_argument("--provider", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--input", type=_count, default=0, help="input tokens, cache included (semconv)")
    p.add_argument("--output", type=_count, default=0, help="output tokens, reasoning included")
    p.add_argument("--cache-read", type=_count, default=0)
    p.add_argument("--cache-write", type=_count, default=0, help="cache-write tokens (5-minute)")
    p.add_argument("--cache-write-1h", type=_count, default=0, help="cache-write tokens (1-hour)")
    p.add_argument("--reasoning", type=_count, default=0)
    p.add_argument("--requests", type=_count, default=1)
    p.add_argument("--tier", choices=("standard", "batch", "flex", "priority"), default="standard")
    p.add_argument("--at", default=None, help="price in force at this date (YYYY-MM-DD), default now")
    p.add_argument("--prices-file", default=None, help="price overrides YAML (default: settings)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_cost)

    p = psub.add_parser("update", help="regenerate the catalog from a LiteLLM price table (file or URL)")
    p.add_argument("--from", dest="source", required=True, help="path or http(s) URL of the price table")
    p.add_argument("--out", required=True, help="catalog JSON to write (use with INFEROPS_CATALOG_FILE)")
    p.add_argument("--source-version", default="", help="version label of the source (default: file name)")
    p.set_defaults(func=cmd_update)

    p = psub.add_parser("validate", help="validate a price overrides YAML file")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    st = sub.add_parser("settings", help="show the effective settings or their reference table")
    ssub = st.add_subparsers(dest="settings_command", metavar="ACTION", required=True)
    p = ssub.add_parser("show", help="print effective settings and where each came from")
    p.set_defaults(func=cmd_settings_show)
    p = ssub.add_parser("docs", help="print docs/settings.md")
    p.set_defaults(func=cmd_settings_docs)

    nm = sub.add_parser("names", help="the names contract (metrics, labels, attributes)")
    nsub = nm.add_subparsers(dest="names_command", metavar="ACTION", required=True)
    p = nsub.add_parser("docs", help="print docs/metrics.md")
    p.set_defaults(func=cmd_names_docs)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value}")
    return value


def _engine(prices_file: str | None):
    from .settings import load_settings
    from inferops.processors.engine import CostEngine
    from inferops.processors.catalog import load_catalog
    from inferops.processors.overrides import load_overrides

    try:
        settings = load_settings()
        path = settings.prices_file if prices_file is None else prices_file
        overrides = load_overrides(path) if path else None
        return CostEngine(load_catalog(settings.catalog_file or None), overrides)
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def cmd_lookup(args: argparse.Namespace) -> int:
    engine = _engine(args.prices_file)
    res = engine.resolve(args.provider, args.model)
    if res.entry is None:
        raise CommandError(
            f"model {args.model!r}{' (' + args.provider + ')' if args.provider else ''} is not in the catalog: "
            "calls to it are reported as unpriced. Add it to a price overrides file.", status=1)
    e = res.entry
    if args.json:
        print(json.dumps({
            "key": e.key, "provider": e.provider, "model": e.model, "mode": e.mode, "matched": res.matched,
            "via_fallback": res.via_fallback, "catalog_version": engine.version, "currency": "USD",
            "per_million": {t: e.per_million(t) for t in e.prices},
            "tiers": [{"above": a, "per_million": {t: {c: v * 1e6 for c, v in p.items()} for t, p in tp.items()}}
                      for a, tp in e.tiers],
        }, indent=2))
        return 0
    print(f"{args.model} -> {e.key}  (provider {e.provider}, mode {e.mode}"
          f"{', via related provider' if res.via_fallback else ''})")
    print(f"catalog {engine.version}; prices in USD per 1M tokens (per_request: USD per request)")
    for tier in ("standard", "batch", "flex", "priority"):
        if tier in e.prices:
            parts = ", ".join(f"{c} {v:g}" for c, v in sorted(e.per_million(tier).items()))
            print(f"  {tier:<9} {parts}")
    for above, tp in e.tiers:
        for tier, comps in tp.items():
            parts = ", ".join(f"{c} {v * 1e6:g}" for c, v in sorted(comps.items()))
            print(f"  above {above} input tokens ({tier}): {parts}")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    import datetime as dt
    from inferops.processors.usage import UsageRecord

    engine = _engine(args.prices_file)
    ts = None
    if args.at:
        try:
            d = dt.date.fromisoformat(args.at)
        except ValueError:
            raise CommandError(f"--at: expected a date YYYY-MM-DD, got {args.at!r}") from None
        ts = dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.timezone.utc).timestamp()
    cached = args.cache_read + args.cache_write + args.cache_write_1h
    if cached > args.input:
        raise CommandError(f"--input ({args.input}) must include the cached tokens "
                           f"(cache read + cache write = {cached}), as in the GenAI semantic conventions")
    if args.reasoning > args.output:
        raise CommandError(f"--output ({args.output}) must include the reasoning tokens ({args.reasoning})")
    usage = UsageRecord(
        provider=args.provider, model=args.model, input_tokens=args.input, output_tokens=args.output,
        cache_read_tokens=args.cache_read, cache_write_5m_tokens=args.cache_write,
        cache_write_1h_tokens=args.cache_write_1h, reasoning_tokens=args.reasoning,
        requests=args.requests, service_tier=args.tier, timestamp=ts,
    )
    result = engine.price(usage)
    if args.json:
        print(json.dumps({
            "status": result.status, "total_usd": result.total, "components_usd": result.components,
            "catalog_key": result.catalog_key, "catalog_version": result.catalog_version,
            "service_tier": result.service_tier, "context_tier_above": result.context_tier_above,
            "discount_percent": result.discount_percent, "notes": list(result.notes), "currency": "USD",
        }, indent=2))
        if not result.priced:
            print(f"inferops: {args.model} ({args.provider}) is unpriced: cost unknown (not $0)",
                  file=sys.stderr)
        return 0 if result.priced else 1
    if not result.priced:
        why = result.notes[0] if result.notes else "not in the catalog"
        print(f"inferops: {args.model} ({args.provider}): UNPRICED - {why} (catalog {result.catalog_version}); "
              "cost unknown, not $0. Add it to a price overrides file.", file=sys.stderr)
        return 1
    print(f"{args.provider} {args.model} -> {result.catalog_key}  [{result.status}, tier {result.service_tier}"
          f"{f', long-context above {result.context_tier_above} tokens' if result.context_tier_above else ''}"
          f"{f', discount {result.discount_percent:g}%' if result.discount_percent else ''}]")
    buckets = usage.token_buckets()
    rows = [("input (uncached)", buckets["input"], "input"), ("cache read", buckets["cache_read"], "cache_read"),
            ("cache write", buckets["cache_write"], "cache_write"), ("output", buckets["output"], "output"),
            ("reasoning", buckets["reasoning"], "reasoning"), ("requests", usage.requests, "request")]
    for label, n, comp in rows:
        cost = result.components.get(comp, 0.0)
        if cost or (n and comp != "request"):
            print(f"  {label:<17} {n:>12,}  ${cost:,.6f}")
    for comp in ("audio", "image"):
        if result.components.get(comp):
            print(f"  {comp:<17} {'':>12}  ${result.components[comp]:,.6f}")
    print(f"  {'total':<17} {'':>12}  ${result.total:,.6f} USD")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  catalog {result.catalog_version}")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    from inferops.processors.catalog_build import SourceError, build_catalog, read_source, write_catalog

    try:
        raw = read_source(args.source)
    except FileNotFoundError:
        raise CommandError(f"{args.source}: file not found") from None
    except OSError as exc:
        raise CommandError(f"{args.source}: cannot read: {exc}") from None
    name = args.source.rstrip("/").rsplit("/", 1)[-1]
    try:
        catalog = build_catalog(raw, source_name=name, source_version=args.source_version or name,
                                source_url=args.source if args.source.startswith("http") else "")
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    try:
        write_catalog(catalog, args.out)
    except OSError as exc:
        raise CommandError(f"--out {args.out}: cannot write: {exc}") from None
    print(f"wrote {args.out}: {len(catalog['entries'])} priced models, version {catalog['version']}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from inferops.processors.engine import CostEngine
    from inferops.processors.overrides import load_overrides

    from inferops.processors.catalog import load_catalog
    from .settings import load_settings

    try:
        overrides = load_overrides(args.file)
        catalog = load_catalog(load_settings().catalog_file or None)
        # Resolves base models and alias targets: a missing one is an error too.
        CostEngine(catalog, overrides=overrides)
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc), status=1) from None
    print(f"{args.file}: OK ({len(overrides.models)} models, {len(overrides.aliases)} aliases, "
          f"{len(overrides.discounts)} discounts)")
    return 0


def cmd_settings_show(args: argparse.Namespace) -> int:
    from .settings import SETTINGS, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    for s in SETTINGS:
        value = getattr(settings, s.name)
        if s.name.endswith("token") and value:
            value = "***"
        print(f"{s.name} = {value!r}  ({settings.origins.get(s.name, 'default')})")
    return 0


def cmd_settings_docs(args: argparse.Namespace) -> int:
    from .settings import settings_docs

    sys.stdout.write(settings_docs())
    return 0


def cmd_names_docs(args: argparse.Namespace) -> int:
    from .names_docs import metrics_docs

    sys.stdout.write(metrics_docs())
    return 0


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
