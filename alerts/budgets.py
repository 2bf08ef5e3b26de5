"""The budgets.yaml schema: load, validate and model budgets as code.

A budgets file says who may spend how much on which slice of LLM traffic, in
which period, and what happens as the money runs out (alerts to whom,
enforcement in the instrumentation). Everything downstream -- Prometheus rules,
Alertmanager routes, Grafana alert rules and the :class:`~inferops.alerts.enforcement.Enforcer`
-- is generated from the :class:`BudgetSet` this module returns, so a mistake
is caught here once, with ``file:line: field: problem``, instead of surfacing
as a broken rule file at 3 a.m. The format is documented in ``docs/budgets.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferops.names import SCOPE_LABELS, Label
from inferops.yamlfile import ConfigError, LineDict, LineList, describe, fail, load_file, load_text

SCHEMA_VERSION = 1

#: Periods a budget may have (``rolling_<N>d`` is also accepted, N in 1..90).
CALENDAR_DAY = "calendar_day"
CALENDAR_MONTH = "calendar_month"
_ROLLING_RE = re.compile(r"^rolling_([1-9][0-9]?)d$")

SEVERITIES = ("critical", "warning", "info")
SPIKE_FACTORS = {"low": 5.0, "medium": 3.0, "high": 2.0}
ENFORCEMENT_ACTIONS = ("none", "block", "downgrade", "throttle")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_OFFSET_RE = re.compile(r"^(?:UTC)?([+-])([01][0-9]|2[0-3]):?([0-5][0-9])$")
_SLACK_RE = re.compile(r"^[#@][a-z0-9._-]{1,80}$")
_EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_LABEL_TEXT_RE = re.compile(r'^[^"\\\n{}]{1,128}$')
_LABEL_VALUE_OPS = ("=~", "!~", "!=", "=")


@dataclass(frozen=True)
class Matcher:
    """One Prometheus label matcher of a budget scope."""

    label: str
    op: str  # one of = != =~ !~
    value: str

    def promql(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'

    def matches(self, value: str) -> bool:
        """Evaluate like Prometheus (regexes are fully anchored)."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = re.fullmatch(self.value, value) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Receiver:
    """Where a budget's alerts go. Secrets are referenced by file path, never written here."""

    slack_channel: str = ""
    email: tuple[str, ...] = ()
    webhook_url: str = ""
    pagerduty_routing_key_file: str = ""

    @property
    def empty(self) -> bool:
        return not (self.slack_channel or self.email or self.webhook_url or self.pagerduty_routing_key_file)


@dataclass(frozen=True)
class Enforcement:
    """What the instrumentation does while the budget is exhausted."""

    action: str = "none"  # none | block | downgrade | throttle
    model: str = ""  # downgrade target
    requests_per_minute: float = 0.0  # throttle rate


@dataclass(frozen=True)
class Budget:
    """One validated budget."""

    name: str
    amount_usd: float
    period: str
    timezone: str  # normalised "+HH:MM" / "-HH:MM" / "UTC"
    utc_offset_seconds: int
    matchers: tuple[Matcher, ...]
    team: str
    project: str
    thresholds: tuple[float, ...]  # percent, ascending, each in (0, 100)
    forecast: bool
    burn_rate: bool
    spike_factor: float  # 0 = off
    spike_min_usd: float  # spike alert needs at least this much in the spike window
    unattributed_share: float  # 0 = off; fraction of scope spend
    absent_after: str  # Prometheus duration or "" (off)
    severity: str
    owner: str
    receiver: Receiver
    runbook_url: str
    dashboard_url: str
    enforcement: Enforcement
    line: int = 0

    @property
    def rolling_days(self) -> int:
        m = _ROLLING_RE.match(self.period)
        return int(m.group(1)) if m else 0

    @property
    def period_nominal_seconds(self) -> int:
        """Length of the period (a calendar month counts 30 days; rules use the real length)."""
        if self.period == CALENDAR_DAY:
            return 86400
        if self.period == CALENDAR_MONTH:
            return 30 * 86400
        return self.rolling_days * 86400

    def selector(self, extra: str = "") -> str:
        """PromQL label-matcher list for the scope, e.g. ``team="search",model=~"gpt-4.*"``."""
        parts = [m.promql() for m in self.matchers]
        if extra:
            parts.append(extra)
        return ",".join(parts)

    def matches(self, labels: dict[str, str]) -> bool:
        """Does a call with these label values fall into the budget's scope?"""
        return all(m.matches(labels.get(m.label, "")) for m in self.matchers)

    def describe_scope(self) -> str:
        if not self.matchers:
            return "all LLM spend"
        return ", ".join(f"{m.label}{m.op}{m.value}" for m in self.matchers)

    def describe_period(self) -> str:
        tz = "UTC" if self.utc_offset_seconds == 0 else f"UTC{self.timezone}"
        if self.period == CALENDAR_DAY:
            return f"calendar day ({tz})"
        if self.period == CALENDAR_MONTH:
            return f"calendar month ({tz})"
        return f"rolling {self.rolling_days} days"


