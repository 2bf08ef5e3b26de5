"""inferops auto-instrumentation of outgoing LLM calls (httpx, httpx2 and aiohttp).

Turn it on with ``opentelemetry-instrument python app.py`` (entry point
``opentelemetry_instrumentor: inferops``) or programmatically::

    from inferops.instrumentation import InferopsInstrumentor
    InferopsInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)

This module stays cheap to import: the patching, the provider adapters and
the price catalog load inside :meth:`InferopsInstrumentor.instrument`.
See docs/instrumentation.md.
"""

from __future__ import annotations

import logging
from typing import Any, Collection

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

_log = logging.getLogger("inferops.instrumentation")

#: Any one of these suffices (pyproject ``instruments-any`` extra; opentelemetry-instrument reads that).
_instruments_any: tuple[str, ...] = ("httpx >= 0.23", "httpx2 >= 2.0", "aiohttp >= 3.9")
#: All of these are required (none: any one HTTP library will do).
_instruments: tuple[str, ...] = ()

#: How many times instrument() failed inside inferops (the app kept running).
instrument_failures = 0


class InferopsInstrumentor(BaseInstrumentor):
    """Prices, traces and measures every LLM call made through httpx / httpx2 / aiohttp."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _check_dependency_conflicts(self):
        return get_dependency_conflicts(_instruments, _instruments_any)

    def instrument(self, **kwargs: Any):
        """Like ``BaseInstrumentor.instrument``, but an inferops failure is logged, never raised."""
        global instrument_failures
        try:
            return super().instrument(**kwargs)
        except Exception as exc:
            if type(exc).__name__ == "DependencyConflictError":
                raise  # the auto-instrumentation loader expects and handles this one
            instrument_failures += 1
            _log.error("inferops: instrumentation disabled, instrument() failed: %s", exc,
                       exc_info=not _is_config_error(exc))
            try:
                from .patch import unpatch_all

                unpatch_all()
            except Exception:
                pass
            return None

    def _instrument(self, **kwargs: Any) -> None:
        from .configure import build_runtime
        from .patch import patch_all

        runtime = build_runtime(**kwargs)
        if runtime is None:
            return
        try:
            patched = patch_all(runtime)
        except Exception:
            runtime.close()
            raise
        self._runtime = runtime
        _log.debug("inferops: instrumented %s", ", ".join(patched) or "nothing (no httpx/httpx2/aiohttp)")

    def _uninstrument(self, **kwargs: Any) -> None:
        from .patch import unpatch_all

        unpatch_all()
        runtime, self._runtime = getattr(self, "_runtime", None), None
        if runtime is not None:
            runtime.close()  # records the calls whose metrics are still buffered

    def flush_metrics(self) -> int:
        """Record now the call metrics still buffered (``metrics_batch_interval_seconds``); returns how many.

        inferops' own readers flush before every collection; call this before
        reading a third-party reader (e.g. ``InMemoryMetricReader``) right after calls.
        """
        runtime = getattr(self, "_runtime", None)
        return runtime.flush_metrics() if runtime is not None else 0


def _is_config_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "ConfigError"


__all__ = ["InferopsInstrumentor", "instrument_failures"]
