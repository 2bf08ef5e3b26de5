"""The "Model routing" section of the LLM spend overview (issue 9).

What the routing policy (processors/routing.py, ``INFEROPS_ROUTING_FILE``) saved
and what its dry-run rules would have saved, in US dollars:

* ``Metrics.ROUTING_SAVINGS``: per call a rule rewrote, the requested model's
  price minus the routed model's price for the tokens the routed model used;
* ``Metrics.ROUTING_POTENTIAL_SAVINGS``: per call a dry-run rule matched, the
  served model's price minus the rule target's price for the same tokens
  (nothing was changed).

Both carry the call labels (so every dashboard filter applies; ``model`` and
``provider`` are the model that served the call) plus ``requested_model`` and
``routed_model``, the pair the panels break down by.

Why the overview and not "Models and providers": routing savings are money
next to the spend they reduce (the overview already shows what prompt caching
saved), and the question they answer is "which teams and features save how
much", an attribution breakdown the models dashboard does not make; the
model pair is one of the breakdowns here.
"""

from __future__ import annotations

from grafanalib.core import Panel

from inferops.names import Label, Metric, Metrics

from . import common as c, promql as q
from .common import PERCENT, USD, prom_target as T

#: Breakdown by the model pair a rule maps (requested -> routed / dry-run target).
PAIR: tuple[str, ...] = (Label.REQUESTED_MODEL, Label.ROUTED_MODEL)
PAIR_LEGEND = f"{{{{{Label.REQUESTED_MODEL}}}}} -> {{{{{Label.ROUTED_MODEL}}}}}"
#: Breakdown by who saved.
TEAM_FEATURE: tuple[str, ...] = (Label.TEAM, Label.FEATURE)
TEAM_FEATURE_LEGEND = f"{{{{{Label.TEAM}}}}} / {{{{{Label.FEATURE}}}}}"

_FILTER_NOTE = ("The model and provider filters select the model that served the call (the routed model "
                "for rewritten calls).")


def saved_per_hour(metric: Metric, by: tuple[str, ...]) -> str:
    """US dollars per hour of a savings counter, summed by ``by``."""
    return f"{q.sum_(q.rate(q.sel(metric)), by)} * 3600"


def panels(L: c.Layout, links_: list[dict]) -> list[Panel]:
    """The section's panels, placed from the next free line of ``L``."""
    saved = q.total(Metrics.ROUTING_SAVINGS)
    potential = q.total(Metrics.ROUTING_POTENTIAL_SAVINGS)
    L.newline()
    out: list[Panel] = [
        c.stat("Saved by model routing",
               "Model routing: US dollars the routing policy saved in the range. For each call a rule "
               "rewrote: the requested model's price minus the routed model's price, for the tokens the "
               "routed model actually used. 0 when no routing policy is set or no call was routed. "
               + _FILTER_NOTE,
               [T(f"{saved} or vector(0)", "saved by routing", instant=True)], USD, L.pos(8, 4),
               links_=links_),
        c.stat("Dry-run routing rules would have saved",
               "Model routing: US dollars the dry-run rules would have saved in the range, had they "
               "rewritten the calls they matched: the served model's price minus the rule target's price "
               "for the same tokens. Nothing was changed; use it to judge a rule before turning dry_run "
               "off. 0 when no dry-run rule matched. " + _FILTER_NOTE,
               [T(f"{potential} or vector(0)", "would have saved", instant=True)], USD, L.pos(8, 4),
               links_=links_),
        c.stat("Spend avoided by routing (share)",
               "Model routing: routing savings over what the selected calls would have cost without "
               "routing (spend + savings) in the range. No data when no call was routed.",
               [T(f"{saved} / ({q.spend()} + {saved})", "avoided", instant=True)], PERCENT, L.pos(8, 4)),
        c.timeseries("Routing savings by model pair ($ per hour)",
                     "Model routing: US dollars per hour saved by calls a rule rewrote, by requested model "
                     "-> routed model; stacked, so the top line is the total. " + _FILTER_NOTE,
                     [T(saved_per_hour(Metrics.ROUTING_SAVINGS, PAIR), PAIR_LEGEND)],
                     USD, L.pos(12, 8), stacked=True, links_=links_),
        c.timeseries("Routing savings by team and feature ($ per hour)",
                     "Model routing: US dollars per hour saved by rewritten calls, by team and feature; "
                     "stacked.",
                     [T(saved_per_hour(Metrics.ROUTING_SAVINGS, TEAM_FEATURE), TEAM_FEATURE_LEGEND)],
                     USD, L.pos(12, 8), stacked=True, links_=links_),
        c.timeseries("Dry-run routing: potential savings by model pair ($ per hour)",
                     "Model routing: what the dry-run rules would have saved, in US dollars per hour, by "
                     "served model -> rule target model (the calls were sent unchanged); stacked. "
                     + _FILTER_NOTE,
                     [T(saved_per_hour(Metrics.ROUTING_POTENTIAL_SAVINGS, PAIR), PAIR_LEGEND)],
                     USD, L.pos(12, 8), stacked=True, links_=links_),
    ]
    out.append(savings_table(L.pos(12, 8)))
    return out


#: (refId, counter, column title) of the savings table.
TABLE_COLUMNS: tuple[tuple[str, Metric, str], ...] = (
    ("A", Metrics.ROUTING_SAVINGS, "Saved (USD)"),
    ("B", Metrics.ROUTING_POTENTIAL_SAVINGS, "Dry run would have saved (USD)"),
)


def savings_table(gp) -> Panel:
    """Range totals per team x feature x model pair: what was saved and what dry runs would have saved."""
    keys = (*TEAM_FEATURE, *PAIR)
    cols = [f"Value #{ref}" for ref, _, _ in TABLE_COLUMNS]
    return c.table(
        "Routing savings by team, feature and model pair",
        "Model routing: US dollars saved (rewritten calls) and that dry-run rules would have saved, in the "
        "range, per team, feature and model pair (requested -> routed, or served -> dry-run target).",
        [T(q.total(metric, keys), "", ref, instant=True, table=True) for ref, metric, _ in TABLE_COLUMNS],
        USD, gp,
        overrides=[{"matcher": {"id": "byName", "options": f"Value #{ref}"},
                    "properties": [{"id": "displayName", "value": name}, {"id": "unit", "value": USD}]}
                   for ref, _, name in TABLE_COLUMNS],
        transformations=[{"id": "merge", "options": {}},
                         {"id": "organize", "options": {
                             "excludeByName": {"Time": True},
                             "indexByName": {name: i for i, name in enumerate((*keys, *cols))}}},
                         {"id": "filterFieldsByName", "options": {"include": {"names": [*keys, *cols]}}}],
        sort_by=TABLE_COLUMNS[0][2])