@dataclass(frozen=True)
class BudgetSet:
    """All budgets of one file."""

    budgets: tuple[Budget, ...]
    source: str = ""

    def by_name(self) -> dict[str, Budget]:
        return {b.name: b for b in self.budgets}


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_TOP_KEYS = ("version", "defaults", "budgets")
_BUDGET_KEYS = (
    "name", "amount_usd", "period", "timezone", "scope", "team", "project", "thresholds", "forecast",
    "burn_rate", "spike_sensitivity", "spike_min_usd", "unattributed_share_percent", "absent_after",
    "severity", "owner", "receiver", "runbook_url", "dashboard_url", "enforcement",
)
_DEFAULTABLE = tuple(k for k in _BUDGET_KEYS if k not in ("name", "amount_usd", "scope", "team", "project"))
_RECEIVER_KEYS = ("slack", "email", "webhook", "pagerduty_routing_key_file")
_BUILTIN_DEFAULTS: dict[str, Any] = {
    "period": CALENDAR_MONTH,
    "timezone": "UTC",
    "thresholds": [50, 80, 100],
    "forecast": True,
    "burn_rate": True,
    "spike_sensitivity": "medium",
    "unattributed_share_percent": 10,
    "absent_after": "",
    "severity": "warning",
    "owner": "",
    "runbook_url": "https://github.com/inferops/inferops/blob/main/docs/budgets.md#runbook",
    "dashboard_url": "http://localhost:3000/d/inferops-overview",
    "enforcement": "none",
}


def load_budgets(path: str | Path) -> BudgetSet:
    """Read and validate a budgets file. Raises :class:`ConfigError` naming file, line and field."""
    return _parse(load_file(path), str(path))


def parse_budgets_text(text: str, source: str = "<string>") -> BudgetSet:
    """Validate budgets YAML given as text (tests, generated files)."""
    return _parse(load_text(text, source), source)


def _parse(data: Any, source: str) -> BudgetSet:
    if not isinstance(data, LineDict):
        raise ConfigError("expected a mapping with keys version, defaults, budgets at the top level",
                          source=source, line=1)
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(data, key, f"unknown key {key!r}; expected one of {', '.join(_TOP_KEYS)}")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise fail(data, "version", f"unsupported version {describe(version)}; expected {SCHEMA_VERSION}")
    defaults = dict(_BUILTIN_DEFAULTS)
    raw_defaults = data.get("defaults")
    default_lines: dict[str, tuple[Any, Any]] = {}
    if raw_defaults is not None:
        if not isinstance(raw_defaults, LineDict):
            raise fail(data, "defaults", f"expected a mapping of budget fields, got {describe(raw_defaults)}")
        for key, value in raw_defaults.items():
            if key not in _DEFAULTABLE:
                raise fail(raw_defaults, key, f"unknown or non-defaultable key {key!r}; "
                                              f"expected one of {', '.join(_DEFAULTABLE)}")
            defaults[key] = value
            default_lines[key] = (raw_defaults, key)
    if "budgets" not in data:
        raise ConfigError("missing key 'budgets' (a list of budgets)", source=source, line=1, field="budgets")
    items = data["budgets"]
    if not isinstance(items, LineList) or not items:
        raise fail(data, "budgets", f"expected a non-empty list of budgets, got {describe(items)}")
    budgets: list[Budget] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"budgets[{index}]"
        if not isinstance(item, LineDict):
            raise fail(items, index, f"expected a mapping (one budget), got {describe(item)}", field=where)
        budget = _parse_budget(item, where, defaults, default_lines)
        if budget.name in seen:
            raise fail(item, "name", f"duplicate budget name {budget.name!r} (first on line {seen[budget.name]})",
                       field=f"{where}.name")
        seen[budget.name] = item.line_of("name")
        budgets.append(budget)
    return BudgetSet(tuple(budgets), source)


