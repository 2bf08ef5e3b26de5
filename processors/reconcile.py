"""Reconcile inferops' estimates with what the providers bill.

Inputs (any mix), all normalised to :class:`BillLine` (one day, provider,
model, project; a cost and/or token counts):

* OpenAI ``GET /v1/organization/costs`` pages (``bucket_width=1d``,
  ``group_by=project_id,line_item``): ``amount.value`` in ``amount.currency``
  (``usd``); the model is the part of ``line_item`` before the first comma
  (``"gpt-4o-2024-08-06, input"``).
* OpenAI ``GET /v1/organization/usage/completions`` pages
  (``group_by=project_id,model``): ``input_tokens`` (cached included) and
  ``output_tokens``.
* Anthropic ``GET /v1/organizations/cost_report`` pages
  (``group_by[]=workspace_id,description``): ``amount`` is a decimal string
  in the lowest currency unit (cents); only ``cost_type`` ``tokens`` rows are
  compared (web search / code execution fees are not LLM tokens inferops
  prices).
* Anthropic ``GET /v1/organizations/usage_report/messages`` pages
  (``group_by[]=model,workspace_id``): uncached input + cache reads + cache
  writes (5m, 1h) = input; ``output_tokens``.
* Cloud FOCUS CSV exports (Bedrock, Azure OpenAI, Vertex AI): ``Usage`` rows of
  those services; cost from ``BilledCost`` (or ``EffectiveCost``), day from
  ``ChargePeriodStart``, project from a ``Tags`` key, model found in
  ``x_Model``/``ResourceId``/``ResourceName``/``SkuMeter``/``x_SkuMeterName``/
  ``ChargeDescription`` by catalog resolution.

Projects: OpenAI ``project_id`` and Anthropic ``workspace_id`` map to inferops
``project`` label values through ``project_map`` (unmapped ids are kept as
they are). When a provider's lines carry no project at all, its estimates are
compared per model only.

Drift of a cell = (estimate - billed) / billed. Both model names go through
the catalog resolver, so ``gpt-4o-2024-08-06`` on the bill and ``gpt-4o`` in
the metrics meet.

Admin keys are only ever put in request headers; they are never logged,
printed, or kept in error messages (any echo of the key is replaced by ``***``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from inferops.names import Label, Metrics, Provider

from .catalog import model_candidates
from .report import DAY, Period, UsageCube, iso

OPENAI_BASE = "https://api.openai.com"
ANTHROPIC_BASE = "https://api.anthropic.com"
OPENAI_KEY_ENV = "OPENAI_ADMIN_KEY"
ANTHROPIC_KEY_ENV = "ANTHROPIC_ADMIN_KEY"
ANTHROPIC_VERSION = "2023-06-01"


class ReconcileError(Exception):
    """An export could not be read or a provider API could not be fetched."""


@dataclass
class BillLine:
    day: float
    provider: str
    model: str
    project: str
    cost_usd: float | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None
    source: str = ""


def _day(ts: float) -> float:
    return float(math.floor(ts / DAY) * DAY)


def _rfc3339(text: str, where: str) -> float:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ReconcileError(f"{where}: expected an RFC 3339 time, got {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def _pages(doc_or_pages, where: str) -> list[dict]:
    pages = doc_or_pages if isinstance(doc_or_pages, list) else [doc_or_pages]
    for p in pages:
        if not isinstance(p, dict) or not isinstance(p.get("data"), list):
            raise ReconcileError(f"{where}: expected a page object with a 'data' list of buckets")
    return pages


def _map(project_map: Mapping[str, str], value) -> str:
    if value is None:
        return ""
    return project_map.get(str(value), str(value))


# ---------------------------------------------------------------------------
# Parsers of the documented export shapes
# ---------------------------------------------------------------------------


def parse_openai_costs(doc, project_map: Mapping[str, str] | None = None, where: str = "openai costs") -> list[BillLine]:
    pm = project_map or {}
    out = []
    for page in _pages(doc, where):
        for bucket in page["data"]:
            day = _day(float(bucket["start_time"]))
            for r in bucket.get("results", ()):
                amount = r.get("amount") or {}
                currency = str(amount.get("currency", "usd")).lower()
                if currency != "usd":
                    raise ReconcileError(f"{where}: amount in {currency!r}; inferops compares US dollars only")
                line_item = r.get("line_item") or ""
                model = line_item.split(",", 1)[0].strip() if line_item else ""
                out.append(BillLine(day, Provider.OPENAI, model, _map(pm, r.get("project_id")),
                                    cost_usd=float(amount.get("value", 0.0)), source="openai-costs"))
    return out


def parse_openai_usage(doc, project_map: Mapping[str, str] | None = None, where: str = "openai usage") -> list[BillLine]:
    pm = project_map or {}
    out = []
    for page in _pages(doc, where):
        for bucket in page["data"]:
            day = _day(float(bucket["start_time"]))
            for r in bucket.get("results", ()):
                out.append(BillLine(day, Provider.OPENAI, r.get("model") or "", _map(pm, r.get("project_id")),
                                    input_tokens=float(r.get("input_tokens", 0)),
                                    output_tokens=float(r.get("output_tokens", 0)), source="openai-usage"))
    return out


def parse_anthropic_costs(doc, project_map: Mapping[str, str] | None = None,
                          where: str = "anthropic cost report") -> list[BillLine]:
    pm = project_map or {}
    out = []
    for page in _pages(doc, where):
        for bucket in page["data"]:
            day = _day(_rfc3339(bucket["starting_at"], where))
            for r in bucket.get("results", ()):
                if r.get("cost_type") not in (None, "tokens"):
                    continue
                if str(r.get("currency", "USD")).upper() != "USD":
                    raise ReconcileError(f"{where}: amount in {r.get('currency')!r}; inferops compares US dollars only")
                try:
                    cents = float(r["amount"])
                except (KeyError, TypeError, ValueError):
                    raise ReconcileError(f"{where}: expected 'amount' as a decimal string of cents, "
                                         f"got {r.get('amount')!r}") from None
                out.append(BillLine(day, Provider.ANTHROPIC, r.get("model") or "", _map(pm, r.get("workspace_id")),
                                    cost_usd=cents / 100.0, source="anthropic-cost-report"))
    return out


def parse_anthropic_usage(doc, project_map: Mapping[str, str] | None = None,
                          where: str = "anthropic usage report") -> list[BillLine]:
    pm = project_map or {}
    out = []
    for page in _pages(doc, where):
        for bucket in page["data"]:
            day = _day(_rfc3339(bucket["starting_at"], where))
            for r in bucket.get("results", ()):
                cc = r.get("cache_creation") or {}
                inp = (r.get("uncached_input_tokens", 0) + r.get("cache_read_input_tokens", 0)
                       + cc.get("ephemeral_5m_input_tokens", 0) + cc.get("ephemeral_1h_input_tokens", 0))
                out.append(BillLine(day, Provider.ANTHROPIC, r.get("model") or "", _map(pm, r.get("workspace_id")),
                                    input_tokens=float(inp), output_tokens=float(r.get("output_tokens", 0)),
                                    source="anthropic-usage-report"))
    return out


#: FOCUS ServiceName (lower-case substring) -> inferops provider label.
FOCUS_SERVICES: tuple[tuple[str, str], ...] = (
    ("bedrock", Provider.BEDROCK),
    ("azure openai", Provider.AZURE_OPENAI),
    ("openai service", Provider.AZURE_OPENAI),
    ("foundry models", Provider.AZURE_INFERENCE),
    ("vertex ai", Provider.VERTEX_AI),
    ("gemini", Provider.VERTEX_AI),
)
FOCUS_MODEL_COLUMNS = ("x_Model", "ResourceId", "ResourceName", "SkuMeter", "x_SkuMeterName", "ChargeDescription")
_SPLIT = re.compile(r"[\s,;()|]+")


def parse_focus(text: str, engine, *, project_tag: str = "project", cost_column: str = "BilledCost",
                where: str = "FOCUS export") -> list[BillLine]:
    """Usage rows of Bedrock, Azure OpenAI and Vertex AI in a FOCUS CSV export."""
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or ())
    for needed in ("ChargePeriodStart", "ServiceName", "ChargeCategory", cost_column):
        if needed not in cols:
            raise ReconcileError(f"{where}: missing FOCUS column {needed!r}")
    out = []
    for lineno, row in enumerate(reader, start=2):
        if row.get("ChargeCategory") != "Usage":
            continue
        service = (row.get("ServiceName") or "").lower()
        provider = next((p for s, p in FOCUS_SERVICES if s in service), None)
        if provider is None:
            continue
        if (row.get("BillingCurrency") or "USD").upper() != "USD":
            raise ReconcileError(f"{where}:{lineno}: BillingCurrency {row.get('BillingCurrency')!r}; "
                                 "inferops compares US dollars only")
        try:
            cost = float(row[cost_column])
        except (TypeError, ValueError):
            raise ReconcileError(f"{where}:{lineno}: {cost_column} is not a number: {row.get(cost_column)!r}") from None
        day = _day(_rfc3339(row["ChargePeriodStart"], f"{where}:{lineno}"))
        project = ""
        if row.get("Tags"):
            try:
                tags = json.loads(row["Tags"])
            except ValueError:
                raise ReconcileError(f"{where}:{lineno}: Tags is not a JSON object") from None
            if isinstance(tags, dict) and tags.get(project_tag) is not None:
                project = str(tags[project_tag])
        out.append(BillLine(day, provider, find_model(engine, provider, row), project, cost_usd=cost,
                            source=f"focus:{provider}"))
    return out


def find_model(engine, provider: str, row: Mapping[str, str]) -> str:
    """The first value (or word of a value) in the model-bearing columns that resolves in the catalog."""
    for col in FOCUS_MODEL_COLUMNS:
        value = (row.get(col) or "").strip()
        if not value:
            continue
        words = [w for w in _SPLIT.split(value) if w]
        # The value, each word, then runs of 2-4 words joined by "-" ("Gemini 2.5 Flash" -> gemini-2.5-flash).
        joined = ["-".join(words[i:i + n]).lower() for n in (4, 3, 2) for i in range(len(words) - n + 1)]
        for cand in (value, *words, *joined):
            if engine.resolve(provider, cand).entry is not None:
                return cand
    return ""


# ---------------------------------------------------------------------------
# Fetching (paginated GETs with admin keys)
# ---------------------------------------------------------------------------


def fetch_pages(url: str, params: list[tuple[str, str]], headers: Mapping[str, str], *, secret: str = "",
                timeout: float = 60.0, max_pages: int = 1000) -> list[dict]:
    """GET ``url`` with ``params``, following ``next_page`` (as ``page=``) while ``has_more``."""
    pages: list[dict] = []
    page: str | None = None
    for _ in range(max_pages):
        query = list(params) + ([("page", page)] if page else [])
        req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(query)}", headers=dict(headers), method="GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                body = json.loads(exc.read())
                err = body.get("error", body)
                detail = err.get("message", "") if isinstance(err, dict) else str(err)
            except Exception:  # noqa: BLE001 - best effort detail
                pass
            raise ReconcileError(_redact(f"{url} answered HTTP {exc.code}: {detail}", secret)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ReconcileError(_redact(f"cannot reach {url}: {exc}", secret)) from None
        except ValueError:
            raise ReconcileError(f"{url} answered something that is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise ReconcileError(f"{url}: expected a page with a 'data' list")
        pages.append(doc)
        page = doc.get("next_page")
        if not doc.get("has_more") or not page:
            return pages
    raise ReconcileError(f"{url}: more than {max_pages} pages; narrow the period")


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _utc(ts: float) -> str:
    return iso(ts)


def fetch_openai(admin_key: str, period: Period, base_url: str = OPENAI_BASE) -> tuple[list[dict], list[dict]]:
    """(costs pages, completions usage pages) for the period, daily, by project and line item / model."""
    headers = {"Authorization": f"Bearer {admin_key}", "Accept": "application/json"}
    span = [("start_time", str(int(period.start))), ("end_time", str(int(period.end))), ("bucket_width", "1d")]
    base = base_url.rstrip("/")
    costs = fetch_pages(f"{base}/v1/organization/costs",
                        span + [("group_by", "project_id"), ("group_by", "line_item"), ("limit", "180")],
                        headers, secret=admin_key)
    usage = fetch_pages(f"{base}/v1/organization/usage/completions",
                        span + [("group_by", "project_id"), ("group_by", "model"), ("limit", "31")],
                        headers, secret=admin_key)
    return costs, usage


def fetch_anthropic(admin_key: str, period: Period, base_url: str = ANTHROPIC_BASE) -> tuple[list[dict], list[dict]]:
    """(cost report pages, messages usage report pages) for the period, daily."""
    headers = {"x-api-key": admin_key, "anthropic-version": ANTHROPIC_VERSION, "Accept": "application/json"}
    span = [("starting_at", _utc(period.start)), ("ending_at", _utc(period.end)), ("bucket_width", "1d"),
            ("limit", "31")]
    base = base_url.rstrip("/")
    costs = fetch_pages(f"{base}/v1/organizations/cost_report",
                        span + [("group_by[]", "workspace_id"), ("group_by[]", "description")],
                        headers, secret=admin_key)
    usage = fetch_pages(f"{base}/v1/organizations/usage_report/messages",
                        span + [("group_by[]", "model"), ("group_by[]", "workspace_id")],
                        headers, secret=admin_key)
    return costs, usage


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


@dataclass
class DriftCell:
    day: float | None  # None for the whole-window totals
    provider: str
    model: str
    project: str
    estimate_usd: float = 0.0
    billed_usd: float | None = None
    estimate_tokens: float = 0.0
    billed_tokens: float | None = None

    @property
    def drift(self) -> float | None:
        """(estimate - billed) / billed; ``inf`` when billed is 0 and estimated is not; None without a bill."""
        if self.billed_usd is None:
            return None
        if self.billed_usd == 0:
            return 0.0 if self.estimate_usd == 0 else math.inf
        return (self.estimate_usd - self.billed_usd) / self.billed_usd

    @property
    def token_drift(self) -> float | None:
        if self.billed_tokens is None or self.billed_tokens == 0:
            return None
        return (self.estimate_tokens - self.billed_tokens) / self.billed_tokens

    def as_dict(self) -> dict:
        d = self.drift
        return {
            "day": None if self.day is None else iso(self.day)[:10], "provider": self.provider,
            "model": self.model, "project": self.project, "estimate_usd": round(self.estimate_usd, 9),
            "billed_usd": None if self.billed_usd is None else round(self.billed_usd, 9),
            "drift": None if d is None else (d if math.isfinite(d) else "inf"),
            "estimate_tokens": int(round(self.estimate_tokens)),
            "billed_tokens": None if self.billed_tokens is None else int(round(self.billed_tokens)),
            "token_drift": self.token_drift,
        }


@dataclass
class Reconciliation:
    period: Period
    daily: list[DriftCell]
    totals: list[DriftCell]
    tolerance: float
    min_amount: float
    #: Providers compared (those with bill lines).
    providers: tuple[str, ...] = ()

    def breaches(self) -> list[DriftCell]:
        """Window totals whose |drift| exceeds the tolerance (cells under ``min_amount`` on both sides ignored)."""
        out = []
        for c in self.totals:
            if c.billed_usd is None:
                continue
            if max(c.estimate_usd, c.billed_usd) < self.min_amount:
                continue
            d = c.drift
            if d is not None and abs(d) > self.tolerance:
                out.append(c)
        return out


def canonical_model(engine, provider: str, model: str) -> str:
    """The most general form of ``model`` the catalog knows (``gpt-4o-2024-08-06`` -> ``gpt-4o``).

    Bills name dated snapshots and deployment ids, metrics name what the
    provider answered; both sides go through this so the same model meets.
    """
    if not model:
        return ""
    best = ""
    for form in model_candidates(model):
        if form.endswith("-latest") and not model.endswith("-latest"):
            continue
        if engine.resolve(provider, form).entry is not None:
            best = form.lower()
    return best or model.lower()


def reconcile(cube: UsageCube, lines: Iterable[BillLine], engine, *, tolerance: float = 0.05,
              min_amount: float = 0.01) -> Reconciliation:
    """Compare daily estimates (provider, model, project) with bill lines of the same providers."""
    period = cube.period
    lines = [ln for ln in lines if period.start <= ln.day < period.end or
             (ln.day < period.start < ln.day + DAY)]
    providers = tuple(sorted({ln.provider for ln in lines}))
    # Providers whose bill has no project: compare per model only.
    projectless = {p for p in providers if all(not ln.project for ln in lines if ln.provider == p)}
    cells: dict[tuple, DriftCell] = {}

    def cell(day: float, provider: str, model: str, project: str) -> DriftCell:
        project = "" if provider in projectless else project
        key = (day, provider, model, project)
        c = cells.get(key)
        if c is None:
            c = cells[key] = DriftCell(day, provider, model, project)
        return c

    for (day, provider, model, project), est in cube.group((Label.PROVIDER, Label.MODEL, Label.PROJECT),
                                                           daily=True).items():
        if provider not in providers:
            continue
        c = cell(_day(day), provider, canonical_model(engine, provider, model), project)
        c.estimate_usd += est.cost_usd
        c.estimate_tokens += est.total_tokens
    for ln in lines:
        c = cell(ln.day, ln.provider, canonical_model(engine, ln.provider, ln.model), ln.project)
        if ln.cost_usd is not None:
            c.billed_usd = (c.billed_usd or 0.0) + ln.cost_usd
        if ln.input_tokens is not None or ln.output_tokens is not None:
            c.billed_tokens = (c.billed_tokens or 0.0) + (ln.input_tokens or 0.0) + (ln.output_tokens or 0.0)
    daily = sorted(cells.values(), key=lambda c: (c.day, c.provider, c.model, c.project))
    totals: dict[tuple, DriftCell] = {}
    for c in daily:
        key = (c.provider, c.model, c.project)
        t = totals.get(key)
        if t is None:
            t = totals[key] = DriftCell(None, *key)
        t.estimate_usd += c.estimate_usd
        t.estimate_tokens += c.estimate_tokens
        if c.billed_usd is not None:
            t.billed_usd = (t.billed_usd or 0.0) + c.billed_usd
        if c.billed_tokens is not None:
            t.billed_tokens = (t.billed_tokens or 0.0) + c.billed_tokens
    return Reconciliation(period, daily, sorted(totals.values(), key=lambda c: (c.provider, c.model, c.project)),
                          tolerance, min_amount, providers)


def write_drift_textfile(rec: Reconciliation, path: str | Path) -> int:
    """Write ``inferops_billing_drift_ratio`` per (provider, model, project) for node-exporter's textfile collector.

    Atomic (temp file + rename). Cells without a bill or with an infinite ratio
    (billed $0) are left out. Returns the number of series written.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    m = Metrics.BILLING_DRIFT_RATIO
    registry = CollectorRegistry()
    gauge = Gauge(m.prom_name, m.description, labelnames=list(m.labels), registry=registry)
    n = 0
    for c in rec.totals:
        d = c.drift
        if d is None or not math.isfinite(d):
            continue
        gauge.labels(**{Label.PROVIDER: c.provider, Label.MODEL: c.model or "unknown",
                        Label.PROJECT: c.project or "all"}).set(d)
        n += 1
    write_to_textfile(str(path), registry)
    return n


