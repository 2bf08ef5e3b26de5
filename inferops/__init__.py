"""inferops: AI FinOps for LLM inference costs, as plugins for OpenTelemetry and Prometheus.

``import inferops`` stays light: names below load on first use.

* ``inferops.attribute(team=..., feature=..., user=...)``: context manager and
  decorator attributing the LLM spend inside it (W3C baggage).
* ``inferops.BudgetExceededError``: raised when budget enforcement blocks a call.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

_LAZY = {
    "attribute": ("inferops.instrumentation.attribution", "attribute"),
    "BudgetExceededError": ("inferops.errors", "BudgetExceededError"),
    "InferopsInstrumentor": ("inferops.instrumentation", "InferopsInstrumentor"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'inferops' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