class _Field:
    """Locates one budget field for error messages: the budget's own key, else the defaults' key."""

    def __init__(self, item: LineDict, key: str, where: str, default_lines: dict[str, tuple[Any, Any]]):
        self.item, self.key, self.where = item, key, where
        self.from_defaults = key not in item and key in default_lines
        self.default_lines = default_lines

    def error(self, message: str, sub: str = "") -> ConfigError:
        if self.from_defaults:
            container, key = self.default_lines[self.key]
            return fail(container, key, message, field=f"defaults.{self.key}{sub}")
        if self.key in self.item:
            return fail(self.item, self.key, message, field=f"{self.where}.{self.key}{sub}")
        return ConfigError(message, source=self.item.source, line=self.item.line, field=f"{self.where}.{self.key}")


def _parse_budget(item: LineDict, where: str, defaults: dict[str, Any],
                  default_lines: dict[str, tuple[Any, Any]]) -> Budget:
    for key in item:
        if key not in _BUDGET_KEYS:
            raise fail(item, key, f"unknown key {key!r}; expected one of {', '.join(_BUDGET_KEYS)}",
                       field=f"{where}.{key}")

    def get(key: str) -> tuple[Any, _Field]:
        f = _Field(item, key, where, default_lines)
        return (item[key] if key in item else defaults.get(key)), f

    name, f = get("name")
    if name is None:
        raise f.error("missing budget name (lower-case letters, digits, '.', '_' or '-')")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise f.error(f"expected a name of lower-case letters, digits, '.', '_' or '-' (max 63), "
                      f"got {describe(name)}")
    where = f"budgets[{name}]"

    def get2(key: str) -> tuple[Any, _Field]:
        f = _Field(item, key, where, default_lines)
        return (item[key] if key in item else defaults.get(key)), f

    amount, f = get2("amount_usd")
    if amount is None:
        raise f.error("missing amount_usd (the budget in US dollars for one period)")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not (0 < amount < 1e12):
        raise f.error(f"expected a positive number of US dollars, got {describe(amount)}")

    period, f = get2("period")
    if not isinstance(period, str) or not (period in (CALENDAR_DAY, CALENDAR_MONTH) or _ROLLING_RE.match(period)):
        raise f.error(f"expected calendar_day, calendar_month or rolling_<N>d (N 1..99), got {describe(period)}")

    tz, f = get2("timezone")
    tz_name, offset = _parse_timezone(tz, f)

    matchers = _parse_scope(item, where)
    eq = {m.label: m.value for m in matchers if m.op == "="}
    team, f = get2("team")
    if team is None:
        if Label.TEAM not in eq:
            raise f.error("missing team: the scope does not fix one team, so say which team owns the budget "
                          "(it labels the alerts and picks the route)")
        team = eq[Label.TEAM]
    if not isinstance(team, str) or not _LABEL_TEXT_RE.match(team.strip()):
        raise f.error(f"expected a team name (no quotes, backslashes or line breaks), got {describe(team)}")
    project, f = get2("project")
    if project is None:
        project = eq.get(Label.PROJECT, "all")
    if not isinstance(project, str) or not _LABEL_TEXT_RE.match(project.strip()):
        raise f.error(f"expected a project name, got {describe(project)}")

    thresholds, f = get2("thresholds")
    if not isinstance(thresholds, list) or not thresholds:
        raise f.error(f"expected a list of percentages like [50, 80, 100], got {describe(thresholds)}")
    values: list[float] = []
    for i, t in enumerate(thresholds):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 < t <= 100):
            raise f.error(f"expected percentages greater than 0 and at most 100, got {describe(t)}", sub=f"[{i}]")
        if t in values:
            raise f.error(f"duplicate threshold {t}", sub=f"[{i}]")
        values.append(float(t))
    # 100 % is InferopsBudgetExhausted; the others are InferopsBudgetThreshold warnings.
    warn = tuple(sorted(v for v in values if v < 100))

    forecast, f = get2("forecast")
    _need_bool(forecast, f)
    burn, f = get2("burn_rate")
    _need_bool(burn, f)

    spike, f = get2("spike_sensitivity")
    if isinstance(spike, bool) and spike is False or spike == "off":
        spike_factor = 0.0
    elif isinstance(spike, str) and spike in SPIKE_FACTORS:
        spike_factor = SPIKE_FACTORS[spike]
    elif not isinstance(spike, bool) and isinstance(spike, (int, float)) and 1 < spike <= 100:
        spike_factor = float(spike)
    else:
        raise f.error(f"expected off, low (5x), medium (3x), high (2x) or a factor above 1, got {describe(spike)}")
    spike_min, f = get2("spike_min_usd")
    if spike_min is None:
        spike_min = amount * 3600 / _nominal_seconds(period)  # an hour at 1x burn
    elif isinstance(spike_min, bool) or not isinstance(spike_min, (int, float)) or spike_min < 0:
        raise f.error(f"expected a non-negative number of US dollars, got {describe(spike_min)}")

    share, f = get2("unattributed_share_percent")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not (0 <= share <= 100):
        raise f.error(f"expected a percentage 0..100 (0 = off), got {describe(share)}")

    absent, f = get2("absent_after")
    if absent in (None, "", "off", False):
        absent = ""
    elif not isinstance(absent, str) or not _DURATION_RE.match(absent):
        raise f.error(f"expected a Prometheus duration like 30m or 2h, or off, got {describe(absent)}")

    severity, f = get2("severity")
    if severity not in SEVERITIES:
        raise f.error(f"expected one of {', '.join(SEVERITIES)}, got {describe(severity)}")
    owner, f = get2("owner")
    if owner is None:
        owner = ""
    if not isinstance(owner, str):
        raise f.error(f"expected a person or team contact (string), got {describe(owner)}")

    receiver = _parse_receiver(item, where, defaults, default_lines)
    runbook, f = get2("runbook_url")
    _need_url(runbook, f)
    dashboard, f = get2("dashboard_url")
    _need_url(dashboard, f)
    enforcement_raw, f = get2("enforcement")
    enforcement = _parse_enforcement(enforcement_raw, f)

    return Budget(
        name=name, amount_usd=float(amount), period=period, timezone=tz_name, utc_offset_seconds=offset,
        matchers=matchers, team=team.strip(), project=project.strip(), thresholds=warn,
        forecast=forecast, burn_rate=burn, spike_factor=spike_factor, spike_min_usd=float(spike_min),
        unattributed_share=float(share) / 100.0, absent_after=absent, severity=severity, owner=owner,
        receiver=receiver, runbook_url=runbook, dashboard_url=dashboard, enforcement=enforcement,
        line=item.line,
    )


