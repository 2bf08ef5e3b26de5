"""budgets.yaml: the example validates; every mistake gives file:line: field: a clear message."""

from __future__ import annotations

import textwrap

import pytest

from inferops.alerts.budgets import CALENDAR_DAY, load_budgets
from inferops.yamlfile import ConfigError

GOOD = """\
version: 1
defaults:
  receiver: {email: finops@example.com}
budgets:
  - name: search
    scope: {team: search}
    amount_usd: 100
"""


def test_example_file_validates_with_several_teams(repo_root, run_cli):
    path = repo_root / "alerts" / "data" / "budgets.example.yaml"
    budgets = load_budgets(path)
    assert len({b.team for b in budgets.budgets}) >= 3
    actions = {b.enforcement.action for b in budgets.budgets}
    assert {"block", "downgrade", "throttle", "none"} <= actions
    support = budgets.by_name()["support-summaries-daily"]
    assert support.period == CALENDAR_DAY and support.enforcement.model == "gpt-4o-mini"
    assert support.thresholds == (75.0, 90.0)
    search = budgets.by_name()["search-monthly"]
    assert search.utc_offset_seconds == 3600 and search.receiver.pagerduty_routing_key_file.startswith("/")
    status, out, err = run_cli("budgets", "validate", str(path))
    assert status == 0 and "OK (4 budgets" in out, err


def test_defaults_apply_and_scope_fixes_team(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(GOOD)
    [b] = load_budgets(p).budgets
    assert (b.team, b.project, b.period, b.thresholds) == ("search", "all", "calendar_month", (50.0, 80.0))
    assert b.selector() == 'team="search"'
    assert b.receiver.email == ("finops@example.com",)


BAD = [
    # (description, yaml, expected line, expected field, words in the message)
    ("unknown top key", "budget: []\n", 1, "budget", ["unknown key", "budgets"]),
    ("no amount", """\
budgets:
  - name: a
    scope: {team: a}
    receiver: {email: a@example.com}
""", 2, "budgets[a].amount_usd", ["missing amount_usd"]),
    ("negative amount", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: -5
    receiver: {email: a@example.com}
""", 4, "budgets[a].amount_usd", ["positive number", "-5"]),
    ("bad period", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    period: monthly
    receiver: {email: a@example.com}
""", 5, "budgets[a].period", ["calendar_month", "'monthly'"]),
    ("unknown scope label", """\
budgets:
  - name: a
    scope: {teem: a}
    amount_usd: 5
    receiver: {email: a@example.com}
""", 3, "budgets[a].scope.teem", ["unknown scope label", "team"]),
    ("bad regex", """\
budgets:
  - name: a
    scope: {team: a, model: "=~gpt-(4"}
    amount_usd: 5
    receiver: {email: a@example.com}
""", 3, "budgets[a].scope.model", ["invalid regular expression"]),
    ("named DST zone", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    timezone: Europe/Berlin
    receiver: {email: a@example.com}
""", 5, "budgets[a].timezone", ["daylight saving", "fixed offset"]),
    ("threshold above 100", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    thresholds: [50, 120]
    receiver: {email: a@example.com}
""", 5, "budgets[a].thresholds[1]", ["at most 100", "120"]),
    ("pagerduty key inline", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    receiver:
      pagerduty_routing_key: 0123456789abcdef0123456789abcdef
""", 6, "budgets[a].receiver.pagerduty_routing_key", ["must not be written", "pagerduty_routing_key_file"]),
    ("slack without #", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    receiver: {slack: team-a}
""", 5, "budgets[a].receiver.slack", ["Slack channel"]),
    ("no receiver", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
""", 2, "budgets[a].receiver", ["missing receiver"]),
    ("global scope without team", """\
budgets:
  - name: a
    scope: global
    amount_usd: 5
    receiver: {email: a@example.com}
""", 2, "budgets[a].team", ["missing team"]),
    ("bad enforcement", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    enforcement: {downgrade: ""}
    receiver: {email: a@example.com}
""", 5, "budgets[a].enforcement.downgrade", ["model to downgrade to"]),
    ("throttle not a number", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    enforcement: {throttle: fast}
    receiver: {email: a@example.com}
""", 5, "budgets[a].enforcement.throttle", ["requests per minute"]),
    ("duplicate names", """\
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    receiver: {email: a@example.com}
  - name: a
    scope: {team: b}
    amount_usd: 5
    receiver: {email: a@example.com}
""", 6, "budgets[1].name", ["duplicate budget name", "line 2"]),
    ("bad default", """\
defaults:
  severity: urgent
budgets:
  - name: a
    scope: {team: a}
    amount_usd: 5
    receiver: {email: a@example.com}
""", 2, "defaults.severity", ["critical, warning, info", "'urgent'"]),
    ("bad name", """\
budgets:
  - name: Search Team
    scope: {team: a}
    amount_usd: 5
    receiver: {email: a@example.com}
""", 2, "budgets[0].name", ["lower-case"]),
    ("yaml syntax", "budgets: [\n", 2, "", ["not valid YAML"]),
]


@pytest.mark.parametrize("desc,text,line,field,words", BAD, ids=[b[0] for b in BAD])
def test_bad_budget_files_name_file_line_and_field(tmp_path, run_cli, desc, text, line, field, words):
    p = tmp_path / "budgets.yaml"
    p.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_budgets(p)
    err = info.value
    assert err.source == str(p) and err.line == line, str(err)
    assert err.field == field, str(err)
    for word in words:
        assert word in str(err), str(err)
    status, out, stderr = run_cli("budgets", "validate", str(p))
    assert status == 1 and f"{p}:{line}" in stderr and out == ""
