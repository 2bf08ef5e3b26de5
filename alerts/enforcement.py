"""Budget enforcement: which budgets are spent, and what a call in their scope must do.

Every replica of every app must agree on which budgets are exhausted without
a new datastore. Prometheus already knows (it fires ``InferopsBudgetExhausted``)
and Alertmanager already aggregates that across Prometheus replicas, so the
:class:`Enforcer` polls Alertmanager's ``GET /api/v2/alerts`` in a background
daemon thread and keeps the set of exhausted budget names in memory.
:meth:`Enforcer.decide` then only reads that set and the budgets file: no I/O,
no locks on the hot path except the throttle's token bucket.

Fail open: when Alertmanager cannot be reached (or answers nonsense) the last
known state is kept for one more poll period, then dropped; calls are allowed;
the first failure is logged once (until the next success) and every failed
poll is counted in ``inferops_budget_enforcement_failures_total{reason}``.

Silencing an ``InferopsBudgetExhausted`` alert in Alertmanager lifts
enforcement for that budget (silenced alerts are not fetched): an operator
override that needs no deploy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from inferops.names import UNATTRIBUTED, Label, Metrics

from .budgets import Budget, BudgetSet, load_budgets
from .rules import AlertName

_log = logging.getLogger("inferops.alerts.enforcement")

#: Most restrictive first: when several exhausted budgets cover a call, the first action wins.
_PRECEDENCE = ("block", "throttle", "downgrade")


@dataclass
class Decision:
    """What to do with one call. ``model`` is the downgrade target."""

    action: str  # "allow" | "block" | "downgrade" | "throttle"
    budget: str = ""
    model: str = ""


ALLOW = Decision("allow")


class TokenBucket:
    """``rate_per_minute`` requests per minute with a burst of one minute's worth (at least 1)."""

    def __init__(self, rate_per_minute: float, clock=time.monotonic):
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, rate_per_minute)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Enforcer:
    """Decides allow/block/downgrade/throttle from the exhausted budgets Alertmanager reports."""

    def __init__(self, budgets: BudgetSet, alertmanager_url: str, *, poll_seconds: float = 30.0,
                 meter_provider: Any = None, timeout: float = 5.0, start: bool = True, clock=time.monotonic):
        self.budgets = {b.name: b for b in budgets.budgets if b.enforcement.action != "none"}
        self.url = alertmanager_url.rstrip("/")
        self.poll_seconds = float(poll_seconds)
        self.timeout = timeout
        self.clock = clock
        #: Exhausted budget names (only those with an enforcement action), replaced atomically.
        self._exhausted: frozenset[str] = frozenset()
        self._valid_until = 0.0
        self._buckets = {name: TokenBucket(b.enforcement.requests_per_minute, clock)
                         for name, b in self.budgets.items() if b.enforcement.action == "throttle"}
        self._failing = False
        self._stop = threading.Event()
        self._polled = threading.Event()
        self._thread: threading.Thread | None = None
        if meter_provider is None:
            from opentelemetry import metrics

            meter_provider = metrics.get_meter_provider()
        meter = meter_provider.get_meter("inferops.alerts.enforcement")
        m = Metrics.ENFORCEMENT_FAILURES
        self._failures = meter.create_counter(m.otel_name, unit=m.unit, description=m.description)
        if start:
            self.start()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Any, meter_provider: Any = None) -> "Enforcer | None":
        """None unless both ``enforcement_alertmanager_url`` and ``enforcement_budgets_file`` are set."""
        url = getattr(settings, "enforcement_alertmanager_url", "")
        path = getattr(settings, "enforcement_budgets_file", "")
        if not url or not path:
            if url and not path:
                _log.warning("inferops: enforcement_alertmanager_url is set but enforcement_budgets_file is not; "
                             "budget enforcement is off")
            return None
        return cls(load_budgets(path), url, poll_seconds=settings.enforcement_poll_seconds,
                   meter_provider=meter_provider)

    # -- background polling ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inferops-enforcement", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)

    def wait_polled(self, timeout: float) -> bool:
        """Block until the next poll completes (tests, start-up). Returns False on timeout."""
        self._polled.clear()
        return self._polled.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_seconds)

    def poll_once(self) -> bool:
        """Fetch active exhausted alerts once; returns True on success. Never raises."""
        try:
            names = self._fetch()
        except _PollError as exc:
            self._failed(exc.reason, str(exc))
            self._polled.set()
            return False
        except Exception as exc:  # never let the thread die
            self._failed("error", repr(exc))
            self._polled.set()
            return False
        self._exhausted = frozenset(n for n in names if n in self.budgets)
        # One missed poll is tolerated; after that the state is unknown and calls are allowed.
        self._valid_until = self.clock() + 2 * self.poll_seconds + self.timeout
        if self._failing:
            _log.warning("inferops: Alertmanager at %s reachable again; budget enforcement resumed", self.url)
        self._failing = False
        self._polled.set()
        return True

    def _fetch(self) -> set[str]:
        query = urllib.parse.urlencode([("active", "true"), ("silenced", "false"), ("inhibited", "true"),
                                        ("unprocessed", "true"),
                                        ("filter", f'alertname="{AlertName.EXHAUSTED}"')])
        req = urllib.request.Request(f"{self.url}/api/v2/alerts?{query}", headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise _PollError("http_status", f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise _PollError("unreachable", str(exc)) from None
        try:
            alerts = json.loads(body)
        except ValueError:
            raise _PollError("bad_response", "not JSON") from None
        if not isinstance(alerts, list):
            raise _PollError("bad_response", "expected a JSON list of alerts")
        names: set[str] = set()
        for alert in alerts:
            if not isinstance(alert, dict):
                continue
            labels = alert.get("labels") or {}
            # The query already excluded silenced alerts (an operator override); inhibited ones still count.
            if labels.get("alertname") == AlertName.EXHAUSTED and labels.get(Label.BUDGET):
                names.add(labels[Label.BUDGET])
        return names

    def _failed(self, reason: str, detail: str) -> None:
        try:
            self._failures.add(1, {Label.REASON: reason})
        except Exception:  # pragma: no cover - metrics must never break enforcement
            pass
        if not self._failing:
            _log.warning("inferops: cannot poll Alertmanager at %s (%s); budget enforcement fails open "
                         "(calls are allowed) until it is reachable again", self.url, detail)
        self._failing = True

    # -- the hot path ----------------------------------------------------------------------

    @property
    def exhausted(self) -> frozenset[str]:
        """Exhausted budgets (with an action) as last polled; empty once the state expired."""
        if self.clock() > self._valid_until:
            return frozenset()
        return self._exhausted

    def decide(self, who: Any, provider: str, model: str) -> Decision:
        """Allow, or the action of the most restrictive exhausted budget whose scope covers the call.

        ``who`` is an :class:`inferops.processors.recorder.Attribution`. Reads memory only.
        """
        exhausted = self.exhausted
        if not exhausted:
            return ALLOW
        labels = {
            Label.TEAM: getattr(who, "team", "") or UNATTRIBUTED,
            Label.PROJECT: getattr(who, "project", "") or UNATTRIBUTED,
            Label.FEATURE: getattr(who, "feature", "") or UNATTRIBUTED,
            Label.ENVIRONMENT: getattr(who, "environment", "") or UNATTRIBUTED,
            Label.PROVIDER: provider or "unknown",
            Label.MODEL: model or "unknown",
        }
        hits: list[Budget] = [self.budgets[n] for n in sorted(exhausted) if self.budgets[n].matches(labels)]
        if not hits:
            return ALLOW
        hits.sort(key=lambda b: _PRECEDENCE.index(b.enforcement.action))
        for b in hits:
            action = b.enforcement.action
            if action == "block":
                return Decision("block", b.name)
            if action == "throttle":
                if not self._buckets[b.name].take():
                    return Decision("throttle", b.name)
                continue  # under the rate: a less restrictive budget may still apply
            if action == "downgrade":
                if model == b.enforcement.model:
                    return ALLOW
                return Decision("downgrade", b.name, b.enforcement.model)
        return ALLOW


class _PollError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