_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _nominal_seconds(period: str) -> int:
    if period == CALENDAR_DAY:
        return 86400
    if period == CALENDAR_MONTH:
        return 30 * 86400
    m = _ROLLING_RE.match(period)
    return int(m.group(1)) * 86400 if m else 86400


def _need_bool(value: Any, f: _Field) -> None:
    if not isinstance(value, bool):
        raise f.error(f"expected true or false, got {describe(value)}")


def _need_url(value: Any, f: _Field) -> None:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s\"'{}]+$", value):
        raise f.error(f"expected an http:// or https:// URL, got {describe(value)}")


def _parse_timezone(raw: Any, f: _Field) -> tuple[str, int]:
    """``UTC`` or a fixed offset (``+05:30``, ``-0800``, ``UTC+02:00``)."""
    if not isinstance(raw, str):
        raise f.error(f"expected UTC or a fixed UTC offset like +02:00, got {describe(raw)}")
    text = raw.strip()
    if text.upper() in ("UTC", "Z", "GMT", "ETC/UTC", "+00:00"):
        return "UTC", 0
    m = _OFFSET_RE.match(text)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours > 14:
            raise f.error(f"expected an offset between -14:00 and +14:00, got {describe(raw)}")
        seconds = sign * (hours * 3600 + minutes * 60)
        return ("UTC" if seconds == 0 else f"{m.group(1)}{hours:02d}:{minutes:02d}"), seconds
    if "/" in text:
        raise f.error(
            f"named time zone {text!r} is not supported: Prometheus 2.x rules have no time-zone database, so "
            "a zone with daylight saving time cannot be followed; give its fixed offset (e.g. +01:00 for "
            "Europe/Berlin in winter) and see docs/budgets.md#time-zones")
    raise f.error(f"expected UTC or a fixed UTC offset like +02:00 or -05:30, got {describe(raw)}")


