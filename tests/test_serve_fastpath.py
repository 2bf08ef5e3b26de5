"""`inferops serve`'s compiled fast path gives exactly what the Python path gives.

The Python path (``Enricher.process`` on the decoded request) is the reference:
for the same batches, the fast path's output decoded with protobuf must equal
the Python path's output span by span (attributes as ordered lists), the batch
counters must match, and the metrics read from an OpenMetrics reader (values
and exemplar trace/span ids) must be equal after every batch. Garbage and
truncated protobuf must raise ValueError (the service then lets the Python path
answer 400), never crash the interpreter.
"""

from __future__ import annotations

import os
import random
import re
import zlib
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.metrics import MeterProvider

from inferops.processors.engine import CostEngine
from inferops.processors.exposition import OpenMetricsReader
from inferops.processors.recorder import CostRecorder
from inferops.processors.serve import fastpath
from inferops.processors.serve.enrich import Enricher
from inferops.processors.serve.extract import AttributionResolver
from inferops.processors.serve.fastpath import FastPath
from inferops.processors.serve.otlp import PROTOBUF, RequestError, decode_request
from inferops.processors.serve.server import Service, _drop_invalid_spans
from inferops.processors.serve.testing import OtlpReceiver, ServeProcess, get, make_request, make_span, post
from inferops.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from processor import COMMON, SHAPES, batch as bench_batch  # noqa: E402

OPENMETRICS = "application/openmetrics-text"

OVERRIDES = """\
models:
  - provider: vllm
    model: house-llama
    prices: {input: 0.05, output: 0.10, cache_read: 0.01}
    tiers: [{above: 1000, prices: {input: 0.5, output: 1.0}}]
  - provider: openai
    model: gpt-4.1
    effective_from: 2020-06-01
    prices: {input: 1.0, output: 3.0}
discounts:
  - provider: anthropic
    percent: 10
  - provider: openai
    model: gpt-4o
    percent: 25
  - provider: openai
    model: gpt-4o-mini
    percent: 40
    effective_from: 2021-01-01
"""


# -- the two paths side by side ---------------------------------------------------------------


class Pair:
    """The Python path and the fast path, each with its own engine, recorder and OpenMetrics reader."""

    def __init__(self, settings):
        self.py_reader, self.py = self._enricher(settings)
        self.fast_reader, enricher = self._enricher(settings)
        self.fast = FastPath(enricher)
        #: Requests the fast path declined (the Python path then ran, as in the service).
        self.declined = 0

    @staticmethod
    def _enricher(settings):
        reader = OpenMetricsReader()
        meter = MeterProvider(metric_readers=[reader]).get_meter("test")
        recorder = CostRecorder(meter, label_value_cap=settings.label_value_cap, user_label=settings.user_label,
                                semconv_histograms=False)
        return reader, Enricher(CostEngine.from_settings(settings), recorder,
                                AttributionResolver(settings.baggage_keys, settings.resource_keys,
                                                    settings.required_tags),
                                reprice=settings.serve_reprice)

    def check(self, body: bytes) -> tuple[ExportTraceServiceRequest, object]:
        """Run both paths on ``body`` (accepted: commit both) and assert they agree; (output, fast result)."""
        req = decode_request(body, PROTOBUF)
        rejected = _drop_invalid_spans(req)
        ref = self.py.process(req)
        try:
            got = self.fast.process(body)
        except ValueError:  # declined: the service runs the Python path (on the fast side's own enricher)
            self.declined += 1
            got = None
            fallback = decode_request(body, PROTOBUF)
            _drop_invalid_spans(fallback)
            fallback_result = self.fast.enricher.process(fallback)
            out = fallback
        else:
            out = ExportTraceServiceRequest.FromString(got.data)
            assert (got.spans, got.genai_spans, got.rejected) == (ref.spans, ref.genai_spans, rejected)
            assert dict(got.priced) == dict(ref.priced)
        assert_same_request(out, req)
        # The SDK's exemplar reservoir picks at random among several offers to one series within a
        # collection (record_calls makes several when its label memo is cleared mid-batch): same seed.
        random.seed(len(body))
        self.py.commit(ref)
        random.seed(len(body))
        if got is None:
            self.fast.enricher.commit(fallback_result)
        else:
            self.fast.commit(got)
        assert metrics(self.fast_reader) == metrics(self.py_reader)
        return out, got


