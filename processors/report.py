"""Exact period figures from Prometheus counters: spend and tokens for chargeback.

Why not ``increase(x[range] @ end)``
------------------------------------
``increase`` extrapolates from the first and last sample *inside* the range to
the range's edges (and, for a series that starts inside the range, towards
zero), so a monthly figure is off by up to a scrape interval's worth of spend
at each end, and two adjacent periods do not add up to their union. Finance
needs figures that add up. So this module reads the **raw samples** with range
vector selectors (``/api/v1/query`` of ``metric[Ns]`` at ``time=t`` returns
the stored samples, not an estimate) and computes reset-aware deltas itself:

* A sample at time ``t`` measures everything counted up to ``t``. A period
  ``[start, end)`` owns the samples with ``start < t <= end``: a sample taken
  exactly at a boundary closes the earlier period.
* The baseline of each series is its last sample at or before ``start``,
  looked back at most ``lookback`` seconds (``last_over_time``). A series
  without a baseline was born inside the period and its first sample counts in
  full (OpenTelemetry counters start at 0 in a new process).
* Between consecutive samples ``p -> v``: ``v - p`` when ``v >= p``; a drop
  is a counter reset (process restart) and counts ``v`` (what the new
  process counted since it started).

Accuracy: the figures are the exact sums of what Prometheus stored. What is
counted between a period's last scrape and its end lands in the next period
(at most one scrape interval of spend moves across a boundary, and it is
never lost or counted twice); what a process counted after its last scrape
before dying is lost (no Prometheus method can see it). A series silent for
longer than ``lookback`` before ``start`` and then continuing its old value
would count its whole value again: keep ``lookback`` above your longest scrape
gap (default 1 h).

The raw samples are fetched in chunks (default 6 h, aligned to UTC days, so
the per-day split used by FOCUS rows and reconciliation is exact too) to keep
each response small; state is carried across chunks in memory so chunking
never changes a figure.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from inferops.names import (
    ATTRIBUTION_LABELS,
    CALL_LABELS,
    UNATTRIBUTED,
    Label,
    Metrics,
    TokenType,
)

DAY = 86400
#: Labels a report may group by.
GROUPABLE_LABELS: tuple[str, ...] = CALL_LABELS


class ReportError(Exception):
    """Prometheus could not be queried or answered something unexpected."""


# ---------------------------------------------------------------------------
# Periods
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval ``[start, end)`` in Unix seconds."""

    start: float
    end: float
    label: str = ""

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError(f"period end {iso(self.end)} must be after its start {iso(self.start)}")

    def days(self) -> list[tuple[float, float]]:
        """UTC calendar days intersected with the period, as ``(start, end)`` pairs."""
        out = []
        day = math.floor(self.start / DAY) * DAY
        while day < self.end:
            out.append((max(day, self.start), min(day + DAY, self.end)))
            day += DAY
        return out