def _parse_scope(item: LineDict, where: str) -> tuple[Matcher, ...]:
    if "scope" not in item:
        raise ConfigError("missing scope: label matchers like {team: search} or 'global' for all spend",
                          source=item.source, line=item.line, field=f"{where}.scope")
    raw = item["scope"]
    if raw == "global" or raw == {}:
        return ()
    if not isinstance(raw, LineDict):
        raise fail(item, "scope", f"expected a mapping of labels to values or 'global', got {describe(raw)}",
                   field=f"{where}.scope")
    out: list[Matcher] = []
    for label, value in raw.items():
        field_name = f"{where}.scope.{label}"
        if label not in SCOPE_LABELS:
            raise fail(raw, label, f"unknown scope label {label!r}; expected one of {', '.join(SCOPE_LABELS)}",
                       field=field_name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
            raise fail(raw, label, f"expected a label value (string), optionally prefixed with =~, !~ or !=, "
                                   f"got {describe(value)}", field=field_name)
        text = str(value)
        op = "="
        for candidate in _LABEL_VALUE_OPS:
            if text.startswith(candidate) and candidate != "=":
                op, text = candidate, text[len(candidate):]
                break
        if op in ("=~", "!~"):
            try:
                re.compile(text)
            except re.error as exc:
                raise fail(raw, label, f"invalid regular expression {text!r}: {exc}", field=field_name) from None
        if not text and op in ("=", "!="):
            raise fail(raw, label, "expected a non-empty label value", field=field_name)
        out.append(Matcher(label, op, text))
    return tuple(out)


def _parse_receiver(item: LineDict, where: str, defaults: dict[str, Any],
                    default_lines: dict[str, tuple[Any, Any]]) -> Receiver:
    f = _Field(item, "receiver", where, default_lines)
    raw = item.get("receiver", defaults.get("receiver"))
    if raw is None:
        raise f.error("missing receiver: where the alerts go (slack, email, webhook, pagerduty_routing_key_file)")
    if not isinstance(raw, LineDict):
        raise f.error(f"expected a mapping with any of {', '.join(_RECEIVER_KEYS)}, got {describe(raw)}")

    def err(key: str, message: str) -> ConfigError:
        prefix = "defaults.receiver" if f.from_defaults else f"{where}.receiver"
        return fail(raw, key, message, field=f"{prefix}.{key}")

    for key in raw:
        if key in ("pagerduty_routing_key", "pagerduty_key", "routing_key", "service_key", "pagerduty"):
            raise err(key, "PagerDuty keys must not be written in budgets.yaml; give "
                           "pagerduty_routing_key_file: the path of a file holding the key on the Alertmanager host")
        if key not in _RECEIVER_KEYS:
            raise err(key, f"unknown receiver key {key!r}; expected one of {', '.join(_RECEIVER_KEYS)}")
    slack = raw.get("slack", "")
    if slack and (not isinstance(slack, str) or not _SLACK_RE.match(slack)):
        raise err("slack", f"expected a Slack channel like '#team-finops' (quote it in YAML), got {describe(slack)}")
    email_raw = raw.get("email", ())
    emails = [email_raw] if isinstance(email_raw, str) else email_raw
    if not isinstance(emails, (list, tuple)):
        raise err("email", f"expected an address or a list of addresses, got {describe(email_raw)}")
    for address in emails:
        if not isinstance(address, str) or not _EMAIL_RE.match(address):
            raise err("email", f"expected an e-mail address, got {describe(address)}")
    webhook = raw.get("webhook", "")
    if webhook and (not isinstance(webhook, str) or not re.match(r"^https?://[^\s]+$", webhook)):
        raise err("webhook", f"expected an http:// or https:// URL, got {describe(webhook)}")
    pd_file = raw.get("pagerduty_routing_key_file", "")
    if pd_file and (not isinstance(pd_file, str) or not pd_file.startswith("/")):
        raise err("pagerduty_routing_key_file",
                  f"expected the absolute path of a file holding the routing key, got {describe(pd_file)} "
                  "(never the key itself)")
    receiver = Receiver(slack_channel=slack or "", email=tuple(emails), webhook_url=webhook or "",
                        pagerduty_routing_key_file=pd_file or "")
    if receiver.empty:
        raise f.error("expected at least one of slack, email, webhook, pagerduty_routing_key_file")
    return receiver


def _parse_enforcement(raw: Any, f: _Field) -> Enforcement:
    """``none`` | ``block`` | ``downgrade: <model>`` | ``throttle: <requests per minute>``."""
    if raw in (None, "none", False):
        return Enforcement()
    if raw == "block":
        return Enforcement("block")
    if isinstance(raw, LineDict) and len(raw) == 1:
        (action, value), = raw.items()
        if action == "downgrade":
            if not isinstance(value, str) or not value.strip():
                raise f.error(f"expected the model to downgrade to, got {describe(value)}", sub=".downgrade")
            return Enforcement("downgrade", model=value.strip())
        if action == "throttle":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1_000_000):
                raise f.error(f"expected requests per minute (a positive number), got {describe(value)}",
                              sub=".throttle")
            return Enforcement("throttle", requests_per_minute=float(value))
    raise f.error("expected none, block, {downgrade: <model>} or {throttle: <requests per minute>}, "
                  f"got {describe(raw)}")