def assert_same_request(got: ExportTraceServiceRequest, want: ExportTraceServiceRequest) -> None:
    spans_got = [s for rs in got.resource_spans for ss in rs.scope_spans for s in ss.spans]
    spans_want = [s for rs in want.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans_got) == len(spans_want)
    for i, (a, b) in enumerate(zip(spans_got, spans_want)):
        assert [(kv.key, kv.value) for kv in a.attributes] == [(kv.key, kv.value) for kv in b.attributes], i
        assert a == b, i
    assert got == want


_EXEMPLAR_TS = re.compile(r"(# \{[^}]*\} \S+) \S+$")


def metrics(reader: OpenMetricsReader) -> list[str]:
    """The OpenMetrics exposition, sorted, exemplar timestamps dropped (values and ids kept)."""
    text = reader.render(OPENMETRICS)[0].decode()
    return sorted(_EXEMPLAR_TS.sub(r"\1", line) for line in text.splitlines())


# -- span generators ---------------------------------------------------------------------------

MODELS = [
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"), ("openai", "gpt-4o-mini", ""), ("openai", "gpt-4.1", ""),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"), ("Anthropic", "claude-3-5-haiku", ""),
    ("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", ""), ("vllm", "house-llama", ""),
    ("openai", "no-such-model-xyz", ""), ("mystery", "whatever-1", ""), ("gcp.gemini", "gemini-2.5-pro", ""),
]


def random_attrs(rng: random.Random) -> dict:
    provider, req_model, resp_model = rng.choice(MODELS)
    a: dict = {}
    spelling = rng.randrange(4)
    if spelling == 0:  # semconv 1.37+
        a["gen_ai.provider.name"] = provider
        a["gen_ai.operation.name"] = rng.choice(["chat", "text_completion", "embeddings", "generate_content"])
    elif spelling == 1:  # pre-1.37
        a["gen_ai.system"] = provider
    elif spelling == 2:  # OpenLLMetry
        a["gen_ai.system"] = provider
        a["llm.request.type"] = rng.choice(["chat", "completion", "embedding"])
        a["llm.usage.total_tokens"] = rng.randint(1, 9000)
        a["llm.is_streaming"] = rng.choice([True, False, "true"])
        if rng.random() < 0.2:
            a["gen_ai.openai.api_base"] = "https://acme.openai.azure.com/"
    else:  # OpenLIT-style
        a["gen_ai.system"] = provider
        a["gen_ai.usage.cost"] = rng.choice([0.001, 0.0, 3, -1.0, float("nan"), "0.5", 1e-4])
    a["gen_ai.request.model"] = req_model
    if resp_model:
        a["gen_ai.response.model"] = resp_model
    inp = rng.choice([0, 12, 900, 4000, 150_000, 250_000])
    out = rng.choice([0, 5, 300, 2000])
    old = rng.random() < 0.4
    if rng.random() < 0.95:
        a["gen_ai.usage.prompt_tokens" if old else "gen_ai.usage.input_tokens"] = inp
    if rng.random() < 0.9:
        a["gen_ai.usage.completion_tokens" if old else "gen_ai.usage.output_tokens"] = out
    r = rng.random()
    if r < 0.15:
        a["gen_ai.usage.cache_read.input_tokens"] = rng.choice([100, 5000])
    elif r < 0.25:
        a["gen_ai.usage.cache_read_input_tokens"] = rng.choice([100, 5000])
        a["gen_ai.usage.cache_creation_input_tokens"] = rng.choice([0, 64])
    if rng.random() < 0.15:
        a["gen_ai.usage.reasoning.output_tokens"] = rng.choice([10, 5000])
    if rng.random() < 0.1:
        a["gen_ai.usage.reasoning_tokens"] = 7.9
    if rng.random() < 0.1:
        a["gen_ai.response.service_tier"] = rng.choice(["batch", "priority", "flex", "default"])
    if rng.random() < 0.1:
        a["error.type"] = "timeout"
    if rng.random() < 0.3:
        a["inferops.team"] = rng.choice(["search", "ads", ""])
    if rng.random() < 0.2:
        a["inferops.user"] = f"user-{rng.randrange(5)}"
    if rng.random() < 0.08:  # priced in process, metrics maybe recorded there too
        a["inferops.cost.status"] = "priced"
        a["inferops.cost.total_usd"] = 0.002
        a["inferops.cost.input_usd"] = 0.0015
        a["inferops.cost.output_usd"] = 0.0005
    if rng.random() < 0.08:
        a["inferops.metrics_recorded"] = rng.choice([True, "true", False])
    if rng.random() < 0.05:  # strings and floats where numbers are expected
        a["gen_ai.usage.input_tokens"] = rng.choice(["1200", " 33 ", "12.5", "junk", 17.0, True])
    if rng.random() < 0.5:
        a.update(COMMON)
    return a


