"""Span attributes set without the SDK's per-value cleaning equal those set through the public API."""

from __future__ import annotations

import json

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferops.instrumentation import spanattrs
from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.settings import Settings


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _span_attrs(srv, monkeypatch, fast: bool, stream: bool):
    monkeypatch.setattr(spanattrs, "FAST", fast)
    settings = Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints())
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6,
            "temperature": 0.5, "stream": stream}
    with instrumented(settings=settings) as cap:
        with httpx2.Client() as c:
            with c.stream("POST", srv.base_url + "/openai/v1/chat/completions", json=body,
                          headers={"X-Inferops-Team": "search", "X-Inferops-Feature": "answer"}) as r:
                r.read()
        (span,) = cap.spans()
    volatile = {"gen_ai.response.time_to_first_chunk", "gen_ai.response.id"}
    return {k: v for k, v in span.attributes.items() if k not in volatile}, span


@pytest.mark.parametrize("stream", [False, True])
def test_same_attributes_as_the_public_path(srv, monkeypatch, stream):
    fast, fast_span = _span_attrs(srv, monkeypatch, True, stream)
    slow, _ = _span_attrs(srv, monkeypatch, False, stream)
    assert fast == slow
    assert fast["inferops.team"] == "search" and fast["gen_ai.usage.cost"] > 0
    assert isinstance(fast["gen_ai.response.finish_reasons"], tuple)
    assert fast_span.dropped_attributes == 0


def _span(limits: SpanLimits | None = None):
    tp = TracerProvider(span_limits=limits) if limits else TracerProvider()
    exp = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    return tp.get_tracer("t").start_span("s"), exp


def test_stores_clean_values_directly():
    span, exp = _span()
    assert spanattrs.FAST
    spanattrs.set_clean_attributes(span, {"a": "x", "b": 1, "c": 1.5, "d": True, "e": ("p", "q")})
    spanattrs.set_clean_attributes(span, {"a": "y"})  # re-set: latest value, like the SDK
    span.end()
    assert dict(exp.get_finished_spans()[0].attributes) == {"b": 1, "c": 1.5, "d": True, "e": ("p", "q"), "a": "y"}


def test_falls_back_to_the_sdk_when_not_safe():
    # A list (the SDK turns it into a tuple), None: the public path, with whatever the SDK makes of them.
    values = {"l": ["a", "b"], "n": None, "k": "v"}
    span, exp = _span()
    spanattrs.set_clean_attributes(span, values)
    span.end()
    ref, ref_exp = _span()
    ref.set_attributes(values)
    ref.end()
    got = dict(exp.get_finished_spans()[0].attributes)
    assert got == dict(ref_exp.get_finished_spans()[0].attributes) and got["l"] == ("a", "b")
    # A value-length limit: the SDK truncates.
    span, exp = _span(SpanLimits(max_span_attribute_length=3))
    spanattrs.set_clean_attributes(span, {"k": "abcdef"})
    span.end()
    assert exp.get_finished_spans()[0].attributes["k"] == "abc"
    # An attribute-count limit that would be exceeded: the SDK drops the oldest and counts it.
    span, exp = _span(SpanLimits(max_span_attributes=2))
    spanattrs.set_clean_attributes(span, {"a": "1", "b": "2", "c": "3"})
    span.end()
    done = exp.get_finished_spans()[0]
    assert dict(done.attributes) == {"b": "2", "c": "3"} and done.dropped_attributes == 1
    # An ended span takes no more attributes (the SDK warns and drops).
    span, exp = _span()
    span.end()
    spanattrs.set_clean_attributes(span, {"late": "x"})
    assert "late" not in exp.get_finished_spans()[0].attributes


def test_non_sdk_spans_use_their_own_set_attributes():
    class Recorder:
        def __init__(self):
            self.got = None

        def set_attributes(self, attrs):
            self.got = dict(attrs)

    r = Recorder()
    spanattrs.set_clean_attributes(r, {"a": "b"})
    assert r.got == {"a": "b"}


