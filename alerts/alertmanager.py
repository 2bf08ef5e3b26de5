"""Budgets -> Alertmanager routes, receivers and inhibition rules.

The *fragment* is what an existing Alertmanager needs: one route (to put
under your root route) that catches inferops alerts and routes them by team,
then by budget and severity, to the receivers the budgets name; the receivers;
and the inhibition rule that silences a budget's threshold and forecast
warnings once the budget is exhausted. The *complete* config wraps the
fragment in a runnable ``alertmanager.yml`` (tests, demo), optionally with a
catch-all webhook.

Secrets never appear: Slack's webhook URL is read from ``slack_api_url_file``
and PagerDuty keys from each budget's ``pagerduty_routing_key_file``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inferops.names import Label

from .budgets import Budget, BudgetSet
from .rules import AlertName


@dataclass(frozen=True)
class AlertmanagerOptions:
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    slack_api_url_file: str = "/etc/alertmanager/secrets/slack-api-url"
    smtp_smarthost: str = "localhost:25"
    smtp_from: str = "inferops-alerts@example.com"
    #: Complete config only: receiver of alerts no budget route takes (e.g. a local webhook in tests).
    default_webhook_url: str = ""

    @classmethod
    def demo(cls, default_webhook_url: str = "") -> "AlertmanagerOptions":
        return cls(group_wait="1s", group_interval="1s", repeat_interval="1m",
                   default_webhook_url=default_webhook_url)


def receiver_name(b: Budget, page: bool = False) -> str:
    return f"inferops-{b.name}" + ("-page" if page else "")


def _receiver(b: Budget, page: bool) -> dict[str, Any]:
    r = b.receiver
    out: dict[str, Any] = {"name": receiver_name(b, page)}
    if r.slack_channel:
        out["slack_configs"] = [{
            "channel": r.slack_channel, "send_resolved": True,
            "title": '{{ .CommonAnnotations.summary }}',
            "text": '{{ range .Alerts }}{{ .Annotations.description }}\n{{ end }}',
        }]
    if r.email:
        out["email_configs"] = [{"to": ", ".join(r.email), "send_resolved": True}]
    if r.webhook_url:
        out["webhook_configs"] = [{"url": r.webhook_url, "send_resolved": True}]
    if page and r.pagerduty_routing_key_file:
        out["pagerduty_configs"] = [{
            "routing_key_file": r.pagerduty_routing_key_file,
            "description": '{{ .CommonAnnotations.summary }}',
            "severity": "critical",
        }]
    return out


def fragment(budgets: BudgetSet, opts: AlertmanagerOptions | None = None) -> dict[str, Any]:
    """``route`` (one sub-route for your tree), ``receivers`` and ``inhibit_rules``."""
    opts = opts or AlertmanagerOptions()
    receivers: list[dict[str, Any]] = []
    team_routes: dict[str, list[dict[str, Any]]] = {}
    for b in budgets.budgets:
        routes = team_routes.setdefault(b.team, [])
        budget_match = f'{Label.BUDGET}="{b.name}"'
        if b.receiver.pagerduty_routing_key_file:
            receivers.append(_receiver(b, page=True))
            routes.append({"receiver": receiver_name(b, page=True),
                           "matchers": [budget_match, f'{Label.SEVERITY}="critical"']})
        receivers.append(_receiver(b, page=False))
        routes.append({"receiver": receiver_name(b), "matchers": [budget_match]})
    first_receiver = receiver_name(budgets.budgets[0])
    route = {
        "receiver": first_receiver,
        "matchers": ['alertname=~"Inferops.*"'],
        "group_by": ["alertname", Label.BUDGET, Label.TEAM],
        "group_wait": opts.group_wait,
        "group_interval": opts.group_interval,
        "repeat_interval": opts.repeat_interval,
        "routes": [
            {"matchers": [f'{Label.TEAM}="{team}"'], "receiver": receiver_name(next(
                b for b in budgets.budgets if b.team == team)), "routes": routes}
            for team, routes in team_routes.items()
        ],
    }
    inhibit = [{
        "source_matchers": [f'alertname="{AlertName.EXHAUSTED}"'],
        "target_matchers": [f'alertname=~"{AlertName.THRESHOLD}|{AlertName.FORECAST}"'],
        "equal": [Label.BUDGET],
    }]
    return {"route": route, "receivers": receivers, "inhibit_rules": inhibit}


def complete_config(budgets: BudgetSet, opts: AlertmanagerOptions | None = None) -> dict[str, Any]:
    """A runnable ``alertmanager.yml``: globals, a root route, the fragment."""
    opts = opts or AlertmanagerOptions()
    frag = fragment(budgets, opts)
    default: dict[str, Any] = {"name": "inferops-default"}
    if opts.default_webhook_url:
        default["webhook_configs"] = [{"url": opts.default_webhook_url, "send_resolved": True}]
    return {
        "global": {
            "resolve_timeout": "5m",
            "slack_api_url_file": opts.slack_api_url_file,
            "smtp_smarthost": opts.smtp_smarthost,
            "smtp_from": opts.smtp_from,
            "smtp_require_tls": False,
        },
        "route": {
            "receiver": "inferops-default",
            "group_by": ["alertname"],
            "group_wait": opts.group_wait,
            "group_interval": opts.group_interval,
            "repeat_interval": opts.repeat_interval,
            "routes": [frag["route"]],
        },
        "receivers": [default, *frag["receivers"]],
        "inhibit_rules": frag["inhibit_rules"],
    }
