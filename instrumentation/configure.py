"""Builds the :class:`~inferops.instrumentation.runtime.Runtime` for ``instrument(**kwargs)``.

Reads the settings, loads the price catalog and the provider router, creates
the tracer and the cost instruments on the given (or global) providers, and
connects budget enforcement when it is configured. Any error here is caught by
``InferopsInstrumentor.instrument`` (logged, the app keeps running
uninstrumented).
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import metrics, trace

from inferops._version import __version__

_log = logging.getLogger("inferops.instrumentation")

SCOPE = "inferops"


def _resource_attributes(tracer_provider, meter_provider) -> dict[str, Any]:
    for obj in (tracer_provider, meter_provider):
        res = getattr(obj, "resource", None)
        if res is None:
            res = getattr(getattr(obj, "_sdk_config", None), "resource", None)
        if res is not None:
            return dict(res.attributes)
    return {}


def _enforcer(settings):
    if not settings.enforcement_alertmanager_url:
        return None
    try:
        from inferops.alerts.enforcement import Enforcer
    except ImportError:
        _log.warning("inferops: enforcement_alertmanager_url is set but inferops.alerts.enforcement "
                     "is not available; budget enforcement is off")
        return None
    try:
        return Enforcer.from_settings(settings)
    except Exception:
        _log.warning("inferops: budget enforcement could not start; it is off (fail open)", exc_info=True)
        return None


def _routing(settings, engine, meter, guard):
    """The routing policy and its counters, or (None, None). A bad policy file turns routing off, loudly:
    the app must keep running (fix it with the error's file:line)."""
    if not settings.routing_file:
        return None, None
    try:
        from inferops.processors.routing import RoutingMetrics, RoutingPolicy

        policy = RoutingPolicy.from_settings(settings, engine=engine)
        return policy, RoutingMetrics(meter, guard=guard)
    except Exception as exc:
        _log.error("inferops: model routing is OFF: %s", exc)
        return None, None


def build_runtime(*, tracer_provider=None, meter_provider=None, settings=None, router=None, **_: Any):
    """The runtime, or None when the instrumentation is switched off (``INFEROPS_ENABLED=false``)."""
    from inferops.names import Metrics
    from inferops.processors.engine import CostEngine
    from inferops.processors.recorder import CostRecorder, _create
    from inferops.settings import load_settings

    from .attribution import Resolver, set_baggage_keys
    from .estimate import TokenEstimator
    from .runtime import Runtime

    if settings is None:
        settings = load_settings()
    if not settings.enabled:
        _log.info("inferops: instrumentation disabled by INFEROPS_ENABLED")
        return None
    if router is None:
        from inferops.instrumentation.providers import AdapterRouter

        router = AdapterRouter(settings)
    tracer_provider = tracer_provider or trace.get_tracer_provider()
    meter_provider = meter_provider or metrics.get_meter_provider()
    tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
    meter = meter_provider.get_meter(SCOPE, __version__)
    recorder = CostRecorder(meter, label_value_cap=settings.label_value_cap, user_label=settings.user_label)
    enforcer = _enforcer(settings)
    budget_counter = _create(meter, Metrics.BUDGET_ACTIONS) if enforcer is not None else None
    set_baggage_keys(settings.baggage_keys)
    engine = CostEngine.from_settings(settings)
    routing, routing_metrics = _routing(settings, engine, meter, recorder.guard)
    return Runtime(
        settings=settings,
        tracer=tracer,
        recorder=recorder,
        engine=engine,
        router=router,
        resolver=Resolver(settings, _resource_attributes(tracer_provider, meter_provider)),
        estimator=TokenEstimator(settings.tiktoken_cache_dir),
        enforcer=enforcer,
        budget_counter=budget_counter,
        routing=routing,
        routing_metrics=routing_metrics,
    )
