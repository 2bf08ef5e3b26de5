"""Generated rules under `promtool check rules` and `promtool test rules`, every alert, hand-worked figures.

promtool unit tests start at 1970-01-01T00:00Z, so calendar logic runs in January 1970 (31 days):
the January -> February boundary is at 744h (UTC), at 743h for a budget in UTC+01:00.

Accumulator arithmetic used below (see alerts/rules.py): each evaluation adds
``rate(cost[rate_window]) * eval_interval``. For a counter rising by the same amount every
sample, rate() is exact once the window is full, so the period-to-date equals the spend;
at the onset of spending the trailing window lags by a fixed amount that is worked out per case.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from inferops.alerts.budgets import parse_budgets_text
from inferops.alerts.rules import AlertName, RuleOptions, build_groups, dump_yaml, prometheus_rule_resource

PROMTOOL = shutil.which("promtool")
RUNBOOK = "https://runbooks.example.com/budgets"
DASH = "https://grafana.example.com/d/inferops-overview"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool (Debian package prometheus) is required"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _write(tmp_path: Path, budgets_yaml: str, opts: RuleOptions, tests: list[dict], interval: str) -> Path:
    groups = build_groups(parse_budgets_text(budgets_yaml), opts)
    (tmp_path / "rules.yaml").write_text(dump_yaml(groups))
    checked = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": interval, "tests": tests}, sort_keys=False))
    return tmp_path / "test.yaml"


def _run(tmp_path: Path) -> None:
    result = _promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# Calendar month / day accumulators and the month-end forecast ($1 per second, hourly steps)
# ---------------------------------------------------------------------------------------------

MONTH_BUDGETS = f"""
defaults:
  runbook_url: {RUNBOOK}
  dashboard_url: {DASH}
  receiver: {{email: finops@example.com}}
  burn_rate: false
  spike_sensitivity: off
  unattributed_share_percent: 0
budgets:
  - name: m-utc
    scope: {{team: a}}
    amount_usd: 2000000
    thresholds: [50]
  - name: m-cet
    scope: {{team: a}}
    team: a
    timezone: "+01:00"
    amount_usd: 9000000
    forecast: false
    thresholds: [99]
  - name: d-utc
    scope: {{team: a}}
    period: calendar_day
    amount_usd: 9000000
    forecast: false
    thresholds: [99]
