"""What happens around one outgoing LLM call: span, attribution, body rewrite, pricing, metrics.

:class:`Runtime` is built once by ``InferopsInstrumentor.instrument()``;
``patch.py`` calls :meth:`Runtime.begin` before a request leaves and the
returned :class:`Call` afterwards. Fail-safe rules, enforced here:

* nothing in this module raises into the app, except
  :class:`inferops.errors.BudgetExceededError` from budget enforcement;
* the bytes the caller receives are the provider's bytes (the one intended
  exception: the usage-only chunk inferops itself asked for is removed);
* no header, URL query or (unless ``capture_content``) body text is ever put
  on a span, a metric or a log line.

Metrics are recorded off the request path: :class:`MetricsBatcher` buffers one
:class:`~inferops.processors.recorder.CallSample` per call and hands batches to
``CostRecorder.record_calls`` (same totals, one SDK measurement per series
instead of 8-12 per call); see its docstring for when a batch is flushed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from inferops.errors import BudgetExceededError
from inferops.names import ATTRIBUTION_ATTRS, Attr, CostType, GenAI, Outcome, UsageSource
from inferops.processors.recorder import Attribution, CallSample
from inferops.processors.usage import UsageRecord

from .attribution import header_value, pop_inferops_headers, set_ascii_headers
from .estimate import request_text
from .providers.base import Endpoint, ParsedResponse, RequestInfo
from .spanattrs import sampler_ignores_attributes, set_clean_attributes
from .streams import make_decoder

_log = logging.getLogger("inferops.instrumentation")

#: Largest non-SSE body kept for parsing when the caller streams it (bytes).
MAX_BUFFER = 16 * 1024 * 1024
#: Largest text put on a span when content capture is on (characters).
MAX_CONTENT = 64 * 1024

_warned: set[str] = set()
_warn_lock = threading.Lock()


def warn_once(site: str, exc: BaseException | None = None) -> None:
    """Log an internal failure once per site (with traceback), debug afterwards."""
    with _warn_lock:
        first = site not in _warned
        _warned.add(site)
    if first:
        _log.warning("inferops: %s failed; the call passed unchanged (logged once)", site,
                     exc_info=exc is not None)
    else:
        _log.debug("inferops: %s failed again", site)


#: A full buffer is flushed synchronously by the call that filled it (bounds memory and delay).
MAX_BATCH = 1000


class MetricsBatcher:
    """Buffers finished calls and records them with ``CostRecorder.record_calls``, off the request path.

    The OpenTelemetry SDK costs 12-18 us per measurement (attribute cleaning,
    hashing, exemplar offer) and a call makes 8-12 of them; summed per series
    over a batch, most of that work disappears. Flushed

    * every ``interval_s`` by a daemon thread (what third-party readers see:
      their collections lag the calls by at most that much);
    * before every collection of an inferops :class:`~inferops.processors.exposition.OpenMetricsReader`
      (pre-collect hook), so a scrape or a test always sees every finished call;
    * when the buffer reaches ``max_samples`` (synchronously, by that call);
    * by :meth:`close`: on ``uninstrument()`` and at interpreter exit.

    Exemplars: per series and batch, the call that contributed most, with its
    own trace/span id (see ``record_calls``). Never raises into the app.
    """

    def __init__(self, recorder, interval_s: float, max_samples: int = MAX_BATCH):
        self.recorder = recorder
        self.interval_s = interval_s
        self.max_samples = max(1, max_samples)
        self._buf: list[CallSample] = []
        self._lock = threading.Lock()        # guards the buffer swap (held for nanoseconds)
        self._flush_lock = threading.Lock()  # one batch at a time: a collect waits for one in flight
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_thread()
        from inferops.processors.exposition import add_pre_collect_hook

        add_pre_collect_hook(self.flush)
        atexit.register(self.close)  # registered after the MeterProvider's own atexit: runs before it
        ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def _start_thread(self) -> None:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="inferops-metrics-flush", daemon=True)
            self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have held them), a new timer thread."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        if not self._closed:
            self._start_thread()

    def add(self, sample: CallSample) -> None:
        with self._lock:
            buf = self._buf
            buf.append(sample)
            full = len(buf) >= self.max_samples or self._closed  # closed: a late stream, record it now
        if full:
            self.flush()

    def pending(self) -> int:
        """Calls buffered and not yet recorded."""
        return len(self._buf)

    def flush(self) -> int:
        """Record every buffered call now; returns how many. Never raises."""
        with self._flush_lock:
            with self._lock:
                batch, self._buf = self._buf, []
            if batch:
                try:
                    self.recorder.record_calls(batch)
                except Exception as exc:
                    warn_once("batched metric recording", exc)
            return len(batch)

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        """Stop the timer, unregister the hooks, record what is left. Idempotent."""
        if not self._closed:
            self._closed = True
            self._stop.set()
            try:
                from inferops.processors.exposition import remove_pre_collect_hook

                remove_pre_collect_hook(self.flush)
                atexit.unregister(self.close)
            except Exception:
                pass
        self.flush()


def _after_fork(ref) -> None:
    batcher = ref()
    if batcher is not None:
        batcher._after_fork()


class Runtime:
    """Everything instrument() prepared; shared by all patched clients."""

    def __init__(self, settings, tracer, recorder, engine, router, resolver, estimator,
                 enforcer=None, budget_counter=None, routing=None, routing_metrics=None):
        self.settings = settings
        self.tracer = tracer
        self.recorder = recorder
        self.engine = engine
        self.router = router
        self.resolver = resolver
        self.estimator = estimator
        self.enforcer = enforcer
        self.budget_counter = budget_counter
        #: inferops.processors.routing.RoutingPolicy (None: routing off) and its counters.
        self.routing = routing
        self.routing_metrics = routing_metrics
        self.capture = bool(settings.capture_content)
        #: The tracer's sampler never reads span attributes (see spanattrs.sampler_ignores_attributes).
        self.sampler_blind = sampler_ignores_attributes(tracer)
        self.strip_baggage = bool(settings.strip_baggage)
        self.inject_off_hosts = {h.lower() for h in settings.stream_usage_injection_disabled_hosts}
        self.inject_on = bool(settings.stream_usage_injection)
        self.internal_errors = 0
        self._sem_memo: dict[tuple, dict[str, Any]] = {}
        interval = float(getattr(settings, "metrics_batch_interval_seconds", 0.0) or 0.0)
        #: None: each call is recorded on its own path with ``record_call`` (setting = 0).
        self.batcher: MetricsBatcher | None = MetricsBatcher(recorder, interval) if interval > 0 else None

    def semconv_attributes(self, operation: str, provider: str, request_model: str, response_model: str,
                           server: str) -> dict[str, Any]:
        """The semconv histogram attributes of a call: one shared dict per distinct set (never mutated; the
        recorder copies what it extends), so a metrics batch meets each set once, not once per call."""
        key = (operation, provider, request_model, response_model, server)
        sem = self._sem_memo.get(key)
        if sem is None:
            sem = {GenAI.OPERATION_NAME: operation, GenAI.PROVIDER_NAME: provider}
            if request_model:
                sem[GenAI.REQUEST_MODEL] = request_model
            if response_model:
                sem[GenAI.RESPONSE_MODEL] = response_model
            if server:
                sem[GenAI.SERVER_ADDRESS] = server
            if len(self._sem_memo) >= 4096:
                self._sem_memo.clear()
            self._sem_memo[key] = sem
        return sem

    def flush_metrics(self) -> int:
        """Record the calls whose metrics are still buffered; returns how many (0 when not batching)."""
        return self.batcher.flush() if self.batcher is not None else 0

    def close(self) -> None:
        """On uninstrument(): stop the flush thread and record what is buffered. Never raises."""
        try:
            if self.batcher is not None:
                self.batcher.close()
        except Exception as exc:
            warn_once("closing the metrics batcher", exc)

    def count_internal(self, site: str, exc: BaseException | None, provider: str = "") -> None:
        self.internal_errors += 1
        warn_once(site, exc)
        try:
            self.recorder.record_parse_error(provider or "unknown", site)
        except Exception:
            pass

    # -- before the request leaves -------------------------------------------------------

    def begin(self, request, hooks, adapter=None) -> "Call | None":
        """Prepare the call; ``None`` for anything that is not a priced LLM operation.

        ``adapter``: the router's answer for this URL when the caller already asked it (aiohttp's hook
        routes before it builds the request view). Raises only :class:`BudgetExceededError`.
        """
        try:
            url = request.url
            where, query = _url_parts(url, hooks.parse_result)
            if adapter is None:
                adapter = self.router.route(*where)
        except Exception as exc:
            self.count_internal("router", exc)
            return None
        if adapter is None:
            return None
        try:
            return self._begin(request, url, where, query, adapter, hooks)
        except BudgetExceededError:
            raise
        except Exception as exc:
            self.count_internal("request", exc, getattr(adapter, "provider", ""))
            return None

    def _begin(self, request, url, where: tuple, query: str | None, adapter, hooks) -> "Call | None":
        headers = request.headers
        tagged = pop_inferops_headers(headers, self.strip_baggage)
        body = getattr(request, "_content", None)
        if not isinstance(body, bytes):
            body = b""  # streaming upload: not parsed (never consumed here)
        if query is None:
            query = url.query
            query = query.decode("ascii", "replace") if isinstance(query, bytes) else str(query)
        endpoint = Endpoint(*where, query)
        try:
            info = adapter.parse_request(request.method, endpoint, headers, body)
        except Exception as exc:
            self.count_internal("adapter.parse_request", exc, getattr(adapter, "provider", ""))
            return None
        if info is None:
            return None
        if info.injected_stream_usage and not self._may_inject(endpoint):
            info.injected_stream_usage = False
            info.new_body = None
        parent = otel_context.get_current()
        if self.enforcer is None and self.routing is None:
            # Nothing decides on the attribution before the request leaves: resolved when first read
            # (Call.who), off the path to the first chunk, from the same headers and context.
            call = Call(self, adapter, info, None, request, hooks, parent, tagged)
        else:
            call = Call(self, adapter, info, self.resolver.resolve(tagged, info.user, parent), request, hooks,
                        parent)
        try:
            decision = self._enforce(call)
            new_body = info.new_body
            if decision is not None:
                downgraded = self._downgrade(call, decision, new_body if new_body is not None else body)
                if downgraded is not None:
                    new_body = downgraded
            elif self.routing is not None:  # a budget downgrade wins over routing
                routed = self._route(call, tagged.get("task", ""), new_body if new_body is not None else body)
                if routed is not None:
                    new_body = routed
            writes = []
            if new_body is not None and new_body != body:
                request._content = new_body
                request.stream = hooks.byte_stream(new_body)
                writes.append((b"Content-Length", b"content-length", b"%d" % len(new_body)))
            if info.injected_stream_usage:  # the usage chunk is filtered from the raw stream: no compression
                writes.append(_IDENTITY_ENCODING)
            if writes:
                set_ascii_headers(headers, writes)
        except BudgetExceededError:
            raise
        except Exception:
            call.abort()
            raise
        return call

    def _may_inject(self, url: Endpoint) -> bool:
        if not self.inject_on:
            return False
        if self.inject_off_hosts:
            host = (url.host or "").lower()
            hp = f"{host}:{url.port}" if url.port else host
            if host in self.inject_off_hosts or hp in self.inject_off_hosts:
                return False
        return True

    # -- budget enforcement ----------------------------------------------------------------

    def _enforce(self, call: "Call"):
        """Ask the enforcer; fail open. Returns a downgrade decision, raises for block/throttle."""
        if self.enforcer is None:
            return None
        info = call.info
        try:
            decision = self.enforcer.decide(call.who, info.provider, info.request_model)
            action = getattr(decision, "action", "allow")
        except Exception as exc:
            self.count_internal("enforcement", exc, info.provider)
            return None
        if action == "allow" or not action:
            return None
        budget = str(getattr(decision, "budget", "") or "")
        self._count_budget(call.who, budget, action)
        call.span.set_attribute(Attr.BUDGET_ACTION, action)
        if budget:
            call.span.set_attribute(Attr.BUDGET_NAME, budget)
        if action in ("block", "throttle"):
            err = BudgetExceededError(budget, action, provider=info.provider, model=info.request_model,
                                      who=call.who.team or call.who.project or "")
            call.blocked(type(err).__name__)
            raise err
        if action == "downgrade" and getattr(decision, "model", ""):
            return decision
        return None

    # -- model routing (processors/routing.py) ---------------------------------------------

    def _route(self, call: "Call", task: str, body: bytes) -> bytes | None:
        """Apply the routing policy: the new body when a rule rewrites the model, else None. Never raises."""
        from inferops.processors.routing import estimate_input_tokens, rewrite_body

        info = call.info
        try:
            parsed = info.parsed_body()
            tokens = estimate_input_tokens(parsed) if parsed is not None else len(body) // 4
            decision = self.routing.decide(call.who, info.provider, info.operation, info.request_model,
                                           tokens, task)
        except Exception as exc:
            self.count_internal("routing", exc, info.provider)
            return None
        if decision is None:
            return None
        call.route = decision
        span = call.span
        span.set_attribute(Attr.ROUTING_RULE, decision.rule)
        if decision.dry_run:
            span.set_attribute(Attr.ROUTING_DRY_RUN, True)
            span.set_attribute(Attr.ROUTING_TARGET_MODEL, decision.target_model)
            return None
        new_body = rewrite_body(body, decision.target_model)
        if new_body is None:
            warn_once("routing (model not in a JSON body; call sent unchanged)")
            call.route = None
            return None
        call.requested_model = info.request_model
        span.set_attribute(Attr.REQUESTED_MODEL, info.request_model)
        span.set_attribute(GenAI.REQUEST_MODEL, decision.target_model)
        span.update_name(f"{info.operation} {decision.target_model}")
        info.request_model = decision.target_model
        return new_body

    def _count_budget(self, who: Attribution, budget: str, action: str) -> None:
        if self.budget_counter is None:
            return
        try:
            from inferops.names import ATTRIBUTION_LABELS, UNATTRIBUTED, Label

            g = self.recorder.guard
            labels = {Label.BUDGET: g(Label.BUDGET, budget or "unknown"), Label.ACTION: action}
            for name in ATTRIBUTION_LABELS:
                labels[name] = g(name, getattr(who, name) or UNATTRIBUTED)
            self.budget_counter.add(1, labels)
        except Exception as exc:
            warn_once("budget counter", exc)

    def _downgrade(self, call: "Call", decision, body: bytes) -> bytes | None:
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or "model" not in obj:
            warn_once("budget downgrade (model not in a JSON body; call allowed unchanged)")
            return None
        requested = str(obj.get("model"))
        obj["model"] = decision.model
        call.requested_model = requested
        call.info.request_model = decision.model
        call.span.set_attribute(Attr.REQUESTED_MODEL, requested)
        call.span.set_attribute(GenAI.REQUEST_MODEL, decision.model)
        call.span.update_name(f"{call.info.operation} {decision.model}")
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: id(Attribution) -> (that Attribution, its span attributes). Attributions are frozen and shared per
#: distinct value set (attribution.Resolver), so a call's are looked up, not rebuilt; the entry keeps its
#: Attribution alive, so an id is never reused while its entry is here.
_WHO_ATTRS: dict[int, tuple[Any, dict[str, Any]]] = {}


def _attribution_attrs(who) -> dict[str, Any]:
    """The span attributes of an :class:`Attribution` (attribution values and the unattributed flag)."""
    hit = _WHO_ATTRS.get(id(who))
    if hit is not None and hit[0] is who:
        return hit[1]
    attrs: dict[str, Any] = {}
    for label, attr in ATTRIBUTION_ATTRS.items():
        value = getattr(who, label, "")
        if value:
            attrs[attr] = value
    if who.unattributed:
        attrs[Attr.UNATTRIBUTED] = True
    if len(_WHO_ATTRS) >= 4096:
        _WHO_ATTRS.clear()
    _WHO_ATTRS[id(who)] = (who, attrs)
    return attrs


#: Serialises the start of calls' spans (see :meth:`Call._open_span`): taken once per call. Reentrant, so
#: a span processor that reads the current span while the SDK starts it meets the guard, not a deadlock.
_OPEN_LOCK = threading.RLock()
#: ``Call._parent`` while the SDK starts the call's span.
_OPENING = object()
#: ``Call._parser`` of a stream whose parser is made when its first chunk is parsed.
_LAZY = object()


def _url_parts(url, parse_result: type | None) -> tuple[tuple, str | None]:
    """``((url.scheme, url.host, url.port, url.path), query)`` of a request URL; the query as text, or None
    when the caller must read ``url.query``.

    httpx's URL properties each parse or decode again (the host's IDNA, the path's
    percent-escapes, the query's bytes); their answers are the parsed reference's
    fields whenever the host has no ``xn--`` label, the path no ``%`` and the query
    is ASCII, which is what is checked here (tests/test_url_parts.py holds this to
    the properties). Anything else, and other URL types, take the properties.
    """
    ref = getattr(url, "_uri_reference", None) if parse_result is not None else None
    if type(ref) is parse_result and ref is not None:
        host = ref.host
        path = ref.path or "/"
        query = ref.query or ""
        if "xn--" not in host and "%" not in path and query.isascii():
            return (ref.scheme, host, ref.port, path), query
    return (url.scheme, url.host, url.port, url.path), None


#: The ``Accept-Encoding`` a request with the injected usage option is sent with (raw header entry).
_IDENTITY_ENCODING = (b"Accept-Encoding", b"accept-encoding", b"identity")
#: ``inferops.cost.<cost_type>`` per cost type, built once instead of per call.
_COST_ATTRS = {ctype: f"{Attr.COST_PREFIX}{ctype}" for ctype in CostType.ALL}
_SAMPLED_FLAG = int(trace.TraceFlags.SAMPLED)


class _PendingSpan(trace.Span):
    """The current span while a call's request is sent, before the call's span was started.

    Starting an SDK span costs 20-40 us of a cold CPU, in front of the request
    and so of the first chunk, for a span that nothing may look at before the
    call is recorded. So :meth:`Call.enter` makes this stand-in current
    instead. Anything inside ``send`` that asks for it (the HTTP span of
    opentelemetry-instrumentation-httpx, which takes its parent from here; a
    log handler reading the trace id; a propagator) starts the real span at
    that moment, with the call's start time and parent, and every method and
    attribute is the real span's. If nothing asks, the span is started when
    the call is recorded, the same span with the same start time.
    """

    __slots__ = ("_call",)

    def __init__(self, call: "Call") -> None:
        self._call = call

    def _real(self):
        return self._call.span

    def get_span_context(self):
        return self._real().get_span_context()

    def is_recording(self) -> bool:
        return self._real().is_recording()

    def end(self, end_time=None) -> None:
        self._real().end(end_time)

    def set_attributes(self, attributes) -> None:
        self._real().set_attributes(attributes)

    def set_attribute(self, key, value) -> None:
        self._real().set_attribute(key, value)

    def add_event(self, name, attributes=None, timestamp=None) -> None:
        self._real().add_event(name, attributes, timestamp)

    def add_link(self, context, attributes=None) -> None:
        self._real().add_link(context, attributes)

    def update_name(self, name) -> None:
        self._real().update_name(name)

    def set_status(self, status, description=None) -> None:
        self._real().set_status(status, description)

    def record_exception(self, exception, attributes=None, timestamp=None, escaped=False) -> None:
        self._real().record_exception(exception, attributes, timestamp, escaped)

    def __getattr__(self, name: str):  # SDK-only members (name, attributes, parent, ...): the real span's
        return getattr(self._real(), name)

    def __repr__(self) -> str:
        return f"_PendingSpan({self._real()!r})"


def _context_keys() -> tuple[str, str] | None:
    """The context keys under which the OTel API keeps the current span and the baggage.

    :meth:`Call.enter` builds its context in one copy with them, where
    ``set_span_in_context`` and ``baggage.clear`` copy it twice. Used only if the
    one-copy context equals what the two API calls give (checked here, at import,
    on a context with a value of its own); else None and ``enter`` calls the API.
    """
    try:
        empty = otel_context.Context()
        [span_key] = list(trace.set_span_in_context(trace.INVALID_SPAN, empty))
        [(baggage_key, cleared)] = list(otel_baggage.clear(context=empty).items())
        base = otel_context.set_value("inferops.check", 1, empty)
        api = otel_baggage.clear(context=trace.set_span_in_context(trace.INVALID_SPAN, base))
        ours = otel_context.Context({**base, span_key: trace.INVALID_SPAN, baggage_key: {}})
        if cleared == {} and type(ours) is type(api) and ours == api:
            return span_key, baggage_key
    except Exception:
        pass
    return None


_CONTEXT_KEYS = _context_keys()


class Call:
    """One attempt: owns the GenAI span until the response (or stream) is finished."""

    __slots__ = ("rt", "adapter", "info", "_who", "_tagged", "_context", "_span", "_parent", "_start_ns", "start",
                 "requested_model",
                 "route", "_done", "_once", "_parser", "_decoder", "_filter", "_buffer", "_status", "_headers",
                 "_ttfc", "_first_chunk", "_hooks", "_server", "_port", "steady", "_refresh", "early", "_held",
                 "_held_at")

    def __init__(self, rt: Runtime, adapter, info: RequestInfo, who: Attribution | None, request, hooks,
                 parent=None, tagged: dict[str, str] | None = None):
        self.rt = rt
        self.adapter = adapter
        self.info = info
        #: The call's attribution, or None until :attr:`who` resolves it from ``_tagged`` (the request's
        #: X-Inferops-* headers) and ``_context`` (the caller's context, for its baggage).
        self._who = who
        self._tagged = tagged
        self.requested_model = ""
        self.route = None
        #: True once the call is being ended (recorded, blocked or aborted); set only by :meth:`_claim`.
        self._done = False
        #: Popped by the one caller of :meth:`_claim` that ends the call (list.pop is atomic: no lock per call).
        self._once = [True]
        self._parser = None
        self._decoder = None
        self._filter = False
        self._buffer: bytearray | None = None
        self._status = 0
        self._headers = None
        self._ttfc: float | None = None
        self._first_chunk: float | None = None
        #: Once the first content was timed: what the tee offers each chunk to first (the parser's compiled
        #: absorber or its ``absorb``; see :meth:`on_chunk`), else None.
        self.steady = None
        #: The parser's ``steady`` (see :meth:`on_chunk`), once known.
        self._refresh = None
        #: Until the first content was timed, the tee offers each chunk to :meth:`hold` first (see there).
        self.early = False
        self._held: bytes | None = None
        self._held_at = 0.0
        self._hooks = hooks
        self._server = info.server_address or request.url.host
        self._port = info.server_port if info.server_port is not None else request.url.port
        #: The span is started when something first asks for it (see :class:`_PendingSpan`), else when the
        #: call is recorded: with this start time and this parent either way.
        self._span = None
        self._parent = parent if parent is not None else otel_context.get_current()
        self._context = self._parent if who is None else None
        self._start_ns = time.time_ns()
        self.start = time.perf_counter()

    @property
    def who(self) -> Attribution:
        """Who spent the call (see :class:`~inferops.instrumentation.attribution.Resolver`), resolved on first
        read when :meth:`Runtime._begin` left it for later. A resolver failure is counted and the call gets
        the resolver's defaults (resource attributes only), so the call is still recorded."""
        who = self._who
        if who is None:
            resolver = self.rt.resolver
            try:
                who = resolver.resolve(self._tagged or {}, self.info.user, self._context)
            except Exception as exc:
                self.rt.count_internal("attribution", exc, self.info.provider)
                who = resolver.plain
            self._who = who  # (the inputs are kept: a second reader would resolve the same)
        return who

    @property
    def span(self):
        """The call's SDK span, started now if nothing asked for it before."""
        span = self._span
        if span is None:
            span = self._open_span()
        return span

    def _open_span(self):
        with _OPEN_LOCK:  # the caller's thread, a consumer's and the collector's may ask at once
            span = self._span
            if span is not None:
                return span
            parent = self._parent
            if parent is _OPENING:
                # Asked again while the SDK starts it (a span processor's on_start reading the current span):
                # that reader gets the invalid span, not an endless recursion.
                return trace.INVALID_SPAN
            self._parent = _OPENING
            info, rt = self.info, self.rt
            name = f"{info.operation} {info.request_model}" if info.request_model else info.operation
            # Samplers that may read attributes get the semconv ones at creation; with the attribute-blind ones
            # all attributes are set once, when the call is recorded, without the SDK's per-value cleaning.
            attributes = None if rt.sampler_blind else self._sampling_attrs()
            try:
                span = rt.tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes,
                                            start_time=self._start_ns)
            except BaseException:
                self._parent = parent
                raise
            self._span = span
            self._parent = None
            return span

    def _sampling_attrs(self) -> dict[str, Any]:
        """The semconv attributes a sampler may use (given at span creation when the sampler may read them)."""
        info = self.info
        first: dict[str, Any] = {GenAI.OPERATION_NAME: info.operation, GenAI.PROVIDER_NAME: info.provider,
                                 GenAI.SERVER_ADDRESS: self._server}
        if self._port:
            first[GenAI.SERVER_PORT] = self._port
        if info.request_model:
            first[GenAI.REQUEST_MODEL] = info.request_model
        return first

    def _opening_attrs(self) -> dict[str, Any]:
        """The span attributes known before the request left (sampling ones first, unless already given at
        creation), in the order a span would have got them at its start. Set when the call is recorded,
        blocked or aborted: building them is kept off the path to the first chunk."""
        info, who = self.info, self.who
        attrs = self._sampling_attrs() if self.rt.sampler_blind else {}
        attrs[GenAI.REQUEST_STREAM] = bool(info.stream)
        if info.self_hosted:
            attrs[Attr.SELF_HOSTED] = True
        attrs.update(_attribution_attrs(who))
        return attrs

    # -- around the original send -----------------------------------------------------------

    def enter(self):
        """Make the call's span (or its stand-in) current, without baggage unless told to keep it."""
        span = self._span
        if span is None:
            span = _PendingSpan(self)
            parent = self._parent  # begin() just took it: still the current context
        else:  # started early (a budget decision): the parent was used then
            parent = otel_context.get_current()
        strip = self.rt.strip_baggage  # opentelemetry-instrumentation-httpx injects `baggage` inside send()
        if _CONTEXT_KEYS is not None:  # one copy of the context instead of two (see _context_keys)
            span_key, baggage_key = _CONTEXT_KEYS
            ctx = otel_context.Context({**parent, span_key: span, baggage_key: {}} if strip
                                       else {**parent, span_key: span})
        else:
            ctx = trace.set_span_in_context(span, parent)
            if strip:
                ctx = otel_baggage.clear(context=ctx)
        return otel_context.attach(ctx)

    @staticmethod
    def exit(token) -> None:
        try:
            otel_context.detach(token)
        except Exception:
            pass

    def transport_error(self, exc: BaseException) -> None:
        """send() raised (connection error, timeout, interrupted non-streamed body...)."""
        self._finish(None, type(exc).__qualname__)

    def abort(self) -> None:
        """inferops failed while preparing the request: end the span, the call goes out unobserved."""
        if self._claim():
            try:
                set_clean_attributes(self.span, self._opening_attrs())
            except Exception:
                pass
            try:
                self.span.end()
            except Exception:
                pass

    def _claim(self) -> bool:
        """True for the one caller that gets to end this call (close, garbage collection, the end of the
        stream, an error, a block or an abort may race for it); sets :attr:`_done`."""
        try:
            self._once.pop()
        except IndexError:
            return False
        self._done = True
        return True

    def blocked(self, error_type: str) -> None:
        """Budget enforcement stopped the call before it left: end the span, count no request."""
        if not self._claim():
            return
        set_clean_attributes(self.span, self._opening_attrs())
        self.span.set_attribute(GenAI.ERROR_TYPE, error_type)
        self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.span.end()

    def response(self, response, streamed: bool, is_async: bool = False) -> None:
        """After send(): parse a read body now, or put the tee on a streamed one. Never raises."""
        try:
            self._status = response.status_code
            self._headers = response.headers
            if not streamed:
                self._finish_body(response.content)
                return
            content = getattr(response, "_content", None)
            if isinstance(content, bytes):
                self._read_ahead(response, content)
                return
            self._start_stream(response, is_async)
        except Exception as exc:
            self.rt.count_internal("response", exc, self.info.provider)
            self._finish(None, "")

    def _read_ahead(self, response, content: bytes) -> None:
        """A streamed send whose body was read before send returned (a transport that answered with bytes,
        like ``MockTransport``): no stream to tee, so parse the (already decoded) body whole now."""
        info = self.info
        if info.stream and self._status < 400 and self._make_parser() is not None:
            self._filter = bool(info.injected_stream_usage)
        if self._parser is None:
            self._finish_body(content)
            return
        out = self.on_chunk(content)
        out += self.on_eof()
        if self._filter and out != content:
            response._content = out  # the usage-only chunk inferops asked for, removed as the tee does

    def _finish_body(self, body: bytes) -> None:
        parsed = None
        try:
            parsed = self.adapter.parse_response(self.info, self._status, self._headers, body)
        except Exception as exc:
            self.rt.count_internal("adapter.parse_response", exc, self.info.provider)
        self._finish(parsed, "")

    # -- streaming ------------------------------------------------------------------------------

    def _start_stream(self, response, is_async: bool) -> None:
        info = self.info
        try:
            self._decoder = make_decoder(header_value(response.headers, b"content-encoding"))
        except ValueError:
            self._decoder = None
            self.rt.recorder.record_parse_error(info.provider, "unsupported content-encoding")
            self._parser = None
            self._buffer = None
            self._wrap(response, is_async)
            return
        if info.stream and self._status < 400:
            # Made when the first chunk is parsed (after the caller has it, see hold), not here in front of it.
            self._parser = _LAZY
            self._filter = bool(info.injected_stream_usage and self._decoder is None)
            self.early = True
        else:
            self._buffer = bytearray()
        self._wrap(response, is_async)

    def _make_parser(self):
        """The stream parser, made on first use; None (and nothing filtered from here on) if the adapter
        fails to make one. Never raises."""
        try:
            parser = self.adapter.stream_parser(self.info, self._headers)
        except Exception as exc:
            self.rt.count_internal("adapter.stream_parser", exc, self.info.provider)
            parser = None
            self._filter = False
            self.early = False
        self._parser = parser
        return parser

    def _wrap(self, response, is_async: bool) -> None:
        cls = self._hooks.async_tee if is_async else self._hooks.sync_tee
        response.stream = cls(response.stream, self)

    def hold(self, chunk: bytes) -> bool:
        """Offered each chunk while :attr:`early`: True when the caller may have it before it is parsed.

        Before the first content is timed the parser has the most to do (the
        first event carries the model, the id and, for Anthropic, the input
        usage), and all of it would delay the caller's first chunk. A chunk
        taken here is handed over at once and parsed by :meth:`release` when the
        caller asks for the next one (or the stream ends, is closed or is
        collected: every way to the end releases first), timed at its arrival.
        In filter mode only a chunk that certainly passes the filter unchanged
        is taken: whole events (it ends with a blank line, so nothing is held
        back) and no ``usage`` object (every ``"usage"`` is ``"usage":null``).
        Never raises.
        """
        try:
            if self._filter and not (chunk.endswith(b"\n\n")
                                     and chunk.count(b'"usage"') == chunk.count(b'"usage":null')):
                self.early = False  # the filter decides from here on, as it always did
                return False
            self._held = chunk
            self._held_at = time.perf_counter()
            return True
        except Exception:
            self.early = False
            return False

    def release(self) -> None:
        """Parse the chunk :meth:`hold` took (the caller has had it). Never raises."""
        chunk = self._held
        if chunk is None:
            return
        self._held = None
        self.on_chunk(chunk, self._held_at)
        if self._ttfc is not None or self._parser is None:
            self.early = False

    def on_chunk(self, chunk: bytes, at: float | None = None) -> bytes:
        """Called by the tee for every raw chunk (``at``: when it arrived, if not now); returns what the
        caller gets. Never raises."""
        if self._done:
            return chunk
        try:
            if self._first_chunk is None:
                self._first_chunk = at if at is not None else time.perf_counter()
            data = self._decoder.decode(chunk) if self._decoder is not None else chunk
            parser = self._parser
            if parser is _LAZY:
                parser = self._make_parser()
            if parser is not None:
                out = parser.feed(data)
                if self._ttfc is None and parser.first_content_seen():
                    self._ttfc = (at if at is not None else time.perf_counter()) - self.start
                    if self._decoder is None:
                        # From now on the tee offers each chunk to the parser's absorber first: a chunk that
                        # only carries generated text is taken in there, passes unchanged, and costs one
                        # call instead of on_chunk -> feed -> ... (see streams._SyncTee.__iter__). A parser
                        # with ``steady()`` says after each chunk it is fed what to offer next (a compiled
                        # absorber made for the state it is in); others offer ``absorb`` throughout.
                        self._refresh = getattr(parser, "steady", None)
                        if self._refresh is None:
                            self.steady = getattr(parser, "absorb", None)
                if self._refresh is not None:
                    self.steady = self._refresh()
                return out if self._filter else chunk
            buf = self._buffer
            if buf is not None and len(buf) < MAX_BUFFER:
                buf += data
            return chunk
        except Exception as exc:
            return self._parser_failed(exc, chunk)

    def _parser_failed(self, exc: BaseException, chunk: bytes) -> bytes:
        self.rt.count_internal("stream parsing", exc, self.info.provider)
        out = chunk
        if self._filter:
            # The parser held back at most one partial event: hand it over, then pass through.
            try:
                out = (self._parser.flush() or b"") + chunk
            except Exception:
                out = chunk
        self._parser = None
        self._buffer = None
        self._filter = False
        self.steady = self._refresh = None  # nothing more to absorb into
        return out

    def on_eof(self) -> bytes:
        """The underlying stream ended normally: flush (filter mode) and finish."""
        tail = b""
        if self._held is not None:
            self.release()
        if self._done:
            return tail
        if self._filter and self._parser is not None and self._parser is not _LAZY:
            try:
                tail = self._parser.flush() or b""
            except Exception as exc:
                self.rt.count_internal("stream flush", exc, self.info.provider)
        self._finish(self._summary(), "")
        return tail

    def closed(self) -> None:
        """Closed before (or after) the end."""
        self._cut_short("stream_closed")

    def abandoned(self) -> None:
        """The tee was garbage-collected without being closed."""
        self._cut_short("stream_abandoned")

    def _cut_short(self, error_type: str) -> None:
        """The caller stopped reading: complete if the parser saw the end of the answer (a finish reason;
        usage alone is not an end: Anthropic's message_start and Gemini's every chunk carry usage), else
        ``error_type``."""
        if self._held is not None:
            self.release()
        if self._done:
            return
        parsed = self._summary()
        complete = parsed is not None and bool(parsed.finish_reasons)
        self._finish(parsed, "" if complete else error_type)

    def failed(self, exc: BaseException) -> None:
        """Reading the stream raised (connection cut, timeout...)."""
        if self._held is not None:
            self.release()
        if self._done:
            return
        self._finish(self._summary(), type(exc).__qualname__)

    def _summary(self) -> ParsedResponse | None:
        try:
            if self._parser is _LAZY:  # the stream ended before its first chunk
                self._make_parser()
            if self._parser is not None:
                return self._parser.finish()
            if self._buffer is not None:
                return self.adapter.parse_response(self.info, self._status, self._headers, bytes(self._buffer))
        except Exception as exc:
            self.rt.count_internal("stream summary", exc, self.info.provider)
        return None

    # -- the end -------------------------------------------------------------------------------

    def _finish(self, parsed: ParsedResponse | None, error_type: str) -> None:
        if not self._claim():
            return
        span = self.span
        try:
            self._record(parsed, error_type)
        except Exception as exc:
            self.rt.count_internal("recording", exc, self.info.provider)
            try:  # whatever else failed, the span keeps what was known before the request left
                set_clean_attributes(span, self._opening_attrs())
            except Exception:
                pass
        finally:
            try:
                span.end()
            except Exception:
                pass

    def _record(self, parsed: ParsedResponse | None, error_type: str) -> None:
        rt = self.rt
        info = self.info
        span = self.span
        duration = time.perf_counter() - self.start
        status = self._status
        if not error_type and status >= 400:
            error_type = (parsed.error_type if parsed is not None and parsed.error_type else str(status))
        response_model = parsed.response_model if parsed is not None else ""
        usage = parsed.usage if parsed is not None else None
        attrs = self._opening_attrs()
        attrs[Attr.METRICS_RECORDED] = True
        # Request parameters and captured input are set here, off the path to the first chunk.
        for k, v in (info.attributes or {}).items():
            if v is not None and isinstance(v, (str, bool, int, float)):
                attrs[k] = v
        if rt.capture:
            text = _input_messages(info.parsed_body())
            if text:
                attrs[GenAI.INPUT_MESSAGES] = text
        if parsed is not None:
            if parsed.response_id:
                attrs[GenAI.RESPONSE_ID] = parsed.response_id
            if parsed.finish_reasons:
                attrs[GenAI.RESPONSE_FINISH_REASONS] = tuple(map(str, parsed.finish_reasons))
            if parsed.parse_error:
                attrs[Attr.PARSE_ERROR] = parsed.parse_error
                rt.recorder.record_parse_error(info.provider, parsed.parse_error)
            if rt.capture and parsed.output_text:
                attrs[GenAI.OUTPUT_MESSAGES] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": parsed.output_text[:MAX_CONTENT]}]}],
                    ensure_ascii=False)
        if response_model:
            attrs[GenAI.RESPONSE_MODEL] = response_model
        model = response_model or info.request_model
        # usage first: reading output_text may decode the stream's text (LazyTextResponse), needed only here
        if (status < 400 and parsed is not None and (usage is None or not usage.output_tokens)
                and parsed.output_text):
            usage = self._estimate(usage, parsed, model)
        if usage is not None:
            if not usage.model:
                usage.model = model
            if not usage.provider:
                usage.provider = info.provider
            if info.self_hosted:
                usage.self_hosted = True
            if usage.service_tier == "standard" and info.service_tier and info.service_tier != "standard":
                usage.service_tier = info.service_tier
        cost = None
        if usage is not None:
            cost = rt.engine.price(usage)
            attrs[GenAI.USAGE_INPUT_TOKENS] = usage.input_tokens
            attrs[GenAI.USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens:
                attrs[GenAI.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_write_tokens:
                attrs[GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attrs[GenAI.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            attrs[Attr.USAGE_SOURCE] = usage.usage_source
            attrs[Attr.SERVICE_TIER] = usage.service_tier
            attrs[Attr.COST_STATUS] = cost.status
            attrs[Attr.CATALOG_VERSION] = cost.catalog_version
            attrs[Attr.COST_SOURCE] = "inferops"
            if cost.catalog_key:
                attrs[Attr.CATALOG_KEY] = cost.catalog_key
            if cost.total is not None:
                attrs[GenAI.USAGE_COST] = cost.total
                attrs[Attr.COST_TOTAL] = cost.total
                attrs[Attr.COST_CURRENCY] = "USD"
                for ctype, usd in cost.components.items():
                    if usd:
                        attrs[_COST_ATTRS.get(ctype) or f"{Attr.COST_PREFIX}{ctype}"] = usd
        if self._ttfc is None and self._first_chunk is not None and info.stream:
            self._ttfc = self._first_chunk - self.start
        if self._ttfc is not None:
            attrs[GenAI.RESPONSE_TIME_TO_FIRST_CHUNK] = self._ttfc
        if error_type:
            attrs[GenAI.ERROR_TYPE] = error_type
        set_clean_attributes(span, attrs)
        if error_type:
            span.set_status(Status(StatusCode.ERROR, error_type))
        label_model = (cost.priced_model if cost is not None and cost.priced_model else model)
        if self.route is not None and usage is not None and cost is not None and cost.priced:
            self._record_routing(usage, label_model)
        sem = rt.semconv_attributes(info.operation, info.provider, info.request_model, response_model, self._server)
        outcome = Outcome.ERROR if error_type else Outcome.SUCCESS
        batcher = rt.batcher
        if batcher is not None:
            sc = span.get_span_context()
            # Same rule as the SDK's trace_based exemplar filter: only a sampled span becomes an exemplar
            # (sc.is_valid and sc.trace_flags.sampled, without the two property calls).
            sampled = bool(sc.trace_id and sc.span_id and sc.trace_flags & _SAMPLED_FLAG)
            batcher.add(CallSample(
                usage, cost, self.who, info.provider, label_model, info.operation, outcome, bool(info.stream),
                sem, None if error_type else duration, self._ttfc,
                sc.trace_id if sampled else 0, sc.span_id if sampled else 0))
        else:
            rt.recorder.record_call(
                usage, cost, self.who, provider=info.provider, model=label_model, operation=info.operation,
                outcome=outcome, stream=bool(info.stream),
                semconv_attributes=sem, duration_s=None if error_type else duration,
                time_to_first_chunk_s=self._ttfc, span_context=span.get_span_context(),
            )
        if error_type:
            # Only the duration histogram carries error.type (semconv): record it apart.
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                rt.recorder.duration.record(duration, {**sem, GenAI.ERROR_TYPE: error_type})
            finally:
                otel_context.detach(token)

    def _record_routing(self, usage: UsageRecord, label_model: str) -> None:
        """Savings of a routed (or dry-run) call, priced on its actual tokens."""
        rt = self.rt
        info = self.info
        if rt.routing_metrics is None:
            return
        labels = rt.recorder.call_labels(info.provider, label_model, info.operation, self.who)
        value = rt.routing_metrics.record(
            rt.engine, self.route, usage, requested_model=self.requested_model or info.request_model,
            requested_provider=info.provider, labels=labels)
        if value is not None and not self.route.dry_run:
            self.span.set_attribute(Attr.ROUTING_SAVINGS, value)

    def _estimate(self, usage: UsageRecord | None, parsed: ParsedResponse | None, model: str) -> UsageRecord:
        est = self.rt.estimator
        info = self.info
        out_text = parsed.output_text if parsed is not None else ""
        output = est.count(out_text, model)
        if usage is not None:
            usage.output_tokens = output
            usage.usage_source = UsageSource.ESTIMATED
            return usage
        text, n_messages = request_text(info.parsed_body())
        input_tokens = est.count(text, model) + 3 * n_messages if text else 0
        return UsageRecord(provider=info.provider, model=model, operation=info.operation,
                           input_tokens=input_tokens, output_tokens=output,
                           service_tier=info.service_tier or "standard",
                           usage_source=UsageSource.ESTIMATED, self_hosted=info.self_hosted,
                           notes=["usage estimated with tiktoken"])


def _input_messages(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    picked = {k: body[k] for k in ("system", "instructions", "messages", "input", "prompt", "contents")
              if k in body}
    if not picked:
        return ""
    try:
        text = json.dumps(picked, ensure_ascii=False, default=str)
    except Exception:
        return ""
    return text[:MAX_CONTENT]

