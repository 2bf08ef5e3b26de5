"""``inferops advise``: where moving traffic to a cheaper model of the same tier saves the most.

From the tokens each (feature, provider, model) used over a window (exact
counts from Prometheus, as in :mod:`.report`), it projects a 30-day volume
and prices it with the model's list prices and with each candidate's. A
candidate is a catalog entry

* of the same provider (so the switch is a model-name change, which a routing
  rule can do) and the same ``mode`` (chat, embedding, ...);
* with every capability of the current model (vision, function calling,
  reasoning, prompt caching, audio input...) and at least its context window
  (``max_input_tokens``);
* priced for every token type the traffic used, not a dated snapshot, preview,
  realtime/audio/search variant, nor past its deprecation date.

Both sides are priced per token type at standard-tier list prices (unit
prices of a small request, so no long-context tier is triggered by the
aggregate volume); discounts in your price overrides apply to both. The
catalog says nothing about answer quality: advice is where to *try* a
cheaper model (e.g. with a ``dry_run`` routing rule), nothing is changed.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from inferops.names import Label, TokenType

from .catalog import CatalogEntry, normalize_provider
from .report import DAY, UsageCube, iso
from .usage import UsageRecord

MONTH = 30 * DAY
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{8}$|-\d{4}$|-\d{3}$|@")
_VARIANT = re.compile(r"preview|realtime|audio|search|transcribe|tts|computer-use|-exp|latest|ft:", re.I)
_UNIT = 1000


@dataclass
class Advice:
    feature: str
    provider: str
    model: str
    monthly_tokens: dict[str, float]
    current_monthly_usd: float
    candidate: str
    candidate_monthly_usd: float

    @property
    def savings(self) -> float:
        return self.current_monthly_usd - self.candidate_monthly_usd

    @property
    def savings_ratio(self) -> float:
        return self.savings / self.current_monthly_usd if self.current_monthly_usd else 0.0

    def as_dict(self) -> dict:
        return {
            "feature": self.feature, "provider": self.provider, "model": self.model,
            "monthly_tokens": {k: int(round(v)) for k, v in self.monthly_tokens.items() if v},
            "current_monthly_usd": round(self.current_monthly_usd, 6), "candidate": self.candidate,
            "candidate_monthly_usd": round(self.candidate_monthly_usd, 6),
            "savings_monthly_usd": round(self.savings, 6), "savings_ratio": round(self.savings_ratio, 6),
        }


def deprecations(catalog_file: str = "") -> dict[str, str]:
    """Catalog key -> deprecation date (YYYY-MM-DD) from the catalog document."""
    try:
        if catalog_file:
            doc = json.loads(Path(catalog_file).read_text(encoding="utf-8"))
        else:
            doc = json.loads(resources.files("inferops.processors").joinpath("data/catalog.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v["deprecation_date"]) for k, v in doc.get("entries", {}).items() if v.get("deprecation_date")}


def unit_prices(engine, provider: str, model: str, types) -> dict[str, float] | None:
    """USD per token of each of ``types`` for a small standard-tier call; None when any is unpriced."""
    shapes = {
        TokenType.INPUT: dict(input_tokens=_UNIT),
        TokenType.CACHE_READ: dict(input_tokens=_UNIT, cache_read_tokens=_UNIT),
        TokenType.CACHE_WRITE: dict(input_tokens=_UNIT, cache_write_5m_tokens=_UNIT),
        TokenType.OUTPUT: dict(output_tokens=_UNIT),
        TokenType.REASONING: dict(output_tokens=_UNIT, reasoning_tokens=_UNIT),
    }
    out = {}
    for ttype in types:
        kw = shapes[ttype]
        res = engine.price(UsageRecord(provider=provider, model=model, requests=0, **kw))
        if not res.priced or res.total is None:
            return None
        if res.status == "partial":
            return None
        out[ttype] = res.total / _UNIT
    return out


def monthly_cost(prices: dict[str, float], tokens: dict[str, float]) -> float:
    return sum(prices.get(t, 0.0) * n for t, n in tokens.items())


def candidates(engine, entry: CatalogEntry, *, at: float, deprecated: dict[str, str]) -> list[CatalogEntry]:
    """Catalog entries that can replace ``entry`` (see the module docstring)."""
    today = time.strftime("%Y-%m-%d", time.gmtime(at))
    caps = set(entry.capabilities)
    out = []
    for cand in engine.catalog.entries.values():
        if cand.key == entry.key or cand.provider != entry.provider or cand.mode != entry.mode:
            continue
        if cand.model == entry.model or "/" in cand.key or _DATED.search(cand.model) or _VARIANT.search(cand.model):
            continue
        if not caps <= set(cand.capabilities):
            continue
        if entry.max_input_tokens and (cand.max_input_tokens or 0) < entry.max_input_tokens:
            continue
        dep = deprecated.get(cand.key)
        if dep and dep <= today:
            continue
        out.append(cand)
    return out


def advise(cube: UsageCube, engine, *, catalog_file: str = "", top: int = 20,
           per_group: int = 1) -> list[Advice]:
    """Ranked advice (largest monthly savings first)."""
    window = cube.period.end - cube.period.start
    scale = MONTH / window
    deprecated = deprecations(catalog_file)
    out: list[Advice] = []
    for (feature, provider, model), cell in cube.group((Label.FEATURE, Label.PROVIDER, Label.MODEL)).items():
        if not cell.tokens:
            continue
        res = engine.resolve(provider, model)
        entry = res.entry
        if entry is None:
            continue
        price_provider = normalize_provider(provider)
        monthly = {t: n * scale for t, n in cell.tokens.items() if n and t in TokenType.ALL}
        if not monthly:
            continue
        current = unit_prices(engine, price_provider, model, monthly)
        if current is None:
            continue
        cur_cost = monthly_cost(current, monthly)
        found = []
        for cand in candidates(engine, entry, at=cube.period.end, deprecated=deprecated):
            prices = unit_prices(engine, cand.provider, cand.model, monthly)
            if prices is None:
                continue
            cost = monthly_cost(prices, monthly)
            if cost < cur_cost:
                found.append((cost, cand.model))
        found.sort()
        for cost, name in found[:per_group]:
            out.append(Advice(feature, provider, model, monthly, cur_cost, name, cost))
    out.sort(key=lambda a: (-a.savings, a.feature, a.model, a.candidate))
    return out[:top]


def advice_table(advice: list[Advice], cube: UsageCube) -> str:
    head = ["feature", "provider", "model", "tokens/30d", "now USD/30d", "candidate", "then USD/30d",
            "saves USD/30d", "saves"]
    rows = [[a.feature, a.provider, a.model, f"{int(round(sum(a.monthly_tokens.values()))):,}",
             f"{a.current_monthly_usd:,.2f}", a.candidate, f"{a.candidate_monthly_usd:,.2f}",
             f"{a.savings:,.2f}", f"{100 * a.savings_ratio:.0f}%"] for a in advice]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i in (0, 1, 2, 5) else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    out = [f"advice from usage {iso(cube.period.start)} .. {iso(cube.period.end)}, projected to 30 days at list "
           "prices (USD); same provider, mode, capabilities and context window. Nothing was changed.",
           fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    if not rows:
        out.append("no cheaper model of the same tier found for the observed traffic")
    else:
        out.append("try one with a dry-run routing rule first (docs/finops.md), e.g.:")
        a = advice[0]
        out.append(f"  - name: {a.feature}-{a.model}-to-{a.candidate}\n    when: {{feature: {a.feature}, "
                   f"provider: {a.provider}, model: {a.model}}}\n    route_to: {{model: {a.candidate}}}\n"
                   "    dry_run: true")
    return "\n".join(out) + "\n"