def _run_call(srv, tracer_provider=None):
    """One streamed chat call through httpx2 instrumented on ``tracer_provider`` (default: the harness's)."""
    from inferops.instrumentation import InferopsInstrumentor

    settings = Settings(provider_endpoints=srv.endpoints(), self_hosted=srv.self_hosted_endpoints())
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "stream": True}
    exp = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exp))
    inst = InferopsInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, settings=settings)
    try:
        with httpx2.Client() as c:
            with c.stream("POST", srv.base_url + "/openai/v1/chat/completions", json=body,
                          headers={"X-Inferops-Team": "search"}) as r:
                r.read()
    finally:
        inst.uninstrument()
    (span,) = exp.get_finished_spans()
    volatile = {"gen_ai.response.time_to_first_chunk", "gen_ai.response.id"}
    return [(k, v) for k, v in span.attributes.items() if k not in volatile]


def test_sampler_blindness_is_recognised():
    from opentelemetry.sdk.trace import sampling

    class Mine(sampling.Sampler):
        def should_sample(self, *a, **k):
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE)

        def get_description(self):
            return "mine"

    blind = spanattrs.sampler_ignores_attributes
    assert blind(TracerProvider().get_tracer("t"))  # default: ParentBased(ALWAYS_ON)
    assert blind(TracerProvider(sampler=sampling.TraceIdRatioBased(0.3)).get_tracer("t"))
    assert blind(TracerProvider(sampler=sampling.ParentBased(sampling.ALWAYS_OFF)).get_tracer("t"))
    assert not blind(TracerProvider(sampler=Mine()).get_tracer("t"))
    assert not blind(TracerProvider(sampler=sampling.ParentBased(sampling.ALWAYS_ON, remote_parent_sampled=Mine()))
                     .get_tracer("t"))
    from opentelemetry import trace

    assert not blind(trace.NoOpTracer())


def test_blind_sampler_start_gives_the_same_attributes_in_the_same_order(srv, monkeypatch):
    from inferops.instrumentation import runtime

    blind = _run_call(srv, TracerProvider())
    monkeypatch.setattr(runtime, "sampler_ignores_attributes", lambda tracer: False)
    public = _run_call(srv, TracerProvider())
    assert blind == public
    assert dict(blind)["gen_ai.provider.name"] == "openai" and dict(blind)["inferops.team"] == "search"


def test_a_sampler_that_reads_attributes_gets_them_at_span_start(srv):
    from opentelemetry.sdk.trace import sampling

    seen = []

    class Recording(sampling.Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            seen.append((name, dict(attributes or {})))
            return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self):
            return "recording"

    attrs = dict(_run_call(srv, TracerProvider(sampler=Recording())))
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    (name, start_attrs), = [s for s in seen if s[0].startswith("chat")]
    assert start_attrs["gen_ai.operation.name"] == "chat"
    assert start_attrs["gen_ai.provider.name"] == "openai"
    assert start_attrs["gen_ai.request.model"] == "gpt-4o"
    assert "server.address" in start_attrs


def test_key_order_matches_the_sdk_with_and_without_re_set_keys():
    # New keys are appended in one update; a re-set key moves to the end, as BoundedAttributes does.
    sets = [{"a": "x", "b": 1}, {"c": 1.5, "d": True}, {"b": 2, "e": "n"}, {"f": ("p",)}]
    orders = []
    for fast in (True, False):
        span, exp = _span()
        for attrs in sets:
            if fast:
                spanattrs.set_clean_attributes(span, attrs)
            else:
                span.set_attributes(attrs)
        span.end()
        orders.append(list(exp.get_finished_spans()[0].attributes.items()))
    assert orders[0] == orders[1] == [("a", "x"), ("c", 1.5), ("d", True), ("b", 2), ("e", "n"), ("f", ("p",))]


class _Str(str):
    pass


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=3), st.one_of(
    st.text(max_size=3), st.booleans(), st.integers(), st.floats(allow_nan=True), st.none(), st.binary(max_size=2),
    st.lists(st.text(max_size=2), max_size=2), st.tuples(), st.tuples(st.text(max_size=2)),
    st.tuples(st.text(max_size=2), st.integers()), st.builds(_Str, st.text(max_size=2)),
    st.builds(lambda s: (_Str(s),), st.text(max_size=2)), st.just(object())), max_size=6))
def test_compiled_clean_answers_the_python_test(attrs):
    from inferops.instrumentation.providers._chunkscan import clean_values

    assert spanattrs._clean_values is clean_values  # the compiled test is the one in use
    assert clean_values(attrs) is spanattrs._clean_py(attrs)
