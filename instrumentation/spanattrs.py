"""Setting span attributes inferops built itself, without the SDK re-validating each one.

``Span.set_attributes`` of the OpenTelemetry SDK runs every value through
``_clean_attribute_value`` (a recursive walk with several ``isinstance``
checks per value) before storing it; for the ~25 attributes of a GenAI span
that walk is the largest single cost of the span (~50 calls, ~280
``isinstance`` per LLM call, measured with cProfile). The values inferops
sets are already clean: ``str``, ``bool``, ``int``, ``float`` or tuples of
``str``, never ``None``. :func:`set_clean_attributes` checks exactly that
(one type lookup per value) and, when the span is the SDK's own ``Span`` with
no value-length limit and room under its attribute-count limit, stores them
the way ``BoundedAttributes._set_items`` does (under the span's and the
attributes' locks); in every other case it calls ``span.set_attributes``, so a
span of another SDK, a non-recording span, a value-length limit or an
unexpected SDK change all take the public path.
"""

from __future__ import annotations

from typing import Any, Mapping

try:  # the SDK's classes, to recognise its spans (a private layout, checked once below)
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk import trace as _sdk_trace

    _SdkSpan = _sdk_trace.Span
    #: The span classes the SDK's tracer makes (``_Span`` only changes ``__str__``).
    _SPAN_TYPES = frozenset(c for c in (_sdk_trace.Span, getattr(_sdk_trace, "_Span", None)) if c is not None)
except ImportError:  # pragma: no cover - the SDK is a dependency
    _BoundedAttributes = _SdkSpan = None  # type: ignore[assignment,misc]
    _SPAN_TYPES = frozenset()

_SCALARS = frozenset({str, bool, int, float})

try:
    from .providers._chunkscan import clean_values as _clean_values
except ImportError:  # built without a C compiler
    _clean_values = None


def _layout_ok() -> bool:
    """The private fields relied on exist in the installed SDK (else: always the public path)."""
    if _SdkSpan is None:
        return False
    probe = _BoundedAttributes(maxlen=4, immutable=False)
    return all(hasattr(probe, f) for f in ("_dict", "_lock", "maxlen", "max_value_len", "_immutable", "dropped"))


FAST = _layout_ok()


def clean(attrs: Mapping[str, Any]) -> bool:
    """True when every value is a scalar or a tuple of ``str`` (what the SDK would store unchanged).

    The compiled ``clean_values`` gives the same answer for a dict in ~1/15 of the instructions.
    """
    if _clean_values is not None and type(attrs) is dict:
        return _clean_values(attrs)
    return _clean_py(attrs)


def _clean_py(attrs: Mapping[str, Any]) -> bool:
    scalars = _SCALARS
    for v in attrs.values():
        t = type(v)
        if t in scalars:
            continue
        if t is tuple and all(type(x) is str for x in v):
            continue
        return False
    return True


def set_clean_attributes(span, attrs: Mapping[str, Any]) -> None:
    """``span.set_attributes(attrs)``, skipping the SDK's per-value cleaning when that is safe."""
    if FAST and type(span) in _SPAN_TYPES:
        battrs = getattr(span, "_attributes", None)
        if (type(battrs) is _BoundedAttributes and battrs.max_value_len is None and not battrs._immutable
                and (battrs.maxlen is None or len(battrs._dict) + len(attrs) <= battrs.maxlen)
                and clean(attrs)):
            with span._lock:
                if span._end_time is not None:  # the SDK warns and drops; so does this
                    return
                with battrs._lock:
                    d = battrs._dict
                    if d.keys().isdisjoint(attrs):  # the usual case: new keys, appended in order
                        d.update(attrs)
                    else:
                        for k, v in attrs.items():
                            if k in d:  # the SDK moves a re-set key to the end
                                del d[k]
                            d[k] = v
            return
    span.set_attributes(attrs)


def _sampler_types() -> tuple[frozenset, type | None]:
    try:
        from opentelemetry.sdk.trace import sampling as s
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return frozenset(), None
    return frozenset({s.StaticSampler, s.TraceIdRatioBased}), s.ParentBased


_ATTRIBUTE_BLIND, _PARENT_BASED = _sampler_types()
_PARENT_FIELDS = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled", "_local_parent_sampled",
                  "_local_parent_not_sampled")


def sampler_ignores_attributes(tracer) -> bool:
    """True when ``tracer`` is an SDK tracer whose sampler is built only from the SDK's samplers that never
    look at span attributes (always on/off, trace-id ratio, parent-based over those).

    Then the attributes a span starts with need not be handed to ``start_span``
    (where the SDK cleans each one) for the sampler's sake: they can be set right
    after with :func:`set_clean_attributes`. Any other sampler (a user's own, or
    one that reads attributes) gets them at creation as semconv asks.
    """
    sampler = getattr(tracer, "sampler", None)
    if sampler is None or type(tracer).__module__ != "opentelemetry.sdk.trace":
        return False
    return _blind(sampler, 0)


def _blind(sampler, depth: int) -> bool:
    t = type(sampler)
    if t in _ATTRIBUTE_BLIND:
        return True
    if t is _PARENT_BASED and depth < 4:
        return all(_blind(getattr(sampler, f, None), depth + 1) for f in _PARENT_FIELDS)
    return False