def random_span(rng: random.Random) -> Span:
    attrs = random_attrs(rng) if rng.random() < 0.85 else {"http.method": "GET", "db.system": "postgres"}
    kw = {}
    r = rng.random()
    if r < 0.03:
        kw["trace_id"] = b"\x01\x02"
    elif r < 0.05:
        kw["span_id"] = bytes(8)
    span = make_span(attrs, **kw)
    if r > 0.05 and r < 0.06:  # no trace id at all
        span.ClearField("trace_id")
    if rng.random() < 0.15:
        span.status.code = Status.STATUS_CODE_ERROR
    if rng.random() < 0.1:
        span.status.message = "boom"
    if rng.random() < 0.1:  # an unknown field (newer proto version): kept, and skipped by the scanner
        span.MergeFromString(b"\xa0\x3e\x07" + b"\xaa\x3e\x03abc")
    if rng.random() < 0.1:
        ev = span.events.add()
        ev.name = "gen_ai.content.prompt"
        ev.attributes.add(key="k").value.string_value = "v"
    return span


def random_request(rng: random.Random, n: int = 40) -> bytes:
    req = ExportTraceServiceRequest()
    for _ in range(rng.randint(1, 3)):
        rs = req.resource_spans.add()
        if rng.random() < 0.8:
            res = {"service.name": rng.choice(["checkout", "search"])}
            if rng.random() < 0.3:
                res["telemetry.sdk.name"] = "openlit"
            if rng.random() < 0.5:
                res["team"] = "payments"
                res["deployment.environment.name"] = "prod"
            for k, v in res.items():
                rs.resource.attributes.add(key=k).value.string_value = v
        for _ in range(rng.randint(0, 2)):
            ss = rs.scope_spans.add()
            if rng.random() < 0.8:
                ss.scope.name = rng.choice(["openlit.otel.tracing", "OpenLIT", "opentelemetry.instrumentation.openai",
                                            "test"])
            for _ in range(rng.randint(0, n)):
                ss.spans.append(random_span(rng))
    return req.SerializeToString()


# -- tests ---------------------------------------------------------------------------------


def test_extension_is_built_and_used():
    """CI installs with `pip install -e .`: the compiled scanner must be there, and the service must use it."""
    from inferops.processors.serve import _otlpscan  # noqa: F401  (fails the test if it was not built)
    assert fastpath.available()
    service = Service(load_settings({}), host="127.0.0.1", port=0)
    try:
        assert service.fast is not None and service.fast_path_off_reason is None
    finally:
        service.httpd.server_close()
    off = Service(load_settings({"INFEROPS_SERVE_FAST_PATH": "false"}), host="127.0.0.1", port=0)
    try:
        assert off.fast is None and off.fast_path_off_reason == "serve_fast_path is off"
    finally:
        off.httpd.server_close()
    semconv = Service(load_settings({"INFEROPS_SERVE_SEMCONV_METRICS": "true"}), host="127.0.0.1", port=0)
    try:
        assert semconv.fast is None and "semconv" in semconv.fast_path_off_reason
    finally:
        semconv.httpd.server_close()


def test_bench_batches_are_identical():
    pair = Pair(load_settings({}))
    rng = random.Random(3)
    for _ in range(4):
        out, got = pair.check(bench_batch(rng, 256))
        assert got is not None and got.samples.count == 256  # every span priced and counted in C
    # the plans were built once per shape and reused
    assert 0 < pair.fast.scanner.plans <= 4 * len(SHAPES)


@pytest.mark.parametrize("env", [
    {},
    {"INFEROPS_SERVE_REPRICE": "true"},
    {"INFEROPS_REQUIRED_TAGS": "team,feature", "INFEROPS_USER_LABEL": "true",
     "INFEROPS_BAGGAGE_KEYS": "team=app.team,feature=app.feature"},
    {"INFEROPS_LABEL_VALUE_CAP": "2"},  # label guard overflows
    "overrides",
], ids=["defaults", "reprice", "attribution", "overflow", "overrides"])
def test_generated_batches_are_identical(env, tmp_path):
    if env == "overrides":
        path = tmp_path / "prices.yaml"
        path.write_text(OVERRIDES)
        env = {"INFEROPS_PRICES_FILE": str(path)}
    pair = Pair(load_settings(env))
    rng = random.Random(zlib.crc32(repr(sorted(env.items())).encode()))
    for _ in range(12):
        pair.check(random_request(rng))
    assert pair.declined == 0  # these mixes are all handled by the fast path (some spans per span in Python)