"""


def _ptd(budget: str, period: str, value: float) -> dict:
    labels = (f'budget:inferops_cost_usd:period_to_date{{budget="{budget}",team="a",project="all",'
              f'period="{period}"}}')
    return {"labels": labels, "value": value}


def test_month_to_date_resets_at_the_boundary_and_forecast_matches_hand_figures(tmp_path):
    opts = RuleOptions(eval_interval="1h", rate_window="2h", forecast_window="2h", burn_windows=(),
                       ).with_for({AlertName.FORECAST: "0s"})
    # +$3,600 every hour = $1/s; 760h of data covers the 744h boundary.
    series = [{"series": 'inferops_cost_usd_total{team="a",project="p",model="m",cost_type="input"}',
               "values": "100000+3600x760"}]
    mtd = 'team_project:inferops_cost_usd:month_to_date{team="a",project="p"}'

    def e(expr, t, samples):
        return {"expr": expr, "eval_time": t, "exp_samples": samples}

    forecast_labels = ('budget:inferops_cost_usd:period_forecast{budget="m-utc",team="a",project="all",'
                       'period="calendar_month"}')
    tests = [{
        "interval": "1h",
        "input_series": series,
        "promql_expr_test": [
            # First evaluation with two samples: rate extrapolates to the window start -> exactly $3,600.
            e('budget:inferops_cost_usd:period_to_date{budget="m-utc"}', "1h", [_ptd("m-utc", "calendar_month", 3600)]),
            # Day boundary (UTC): 00:00 of Jan 2 still closes Jan 1 = $86,400; the next hour starts again.
            e('budget:inferops_cost_usd:period_to_date{budget="d-utc"}', "24h", [_ptd("d-utc", "calendar_day", 86400)]),
            e('budget:inferops_cost_usd:period_to_date{budget="d-utc"}', "25h", [_ptd("d-utc", "calendar_day", 3600)]),
            # Month-end forecast on Jan 11 00:00: $864,000 spent + $1/s x 21 days left = $2,678,400.
            e('budget:inferops_cost_usd:period_forecast{budget="m-utc"}', "240h",
              [{"labels": forecast_labels, "value": 2678400}]),
            # UTC: all of January is 31 x 86,400 = $2,678,400 at Feb 1 00:00; then February starts.
            e('budget:inferops_cost_usd:period_to_date{budget="m-utc"}', "744h",
              [_ptd("m-utc", "calendar_month", 2678400)]),
            e('budget:inferops_cost_usd:period_to_date{budget="m-utc"}', "745h", [_ptd("m-utc", "calendar_month", 3600)]),
            e(mtd, "744h", [{"labels": mtd, "value": 2678400}]),
            e(mtd, "745h", [{"labels": mtd, "value": 3600}]),
            # UTC+01:00: February begins at Jan 31 23:00 UTC (743h).
            e('budget:inferops_cost_usd:period_to_date{budget="m-cet"}', "743h",
              [_ptd("m-cet", "calendar_month", 743 * 3600)]),
            e('budget:inferops_cost_usd:period_to_date{budget="m-cet"}', "744h", [_ptd("m-cet", "calendar_month", 3600)]),
            e('budget:inferops_cost_usd:period_ratio{budget="m-utc"}', "500h",
              [{"labels": 'budget:inferops_cost_usd:period_ratio{budget="m-utc",team="a",project="all",'
                          'period="calendar_month"}', "value": 0.9}]),
        ],
        "alert_rule_test": [
            # 0h: nothing spent, no rate yet -> forecast $0. 1h: $3,600 + $1/s x (2,678,400 - 3,600) s.
            {"eval_time": "0h", "alertname": AlertName.FORECAST, "exp_alerts": []},
            {"eval_time": "1h", "alertname": AlertName.FORECAST, "exp_alerts": [{
                "exp_labels": {"budget": "m-utc", "team": "a", "project": "all", "severity": "warning",
                               "period": "calendar_month"},
                "exp_annotations": {
                    "summary": "Budget m-utc forecast to overrun $2,000,000.00",
                    "description": "At the spend rate of the last 2h, Team a will have spent $2.678M by the end of "
                                   "the period, above the $2,000,000.00 budget \"m-utc\" (team=a; calendar month "
                                   "(UTC)); spent so far: $3.6k.",
                    "runbook_url": f"{RUNBOOK}#inferopsbudgetforecastexceeded",
                    "dashboard_url": f"{DASH}?var-team=a",
                }}]},
        ],
    }]
    _write(tmp_path, MONTH_BUDGETS, opts, tests, "1h")
    _run(tmp_path)


# ---------------------------------------------------------------------------------------------
# Every alert: fires when it should and not one evaluation before (1-minute steps, production
# windows and `for:` durations).
# ---------------------------------------------------------------------------------------------

ALERT_BUDGETS = f"""
defaults:
  runbook_url: {RUNBOOK}
  dashboard_url: {DASH}
  receiver: {{email: finops@example.com}}
  burn_rate: false
  forecast: false
  spike_sensitivity: off
  unattributed_share_percent: 0
  thresholds: [50, 80]
budgets:
  - name: thr
    scope: {{team: thr}}
    amount_usd: 100.5
    severity: critical
    enforcement: block
  - name: burn
    scope: {{team: burn}}
    amount_usd: 744
    burn_rate: true
    severity: critical
  - name: spiky
    scope: {{team: spiky}}
    amount_usd: 100000
    spike_sensitivity: 3
    spike_min_usd: 20
  - name: unpriced
    scope: {{team: u}}
    amount_usd: 100000
  - name: prod
    scope: {{environment: production}}
    team: finops
    amount_usd: 100000
    unattributed_share_percent: 10
  - name: gone
    scope: {{team: gone}}
    amount_usd: 100000
    absent_after: 10m