def reconciliation_table(rec: Reconciliation, daily: bool = True) -> str:
    def pct(v):
        if v is None:
            return "-"
        if not math.isfinite(v):
            return "not billed"
        return f"{100 * v:+.2f}%"

    def line(c: DriftCell) -> list[str]:
        return [iso(c.day)[:10] if c.day is not None else "TOTAL", c.provider, c.model or "(unknown)",
                c.project or "(all)", f"{c.estimate_usd:,.4f}",
                "-" if c.billed_usd is None else f"{c.billed_usd:,.4f}", pct(c.drift),
                f"{int(round(c.estimate_tokens)):,}",
                "-" if c.billed_tokens is None else f"{int(round(c.billed_tokens)):,}", pct(c.token_drift)]

    head = ["day", "provider", "model", "project", "estimate USD", "billed USD", "drift", "est tokens",
            "billed tokens", "token drift"]
    rows = ([line(c) for c in rec.daily] if daily else []) + [line(c) for c in rec.totals]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 4 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    out = [f"reconciliation {iso(rec.period.start)} .. {iso(rec.period.end)}, USD; drift = (estimate - billed) "
           f"/ billed; tolerance {100 * rec.tolerance:g}% on window totals", fmt(head), fmt(["-" * w for w in widths])]
    out += [fmt(r) for r in rows]
    breaches = rec.breaches()
    out.append(f"{len(breaches)} of {len(rec.totals)} totals beyond tolerance" if rec.totals
               else "nothing to compare: no bill lines in the period")
    return "\n".join(out) + "\n"