def test_priced_existing_cost_and_long_context_cases_take_the_compiled_path():
    """The common special cases are computed in C (no per-span Python): existing cost, long context, cache."""
    pair = Pair(load_settings({}))
    spans = [
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.cost": 0.0003,
         "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100},
        {"gen_ai.provider.name": "aws.bedrock", "gen_ai.request.model": "anthropic.claude-sonnet-4-5-20250929-v1:0",
         "gen_ai.usage.input_tokens": 250_000, "gen_ai.usage.output_tokens": 100},
        {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
         "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 500,
         "gen_ai.usage.cache_creation.input_tokens": 20, "gen_ai.usage.output_tokens": 50,
         "gen_ai.usage.reasoning.output_tokens": 80},
        {"gen_ai.provider.name": "openai", "gen_ai.request.model": "no-such-model-xyz",
         "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5, "gen_ai.usage.cost": 0.5},
    ]
    calls = []
    pair.fast.__dict__["_slow"] = lambda *a: calls.append(a)  # the instance's callback is bound already
    body = make_request(spans, resource={"service.name": "s", "telemetry.sdk.name": "openlit"}).SerializeToString()
    out, got = pair.check(body)
    assert calls == [] and got is not None and got.samples.count == 4
    attrs = [{kv.key: kv.value for kv in s.attributes} for s in out.resource_spans[0].scope_spans[0].spans]
    assert attrs[0]["inferops.cost.source"].string_value == "span"
    assert attrs[1]["inferops.cost.status"].string_value == "priced"


def test_slow_shapes_go_through_python_per_span(tmp_path):
    """Dated prices and spans priced in process are handed to the Python code, with the same results."""
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDES)
    pair = Pair(load_settings({"INFEROPS_PRICES_FILE": str(path)}))
    seen = []
    slow = pair.fast._slow
    pair.fast.scanner = type(pair.fast.scanner)(
        {k.encode(): c for k, c in _codes(pair.fast).items()}, pair.fast._resource, pair.fast._plan,
        lambda plan, raw: seen.append(raw) or slow(plan, raw), pair.fast.enricher.reprice,
        *_prefixes())
    spans = [
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4.1",  # dated override
         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",  # dated discount
         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "inferops.cost.status": "priced",
         "inferops.cost.total_usd": 0.01, "gen_ai.usage.input_tokens": 100},  # priced in process
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",  # a string token count
         "gen_ai.usage.input_tokens": "100", "gen_ai.usage.output_tokens": 10},
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",  # constant discount: compiled
         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
    ]
    pair.check(make_request(spans).SerializeToString())
    assert len(seen) == 4 and pair.declined == 0


def _codes(fp: FastPath) -> dict[str, int]:
    from inferops.processors.serve.extract import VARYING, WANTED
    out = {}
    for k in WANTED | fp.enricher.attribution.span_keys:
        code = fastpath._TOKEN_CODES.get(k)
        out[k] = code if code is not None else (fastpath._IGNORE if k in VARYING else fastpath._SHAPE)
    return out


def _prefixes():
    from inferops.names import CostType
    from inferops.processors.serve import enrich
    return (enrich._METRICS_RECORDED_KV, enrich._USAGE_COST_KV, enrich._COST_TOTAL_KV,
            tuple(enrich._COST_COMPONENT_KV[c] for c in CostType.ALL))


_VALUES = st.one_of(st.integers(-5, 300_000), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.booleans(), st.sampled_from(["12", "x", "", "openai", "chat", "batch", "true"]))
_KEYS = st.sampled_from([
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "gen_ai.usage.cost",
    "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.operation.name", "gen_ai.request.service_tier", "inferops.metrics_recorded", "inferops.cost.status",
    "inferops.team", "llm.is_streaming", "error.type", "unrelated.key",
])
_MODEL_ATTRS = st.sampled_from([{"gen_ai.system": p, "gen_ai.request.model": m} for p, m, _ in MODELS])


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(st.tuples(_MODEL_ATTRS, st.lists(st.tuples(_KEYS, _VALUES), max_size=8),
                                st.booleans()), min_size=1, max_size=12))