"""


def _labels(budget: str, team: str, severity: str, **extra: str) -> dict:
    return {"budget": budget, "team": team, "project": "all", "severity": severity, **extra}


def _ann(summary: str, description: str, alert: str, team: str) -> dict:
    return {"summary": summary, "description": description, "runbook_url": f"{RUNBOOK}#{alert.lower()}",
            "dashboard_url": f"{DASH}?var-team={team}"}


def _thr_desc(spent: str, pct: str) -> str:
    return (f'Team thr has spent ${spent} of the $100.50 budget "thr" (team=thr; calendar month (UTC)): '
            f"the {pct}% threshold is crossed.")


def test_every_alert_fires_when_it_should_not_before(tmp_path):
    c = "inferops_cost_usd_total"
    series = [
        # thr: flat 10 minutes, then $1/min. The 5m rate lags 2 dollars at the onset
        # (0.2 + 0.4 + 0.6 + 0.8 added instead of 1 each), so period-to-date at 10+k min = k - 2.
        {"series": f'{c}{{team="thr",project="p",feature="f",model="m",cost_type="input"}}',
         "values": "1000+0x10 1001+1x200"},
        # burn: $744/month in January is $1/h (1x); flat 1h, then $1/min (60x).
        {"series": f'{c}{{team="burn",project="p",feature="f",model="m",cost_type="input"}}',
         "values": "1000+0x60 1001+1x100"},
        # spiky: $0.25/min for 3h, then $1/min.
        {"series": f'{c}{{team="spiky",project="p",feature="f",model="m",cost_type="input"}}',
         "values": "1000+0.25x180 1046+1x60"},
        {"series": 'inferops_unpriced_requests_total{team="u",project="p",feature="f",provider="openai",'
                   'model="mystery",environment="dev"}', "values": "0+1x60"},
        # prod: half of the production spend has no team.
        {"series": f'{c}{{team="unattributed",project="p",feature="f",environment="production",model="m",'
                   'cost_type="input"}', "values": "0+1x60"},
        {"series": f'{c}{{team="x",project="p",feature="f",environment="production",model="m",cost_type="input"}}',
         "values": "0+1x60"},
        # gone: requests for 20 minutes, then nothing.
        {"series": 'inferops_requests_total{team="gone",project="p",feature="f",model="m",outcome="success"}',
         "values": "1+1x20"},
    ]
    t = AlertName
    alert_tests = [
        # Threshold 50% = $50.25: first true at k=53 (t=63m, $51); for 5m -> fires at 68m with $56.
        {"eval_time": "67m", "alertname": t.THRESHOLD, "exp_alerts": []},
        {"eval_time": "68m", "alertname": t.THRESHOLD, "exp_alerts": [{
            "exp_labels": _labels("thr", "thr", "warning", threshold="50", period="calendar_month"),
            "exp_annotations": _ann("Budget thr: 50% of $100.50 spent", _thr_desc("56", "50"), t.THRESHOLD, "thr"),
        }]},
        # 80% = $80.40: true at t=93m; fires at 98m with $86 (the 50% alert still fires too).
        {"eval_time": "98m", "alertname": t.THRESHOLD, "exp_alerts": [
            {"exp_labels": _labels("thr", "thr", "warning", threshold="50", period="calendar_month"),
             "exp_annotations": _ann("Budget thr: 50% of $100.50 spent", _thr_desc("86", "50"), t.THRESHOLD, "thr")},
            {"exp_labels": _labels("thr", "thr", "warning", threshold="80", period="calendar_month"),
             "exp_annotations": _ann("Budget thr: 80% of $100.50 spent", _thr_desc("86", "80"), t.THRESHOLD, "thr")},
        ]},
        # Exhausted at $100.50: true at k=103 (t=113m, $101); for 1m -> fires at 114m with $102.
        {"eval_time": "113m", "alertname": t.EXHAUSTED, "exp_alerts": []},
        {"eval_time": "114m", "alertname": t.EXHAUSTED, "exp_alerts": [{
            "exp_labels": _labels("thr", "thr", "critical", period="calendar_month"),
            "exp_annotations": _ann(
                "Budget thr exhausted: $100.50 spent",
                'Team thr has spent $102, the whole $100.50 of budget "thr" (team=thr; calendar month (UTC)). '
                "Enforcement: further calls in this scope are blocked (BudgetExceededError).",
                t.EXHAUSTED, "thr")}]},
        # Burn: 1h window reaches 15x (> 14.4) at 75m, 5m window is at 60x; for 2m -> fires at 77m (17x, $17).
        {"eval_time": "76m", "alertname": t.BURN_RATE, "exp_alerts": []},
        {"eval_time": "77m", "alertname": t.BURN_RATE, "exp_alerts": [{
            "exp_labels": _labels("burn", "burn", "critical", window="1h", period="calendar_month"),
            "exp_annotations": _ann(
                "Budget burn burning 14.4x too fast (1h/5m)",
                'Team burn is spending at 17x the rate that would use exactly the $744.00 budget "burn" '
                "(team=burn; calendar month (UTC)) ($17 in the last 1h; also above 14.4x over the last 5m).",
                t.BURN_RATE, "burn")}]},
        # Spike: hourly spend 15 + 0.75 (t-180); baseline = mean of the recorded hourly spend up to
        # t-1h: (435 + 15 (t-60-59+1)) / (t-60+1) over samples 0..t-60 (0.25 (n+0.5) while the hour fills).
        # t=207: 35.25 <= 3 x 11.96; t=208: 36 > 3 x 11.98 -> true; for 15m -> fires at 223m:
        # $47.25 against a baseline of 2010/164 = $12.26.
        {"eval_time": "222m", "alertname": t.SPIKE, "exp_alerts": []},
        {"eval_time": "223m", "alertname": t.SPIKE, "exp_alerts": [{
            "exp_labels": _labels("spiky", "spiky", "warning", period="calendar_month"),
            "exp_annotations": _ann(
                "Spend spike in budget spiky",
                'Team spiky spent $47.25 in the last 1h, more than 3x the trailing 7d baseline of $12.26 per 1h '
                '(budget "spiky" (team=spiky; calendar month (UTC))).',
                t.SPIKE, "spiky")}]},
        # Unpriced: calls from 1m; for 15m -> fires at 16m: 16 calls (a counter from 0 is not extrapolated below 0).
        {"eval_time": "15m", "alertname": t.UNPRICED, "exp_alerts": []},
        {"eval_time": "16m", "alertname": t.UNPRICED, "exp_alerts": [{
            "exp_labels": _labels("unpriced", "u", "warning", provider="openai", model="mystery"),
            "exp_annotations": _ann(
                "Calls to an unpriced model in budget unpriced",
                '16 calls to openai/mystery in the last 1h had no price, so budget "unpriced" (team=u; calendar '
                "month (UTC)) under-counts spend (unpriced is never $0). Add the model to a price overrides file "
                "(inferops prices validate).",
                t.UNPRICED, "u")}]},
        # Unattributed: 50% > 10% from 1m; for 30m -> fires at 31m ($31 unattributed, counter from 0).
        {"eval_time": "30m", "alertname": t.UNATTRIBUTED, "exp_alerts": []},
        {"eval_time": "31m", "alertname": t.UNATTRIBUTED, "exp_alerts": [{
            "exp_labels": {"budget": "prod", "team": "finops", "project": "all", "severity": "warning"},
            "exp_annotations": {
                "summary": "Unattributed spend in budget prod",
                "description": '50% of the spend in budget "prod" (environment=production; calendar month (UTC)) '
                               "over the last 1h ($31) has no team/project/feature label: tag the calls "
                               "(baggage or resource attributes) so it can be charged back.",
                "runbook_url": f"{RUNBOOK}#inferopsunattributedspend",
                "dashboard_url": f"{DASH}?var-team=finops"}}]},
        # Absent: last request sample at 20m; the 10m window still holds it at 30m; fires at 31m.
        {"eval_time": "30m", "alertname": t.ABSENT, "exp_alerts": []},
        {"eval_time": "31m", "alertname": t.ABSENT, "exp_alerts": [{
            "exp_labels": _labels("gone", "gone", "warning"),
            "exp_annotations": _ann(
                "No LLM telemetry for budget gone",
                'No inferops request metrics matched budget "gone" (team=gone; calendar month (UTC)) for 10m: the '
                "instrumentation or the scrape is down, so the budget can neither alert nor enforce.",
                t.ABSENT, "gone")}]},
    ]
    tests = [{"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}]
    _write(tmp_path, ALERT_BUDGETS, RuleOptions(), tests, "1m")
    _run(tmp_path)


def test_burn_rate_series_matches_hand_figures(tmp_path):
    """$744 in a 31-day January = $1/h; spending $1/min is a burn rate of 60 over every full window."""
    series = [{"series": 'inferops_cost_usd_total{team="burn",model="m",cost_type="input"}',
               "values": "1000+1x400"}]
    labels = 'budget:inferops_cost_usd:burn_rate{budget="burn",team="burn",project="all",period="calendar_month",window="%s"}'
    tests = [{"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": 'budget:inferops_cost_usd:burn_rate{budget="burn",window="1h"}', "eval_time": "2h",
         "exp_samples": [{"labels": labels % "1h", "value": 60}]},
        {"expr": 'budget:inferops_cost_usd:burn_rate{budget="burn",window="5m"}', "eval_time": "2h",
         "exp_samples": [{"labels": labels % "5m", "value": 60}]},
    ]}]
    _write(tmp_path, ALERT_BUDGETS, RuleOptions(), tests, "1m")
    _run(tmp_path)


def test_example_rules_pass_promtool_check_and_prometheusrule_has_the_same_groups(tmp_path, repo_root):
    from inferops.alerts.budgets import load_budgets

    budgets = load_budgets(repo_root / "alerts" / "data" / "budgets.example.yaml")
    for opts in (RuleOptions(), RuleOptions.demo()):
        groups = build_groups(budgets, opts)
        (tmp_path / "r.yaml").write_text(dump_yaml(groups))
        result = _promtool("check", "rules", "r.yaml", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        resource = prometheus_rule_resource(groups)
        assert resource["apiVersion"] == "monitoring.coreos.com/v1" and resource["kind"] == "PrometheusRule"
        assert resource["spec"]["groups"] == groups["groups"]
        alerts = [r for g in groups["groups"] for r in g["rules"] if "alert" in r]
        assert {a["alert"] for a in alerts} == set(AlertName.ALL)
        for a in alerts:
            assert {"budget", "team", "project", "severity"} <= set(a["labels"]), a["alert"]
            assert {"summary", "description", "runbook_url", "dashboard_url"} <= set(a["annotations"])
            if a["alert"] not in (AlertName.ABSENT, AlertName.UNPRICED, AlertName.UNATTRIBUTED):
                assert "humanize" in a["annotations"]["description"]


def test_rules_name_only_contract_metrics_labels_and_declared_recording_rules(repo_root):
    """Every series a rule reads is a contract metric or a declared recording rule; every record is declared."""
    import re

    from inferops import names
    from inferops.alerts.budgets import load_budgets

    declared = {r.name for r in names.RecordingRules.all()}
    metrics = names.all_prom_series_names()
    labels = names.all_label_names() | {"alertname"}
    groups = build_groups(load_budgets(repo_root / "alerts" / "data" / "budgets.example.yaml"), RuleOptions())
    recorded = {r["record"] for g in groups["groups"] for r in g["rules"] if "record" in r}
    assert recorded <= declared
    assert recorded >= {r.name for r in names.RecordingRules.all() if r.name.startswith(("budget:", "scope:"))}
    functions = {"sum", "by", "on", "and", "or", "rate", "increase", "vector", "time", "scalar", "month",
                 "floor", "days_in_month", "day_of_month", "last_over_time", "avg_over_time", "absent_over_time",
                 "offset", "with", "query", "first", "value", "humanize"}
    for g in groups["groups"]:
        for rule in g["rules"]:
            expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # drop label values
            expr = re.sub(r"\[[0-9a-z]+\]|offset [0-9a-z]+|(?<![A-Za-z0-9_:])[0-9.]+(e-?[0-9]+)?", " ", expr)  # windows, numbers
            for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
                if token in functions or re.fullmatch(r"[0-9]+[smhdwy]", token):
                    continue
                if ":" in token:
                    assert token in declared, token
                else:
                    assert token in metrics or token in labels, (token, rule["expr"])
            for label in rule.get("labels", {}):
                assert label in labels, label
