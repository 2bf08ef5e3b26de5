"""Exceptions inferops raises into the application on purpose.

The instrumentation never raises into the app, with one intended exception:
budget enforcement. When the configured Alertmanager reports a budget as
exhausted and its budgets.yaml action is ``block`` or ``throttle``, the call
is stopped before it leaves, with :class:`BudgetExceededError`, so the app can
handle it like any other provider error.
"""

from __future__ import annotations


class InferopsError(Exception):
    """Base class of exceptions inferops raises into applications."""


class BudgetExceededError(InferopsError):
    """An LLM call was stopped by budget enforcement before it was sent.

    Attributes name the budget and the action so callers can branch on them.
    """

    def __init__(self, budget: str, action: str, *, provider: str = "", model: str = "",
                 who: str = ""):
        self.budget = budget
        self.action = action
        self.provider = provider
        self.model = model
        what = f"{provider} {model}".strip() or "LLM"
        scope = f" for {who}" if who else ""
        verb = "blocked" if action == "block" else "throttled"
        super().__init__(
            f"inferops: {what} call {verb}: budget {budget!r} is exhausted{scope} "
            f"(enforcement action {action!r} from budgets.yaml). Raise the budget, wait for the "
            f"period to roll over, or change its action to 'downgrade' or 'alert'.")