def iso(ts: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (FOCUS DateTimeFormat)."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, what: str = "time") -> float:
    """ISO date or date-time (``2026-11-01``, ``2026-11-01T12:00:00Z``); naive means UTC."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            d = dt.date.fromisoformat(raw)
            value = dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ValueError(f"{what}: expected an ISO 8601 date or date-time (2026-11-01 or "
                         f"2026-11-01T00:00:00Z), got {text!r}") from None
    return value.timestamp()


def month_period(text: str) -> Period:
    """``2026-11`` -> ``[2026-11-01T00:00Z, 2026-12-01T00:00Z)``."""
    try:
        year_s, month_s = text.strip().split("-")
        year, month = int(year_s), int(month_s)
        if not 1 <= month <= 12 or len(year_s) != 4:
            raise ValueError
    except ValueError:
        raise ValueError(f"--period: expected a month YYYY-MM (e.g. 2026-11), got {text!r}") from None
    start = calendar.timegm((year, month, 1, 0, 0, 0))
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    end = calendar.timegm((ny, nm, 1, 0, 0, 0))
    return Period(float(start), float(end), f"{year:04d}-{month:02d}")


def month_bounds(ts: float) -> tuple[float, float]:
    """The calendar month (UTC) containing ``ts``."""
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return month_period(f"{d.year:04d}-{d.month:02d}").start, month_period(f"{d.year:04d}-{d.month:02d}").end


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
    raw = text.strip()
    try:
        value = float(raw[:-1])
        unit = units[raw[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"expected a duration like 30s, 15m, 1h or 7d, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive duration, got {text!r}")
    return value * unit


# ---------------------------------------------------------------------------
# Prometheus HTTP API
# ---------------------------------------------------------------------------


class PrometheusClient:
    """Minimal client of the Prometheus HTTP API (``/api/v1/query``)."""

    def __init__(self, base_url: str, timeout: float = 60.0, headers: Mapping[str, str] | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--prometheus: expected an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})

    def query(self, expr: str, at: float) -> list[dict]:
        """Instant query at ``at``; returns ``data.result`` (vector or matrix)."""
        body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
        req = urllib.request.Request(f"{self.base_url}/api/v1/query", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", **self.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = json.loads(exc.read()).get("error", "")
            except Exception:  # noqa: BLE001 - best effort detail
                pass
            raise ReportError(f"Prometheus {self.base_url} answered HTTP {exc.code} to {expr!r}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ReportError(f"cannot reach Prometheus at {self.base_url}: {exc}") from None
        except ValueError:
            raise ReportError(f"Prometheus {self.base_url} answered something that is not JSON") from None
        if doc.get("status") != "success":
            raise ReportError(f"Prometheus query {expr!r} failed: {doc.get('error', doc)}")
        return doc["data"]["result"]


# ---------------------------------------------------------------------------
# Reset-aware deltas from raw samples
# ---------------------------------------------------------------------------

SeriesKey = tuple[tuple[str, str], ...]


def _key(metric: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted((k, v) for k, v in metric.items() if k != "__name__"))


def counter_deltas(
    client: PrometheusClient,
    metric_name: str,
    period: Period,
    *,
    lookback: float = 3600.0,
    chunk: float = 6 * 3600.0,
) -> dict[SeriesKey, dict[float, float]]:
    """Per raw series, the counted amount per UTC day of ``period`` (day start -> amount).

    See the module docstring for the rules. Only days with a non-zero amount appear.
    """
    if DAY % chunk:
        raise ValueError("chunk must divide a day (e.g. 1h, 2h, 3h, 6h, 12h, 1d)")
    last: dict[SeriesKey, float] = {}
    for item in client.query(f"last_over_time({metric_name}[{int(math.ceil(lookback))}s])", period.start):
        last[_key(item["metric"])] = float(item["value"][1])

    out: dict[SeriesKey, dict[float, float]] = {}
    for c0, c1 in _chunks(period, chunk):
        rng = int(math.ceil(c1 - c0))
        for item in client.query(f"{metric_name}[{rng}s]", c1):
            key = _key(item["metric"])
            prev = last.get(key)
            days = out.get(key)
            for ts_raw, val_raw in item["values"]:
                ts = float(ts_raw)
                if ts <= c0 or ts > c1:
                    continue  # range selectors include both ends in 2.x; the earlier chunk owns c0
                v = float(val_raw)
                if math.isnan(v):
                    continue
                delta = v if prev is None or v < prev else v - prev
                prev = v
                if delta:
                    day = _day_of(ts)
                    if days is None:
                        days = out.setdefault(key, {})
                    days[day] = days.get(day, 0.0) + delta
            if prev is not None:
                last[key] = prev
    return out


def _chunks(period: Period, chunk: float) -> Iterator[tuple[float, float]]:
    t = period.start
    while t < period.end:
        nxt = min((math.floor(t / chunk) + 1) * chunk, period.end)
        yield t, nxt
        t = nxt


def _day_of(ts: float) -> float:
    """Start of the UTC day owning a sample at ``ts`` (a sample at midnight closes the previous day)."""
    return float(math.ceil(ts / DAY) * DAY - DAY)


# ---------------------------------------------------------------------------
# Usage cube
# ---------------------------------------------------------------------------


@dataclass
class Cell:
    """Spend and tokens of one group (optionally one day)."""

    cost: dict[str, float] = field(default_factory=dict)  # cost_type -> USD
    tokens: dict[str, float] = field(default_factory=dict)  # token_type -> tokens
    unpriced_requests: float = 0.0

    @property
    def cost_usd(self) -> float:
        return sum(self.cost.values())

    @property
    def total_tokens(self) -> float:
        return sum(self.tokens.values())

    @property
    def input_tokens(self) -> float:
        return sum(self.tokens.get(t, 0.0) for t in TokenType.INPUT_SIDE)

    @property
    def output_tokens(self) -> float:
        return sum(self.tokens.get(t, 0.0) for t in TokenType.OUTPUT_SIDE)

    def add(self, other: "Cell") -> None:
        for k, v in other.cost.items():
            self.cost[k] = self.cost.get(k, 0.0) + v
        for k, v in other.tokens.items():
            self.tokens[k] = self.tokens.get(k, 0.0) + v
        self.unpriced_requests += other.unpriced_requests

    @property
    def unpriced_only(self) -> bool:
        """Calls here were unpriced and nothing was priced: the cost is unknown, not $0."""
        return self.unpriced_requests > 0 and not self.cost


@dataclass
class UsageCube:
    """Per (day, call labels) cells for a period, read exactly from Prometheus."""

    period: Period
    #: (day start, ((label, value), ...) over CALL_LABELS) -> Cell
    cells: dict[tuple[float, SeriesKey], Cell]

    def group(self, by: Iterable[str], *, daily: bool = False) -> dict[tuple, Cell]:
        """Sum cells by the values of ``by`` (and the day when ``daily``)."""
        by = tuple(by)
        out: dict[tuple, Cell] = {}
        for (day, labels), cell in self.cells.items():
            d = dict(labels)
            key = tuple(d.get(b, "") for b in by)
            if daily:
                key = (day, *key)
            out.setdefault(key, Cell()).add(cell)
        return out

    def total(self) -> Cell:
        total = Cell()
        for cell in self.cells.values():
            total.add(cell)
        return total

    def where(self, predicate) -> Cell:
        """Sum of the cells whose label dict satisfies ``predicate``."""
        total = Cell()
        for (_, labels), cell in self.cells.items():
            if predicate(dict(labels)):
                total.add(cell)
        return total


def load_cube(client: PrometheusClient, period: Period, *, lookback: float = 3600.0,
              chunk: float = 6 * 3600.0) -> UsageCube:
    """Read cost, tokens and unpriced requests for ``period`` (three metrics of the names contract)."""
    cells: dict[tuple[float, SeriesKey], Cell] = {}

    def cell_for(day: float, series: SeriesKey) -> Cell:
        d = dict(series)
        key = (day, tuple((name, d.get(name, "")) for name in CALL_LABELS))
        c = cells.get(key)
        if c is None:
            c = cells[key] = Cell()
        return c

    for series, days in counter_deltas(client, Metrics.COST.prom_name, period, lookback=lookback,
                                       chunk=chunk).items():
        ctype = dict(series).get(Label.COST_TYPE, "")
        for day, amount in days.items():
            c = cell_for(day, series)
            c.cost[ctype] = c.cost.get(ctype, 0.0) + amount
    for series, days in counter_deltas(client, Metrics.TOKENS.prom_name, period, lookback=lookback,
                                       chunk=chunk).items():
        ttype = dict(series).get(Label.TOKEN_TYPE, "")
        for day, amount in days.items():
            c = cell_for(day, series)
            c.tokens[ttype] = c.tokens.get(ttype, 0.0) + amount
    for series, days in counter_deltas(client, Metrics.UNPRICED_REQUESTS.prom_name, period, lookback=lookback,
                                       chunk=chunk).items():
        for day, amount in days.items():
            cell_for(day, series).unpriced_requests += amount
    return UsageCube(period, cells)


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def validate_by(by: Iterable[str]) -> tuple[str, ...]:
    out = []
    for name in by:
        name = name.strip()
        if not name:
            continue
        if name not in GROUPABLE_LABELS:
            raise ValueError(f"--by: unknown label {name!r}; expected some of {', '.join(GROUPABLE_LABELS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("--by: give at least one label")
    return tuple(out)


@dataclass
class ReportRow:
    kind: str  # "group", "unattributed", "unpriced", "total"
    key: dict[str, str]
    cell: Cell
    share: float | None

    def as_dict(self) -> dict:
        c = self.cell
        return {
            "kind": self.kind,
            **self.key,
            "cost_usd": None if c.unpriced_only else round(c.cost_usd, 9),
            "share": None if self.share is None or c.unpriced_only else round(self.share, 6),
            "tokens": int(round(c.total_tokens)),
            "input_tokens": int(round(c.input_tokens)),
            "output_tokens": int(round(c.output_tokens)),
            **{f"{t}_tokens": int(round(c.tokens.get(t, 0.0))) for t in TokenType.ALL if t not in ("input", "output")},
            "unpriced_requests": int(round(c.unpriced_requests)),
        }


@dataclass
class Report:
    period: Period
    by: tuple[str, ...]
    rows: list[ReportRow]
    unattributed: ReportRow
    unpriced: ReportRow
    total: ReportRow

    def all_rows(self) -> list[ReportRow]:
        return [*self.rows, self.unattributed, self.unpriced, self.total]


def _is_unattributed(labels: dict[str, str], attribution: tuple[str, ...]) -> bool:
    return any(labels.get(a) == UNATTRIBUTED for a in attribution)


def build_report(cube: UsageCube, by: Iterable[str]) -> Report:
    """Group the cube, compute shares of the priced total, and the summary lines.

    * ``unattributed``: spend whose attribution labels among ``by`` (team,
      project, feature, environment, service_name; all of team, project,
      feature when ``by`` names none) carry the ``unattributed`` value.
    * ``unpriced``: calls whose model had no price. Their cost is unknown (never
      $0); their tokens are those of groups where nothing was priced.
    """
    by = validate_by(by)
    total = cube.total()
    total_cost = total.cost_usd
    rows = []
    for key, cell in cube.group(by).items():
        share = (cell.cost_usd / total_cost) if total_cost else None
        rows.append(ReportRow("group", dict(zip(by, key)), cell, share))
    rows.sort(key=lambda r: (-r.cell.cost_usd, -r.cell.total_tokens, tuple(r.key.values())))
    attribution = tuple(b for b in by if b in ATTRIBUTION_LABELS) or (Label.TEAM, Label.PROJECT, Label.FEATURE)
    un = cube.where(lambda d: _is_unattributed(d, attribution))
    unpriced = Cell(unpriced_requests=total.unpriced_requests)
    for cell in cube.group(CALL_LABELS, daily=False).values():
        if cell.unpriced_only:
            for k, v in cell.tokens.items():
                unpriced.tokens[k] = unpriced.tokens.get(k, 0.0) + v
    blank = {b: "" for b in by}
    return Report(
        cube.period, by, rows,
        ReportRow("unattributed", blank, un, (un.cost_usd / total_cost) if total_cost else None),
        ReportRow("unpriced", blank, unpriced, None),
        ReportRow("total", blank, total, 1.0 if total_cost else None),
    )


def report_json(report: Report) -> str:
    return json.dumps({
        "period": {"start": iso(report.period.start), "end": iso(report.period.end), "label": report.period.label},
        "currency": "USD",
        "by": list(report.by),
        "method": "exact reset-aware deltas of raw Prometheus samples; a sample at a boundary closes the "
                  "earlier period; costs are inferops estimates",
        "rows": [r.as_dict() for r in report.rows],
        "unattributed": report.unattributed.as_dict(),
        "unpriced": report.unpriced.as_dict(),
        "total": report.total.as_dict(),
    }, indent=2) + "\n"


CSV_TOKEN_COLUMNS = ("tokens", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                     "reasoning_tokens")


def report_csv(report: Report) -> str:
    import csv
    import io

    buf = io.StringIO()
    cols = ["kind", *report.by, "cost_usd", "share", *CSV_TOKEN_COLUMNS, "unpriced_requests",
            "period_start", "period_end", "currency"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in report.all_rows():
        d = row.as_dict()
        w.writerow({**{c: d.get(c) for c in cols if c in d},
                    "cost_usd": "" if d["cost_usd"] is None else f"{d['cost_usd']:.6f}",
                    "share": "" if d["share"] is None else f"{d['share']:.6f}",
                    "period_start": iso(report.period.start), "period_end": iso(report.period.end),
                    "currency": "USD"})
    return buf.getvalue()


def report_table(report: Report) -> str:
    head = [*report.by, "cost USD", "share", "tokens", "input", "output", "unpriced req"]
    lines: list[list[str]] = []
    for row in report.all_rows():
        d = row.as_dict()
        if row.kind == "group":
            keys = [row.key[b] for b in report.by]
        else:
            label = {"unattributed": "(unattributed)", "unpriced": "(unpriced: cost unknown)",
                     "total": "TOTAL"}[row.kind]
            keys = [label] + [""] * (len(report.by) - 1)
        cost = "unknown" if d["cost_usd"] is None else f"{d['cost_usd']:,.4f}"
        if row.kind == "unpriced":
            cost = "unknown"
        share = "" if d["share"] is None else f"{100 * d['share']:.1f}%"
        lines.append([*keys, cost, share, f"{d['tokens']:,}", f"{d['input_tokens']:,}",
                      f"{d['output_tokens']:,}", f"{d['unpriced_requests']:,}"])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
    nkeys = len(report.by)

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < nkeys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [f"inferops spend {iso(report.period.start)} .. {iso(report.period.end)} (end exclusive), "
           f"USD, estimated from inferops metrics", fmt(head), fmt(["-" * w for w in widths])]
    for i, cells in enumerate(lines):
        if i == len(report.rows):
            out.append(fmt(["-" * w for w in widths]))
        out.append(fmt(cells))
    return "\n".join(out) + "\n"