def test_hypothesis_attribute_mixes_are_identical(spans):
    pair = _HYPO_PAIR
    built = []
    for base, extra, error in spans:
        span = make_span(base)
        for k, v in extra:  # duplicates allowed: the last one wins, as in the Python path
            kv = span.attributes.add(key=k)
            if isinstance(v, bool):
                kv.value.bool_value = v
            elif isinstance(v, int):
                kv.value.int_value = v
            elif isinstance(v, float):
                kv.value.double_value = v
            else:
                kv.value.string_value = v
        if error:
            span.status.code = Status.STATUS_CODE_ERROR
        built.append(span)
    pair.check(make_request(built).SerializeToString())


_HYPO_PAIR = Pair(load_settings({}))


def _valid_batch() -> bytes:
    return random_request(random.Random(11), 10)


def _must_not_disagree(fp: FastPath, body: bytes) -> None:
    """Either the fast path declines (ValueError) or protobuf accepts the body too."""
    try:
        got = fp.process(body)
    except ValueError:
        return
    decode_request(body, PROTOBUF)  # a RequestError here would mean the fast path accepted garbage
    ExportTraceServiceRequest.FromString(got.data)


_FUZZ = FastPath(Pair._enricher(load_settings({}))[1])


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(body):
    _must_not_disagree(_FUZZ, body)


@hsettings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_truncated_and_corrupted_batches_never_crash(cut, flip, bit):
    body = _valid_batch()
    _must_not_disagree(_FUZZ, body[: cut % (len(body) + 1)])
    mutated = bytearray(body)
    mutated[flip % len(body)] ^= 1 << bit
    _must_not_disagree(_FUZZ, bytes(mutated))


def test_malformed_input_is_refused_as_before():
    """The fast path raises ValueError; the service's answer is the Python path's 400, word for word."""
    bad = b"\x0a\xff\xff\xff\x0f\x0a\x03abc"
    with pytest.raises(ValueError):
        _FUZZ.process(bad)
    service = Service(load_settings({}), host="127.0.0.1", port=0)
    try:
        with pytest.raises(RequestError) as info:
            service.export(bad, PROTOBUF)
        assert info.value.status == 400 and "not a valid protobuf" in str(info.value)
        # invalid UTF-8 in a span name: protobuf refuses it, so the fast path must not accept it
        span = make_span({"gen_ai.system": "openai"}).SerializeToString().replace(b"chat", b"ch\xff\xfe")
        body = b"\x0a" + bytes([len(span) + 4]) + b"\x12" + bytes([len(span) + 2]) + b"\x12" + bytes([len(span)]) + span
        with pytest.raises(ValueError):
            _FUZZ.process(body)
        with pytest.raises(RequestError):
            service.export(body, PROTOBUF)
    finally:
        service.httpd.server_close()


def _service_run(env: dict, bodies: list[bytes]) -> tuple[dict, list[str], list[tuple]]:
    receiver = OtlpReceiver()
    service = Service(load_settings(env), host="127.0.0.1", port=0, downstream=receiver.url)
    service.start()
    try:
        answers = [service.export(b, PROTOBUF)[:2] for b in bodies]
        assert service.stop(10) == 0
        text = service.reader.render(OPENMETRICS)[0].decode()
        lines = sorted(_EXEMPLAR_TS.sub(r"\1", line) for line in text.splitlines()
                       if line.startswith("inferops_") and "forward" not in line and "queue" not in line)
        return {sid: repr(attrs) for sid, attrs in receiver.attrs.items()}, lines, answers  # repr: NaN == NaN
    finally:
        receiver.stop()


def test_service_fast_and_python_paths_agree():
    """Service.export end to end (queue, forwarder, inferops_serve_* counters) with the fast path on and off."""
    rng = random.Random(5)
    bodies = [random_request(rng, 20) for _ in range(4)] + [bench_batch(rng, 64)]
    fast = _service_run({}, bodies)
    slow = _service_run({"INFEROPS_SERVE_FAST_PATH": "false"}, bodies)
    assert fast[2] == slow[2]
    assert fast[0] == slow[0] and len(fast[0]) > 50
    assert fast[1] == slow[1]
    assert any(line.startswith("inferops_cost_usd_total{") for line in fast[1])


def test_real_process_logs_the_compiled_path():
    receiver = OtlpReceiver()
    proc = ServeProcess(downstream=receiver.url)
    try:
        listening = next(r for r in proc.logs() if r.get("msg") == "listening")
        assert listening["path"] == "compiled", listening
        status, _, _ = post(proc.traces_url, bench_batch(random.Random(1), 32))
        assert status == 200
        status, text = get(proc.base + "/metrics", {"Accept": OPENMETRICS})
        assert status == 200 and b"inferops_cost_usd_total{" in text
    finally:
        proc.close()
        receiver.stop()
