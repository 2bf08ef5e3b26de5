"""Who spent what: read inferops' own cost counters and print the live table and the chargeback.

The figures are read from the metric reader Prometheus scrapes (not from a
side tally kept by the traffic generator), so what the terminal shows is what
the dashboards and the budget rules see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from inferops.names import Label, Metrics, PricingStatus

#: Chargeback key order: team x project x feature x model.
KEY_LABELS = (Label.TEAM, Label.PROJECT, Label.FEATURE, Label.MODEL)


@dataclass
class Line:
    usd: float = 0.0
    requests: float = 0.0
    unpriced: float = 0.0
    errors: float = 0.0


Key = tuple[str, str, str, str]


def snapshot(families: Iterable) -> dict[Key, Line]:
    """Cost and request totals by team, project, feature and model, from prometheus_client families."""
    cost_name, req_name = Metrics.COST.prom_name, Metrics.REQUESTS.prom_name
    out: dict[Key, Line] = {}
    for fam in families:
        for s in fam.samples:
            if s.name not in (cost_name, req_name):
                continue
            key = tuple(s.labels.get(k, "") for k in KEY_LABELS)
            line = out.setdefault(key, Line())  # type: ignore[arg-type]
            if s.name == cost_name:
                line.usd += s.value
            else:
                line.requests += s.value
                if s.labels.get(Label.PRICING_STATUS) == PricingStatus.UNPRICED:
                    line.unpriced += s.value
                if s.labels.get(Label.OUTCOME) == "error":
                    line.errors += s.value
    return out


def by_team(lines: dict[Key, Line]) -> dict[str, Line]:
    teams: dict[str, Line] = {}
    for key, line in lines.items():
        t = teams.setdefault(key[0], Line())
        t.usd += line.usd
        t.requests += line.requests
        t.unpriced += line.unpriced
        t.errors += line.errors
    return teams


def _usd(v: float) -> str:
    return f"${v:,.4f}"


def _share(part: float, total: float) -> str:
    return f"{100 * part / total:5.1f}%" if total > 0 else "    -"


def live_table(lines: dict[Key, Line], elapsed: float, calls: int, errors: int, duration: float) -> str:
    """The refreshing spend table: one row per team."""
    teams = by_team(lines)
    total = sum(t.usd for t in teams.values())
    end = f"/{duration:.0f}s" if duration > 0 else "s"
    head = (f"inferops demo  {elapsed:5.1f}{end}  calls {calls}  errors {errors}  "
            f"spend {_usd(total)} (USD)")
    rows = [head, f"  {'team':<12}{'calls':>8}{'USD':>14}{'share':>8}  top model"]
    for team, t in sorted(teams.items(), key=lambda kv: -kv[1].usd):
        models: dict[str, float] = {}
        for key, line in lines.items():
            if key[0] == team:
                models[key[3]] = models.get(key[3], 0.0) + line.usd
        top = max(models.items(), key=lambda kv: kv[1])[0] if models else ""
        rows.append(f"  {team:<12}{t.requests:>8.0f}{_usd(t.usd):>14}{_share(t.usd, total):>8}  {top}")
    return "\n".join(rows)


def progress_line(lines: dict[Key, Line], elapsed: float, calls: int, duration: float) -> str:
    """One line for logs and pipes (no TTY): time, calls and USD per team."""
    teams = by_team(lines)
    total = sum(t.usd for t in teams.values())
    end = f"/{duration:.0f}s" if duration > 0 else "s"
    parts = " ".join(f"{team}={_usd(t.usd)}" for team, t in sorted(teams.items(), key=lambda kv: -kv[1].usd))
    return f"[{elapsed:5.1f}{end}] calls={calls} spend={_usd(total)} USD | {parts}"


def chargeback(lines: dict[Key, Line]) -> str:
    """The final summary: team x project x feature x model, USD and share of the total, team subtotals."""
    total = sum(line.usd for line in lines.values())
    calls = sum(line.requests for line in lines.values())
    w = {"team": 11, "project": 15, "feature": 18, "model": 28}
    header = (f"{'team':<{w['team']}}{'project':<{w['project']}}{'feature':<{w['feature']}}"
              f"{'model':<{w['model']}}{'calls':>7}{'USD':>13}{'share':>8}")
    out = ["Chargeback summary (USD, estimated from list prices and the demo's price overrides)",
           header, "-" * len(header)]
    teams = by_team(lines)
    for team, tline in sorted(teams.items(), key=lambda kv: -kv[1].usd):
        rows = sorted(((k, v) for k, v in lines.items() if k[0] == team), key=lambda kv: -kv[1].usd)
        for (t, project, feature, model), line in rows:
            note = "  unpriced" if line.unpriced and line.unpriced >= line.requests else ""
            out.append(f"{t:<{w['team']}}{project:<{w['project']}}{feature:<{w['feature']}}{model:<{w['model']}}"
                       f"{line.requests:>7.0f}{_usd(line.usd):>13}{_share(line.usd, total):>8}{note}")
        out.append(f"{'':<{w['team']}}{'subtotal ' + team:<{w['project'] + w['feature'] + w['model']}}"
                   f"{tline.requests:>7.0f}{_usd(tline.usd):>13}{_share(tline.usd, total):>8}")
    out.append("-" * len(header))
    out.append(f"{'TOTAL':<{w['team'] + w['project'] + w['feature'] + w['model']}}{calls:>7.0f}"
               f"{_usd(total):>13}{_share(total, total):>8}")
    unpriced = sum(line.unpriced for line in lines.values())
    if unpriced:
        out.append(f"{unpriced:.0f} calls had no price (counted as unpriced, never as $0).")
    return "\n".join(out)


def routing_line(families: Iterable) -> str:
    """One line on model routing: what rewritten calls saved and what dry-run rules would have saved."""
    from inferops.names import Metrics

    saved = potential = 0.0
    for fam in families:
        for sample in fam.samples:
            if sample.name == Metrics.ROUTING_SAVINGS.prom_name:
                saved += sample.value
            elif sample.name == Metrics.ROUTING_POTENTIAL_SAVINGS.prom_name:
                potential += sample.value
    return (f"Model routing (routing.yaml): rewritten calls saved {_usd(saved)}; "
            f"dry-run rules would have saved {_usd(potential)} more.")
