"""CPU added per LLM call by inferops' instrumentation, and time to first chunk added.

Runs the real openai (3.x) and anthropic (2.x) SDKs against the mock provider
server (in a separate process, zero latency, so its CPU is not counted) with
and without inferops in the same run, alternating blocks so drift hits both
sides equally. Reports, per workload, the median CPU of single calls (process
CPU time: includes the span export thread) and the difference, plus the median
wall time to the first streamed chunk and its difference, and the time
inferops' own code spends in front of the first chunk.

    python bench/instrumentation.py [--calls 10] [--rounds 30] [--peer openllmetry|openlit]

Peers need their own virtualenv (openlit requires openai<3 and anthropic<1):
`bash bench/peers/setup.sh` recreates both (exact package sets, inferops editable);
then run this script with that interpreter.

Spans go through a BatchSpanProcessor to an exporter that drops them;
metrics to an in-memory OpenMetrics reader (no scrape during the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import warnings

import anthropic
import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from inferops.instrumentation import InferopsInstrumentor
from inferops.processors.exposition import OpenMetricsReader
from inferops.settings import Settings

SERVER = """
import sys, time
from inferops.mock_providers import MockProviderServer
srv = MockProviderServer(host="127.0.0.1", port=0).start()
print(srv.base_url, flush=True)
sys.stdin.read()
srv.stop()
"""

MSGS = [{"role": "user", "content": "Summarise the quarterly cost report in one sentence."}]
CHUNKS = 50


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def workloads(base: str):
    oa = openai.OpenAI(base_url=base + "/openai/v1", api_key="sk-bench", max_retries=0)
    an = anthropic.Anthropic(base_url=base + "/anthropic", api_key="sk-bench", max_retries=0)

    def aoa_client():
        return openai.AsyncOpenAI(base_url=base + "/openai/v1", api_key="sk-bench", max_retries=0)

    def aan_client():
        return anthropic.AsyncAnthropic(base_url=base + "/anthropic", api_key="sk-bench", max_retries=0)
    hdr = {"x-mock-chunks": str(CHUNKS)}

    def oa_plain():
        oa.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS)

    def oa_stream():
        for _ in oa.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                            extra_headers=hdr):
            pass

    def an_plain():
        an.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS)

    def an_stream():
        for _ in an.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                    extra_headers=hdr):
            pass

    async def aoa_plain(aoa):
        await aoa.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS)

    async def aoa_stream(aoa):
        async for _ in await aoa.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS,
                                                         stream=True, extra_headers=hdr):
            pass

    async def aan_plain(aan):
        await aan.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS)

    async def aan_stream(aan):
        async for _ in await aan.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS,
                                                 stream=True, extra_headers=hdr):
            pass

    def first_chunk_openai():
        t0 = time.perf_counter()
        stream = oa.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                            extra_headers=hdr)
        it = iter(stream)
        next(it)
        dt = time.perf_counter() - t0
        for _ in it:
            pass
        return dt

    def first_chunk_anthropic():
        t0 = time.perf_counter()
        stream = an.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                    extra_headers=hdr)
        it = iter(stream)
        next(it)
        dt = time.perf_counter() - t0
        for _ in it:
            pass
        return dt

    return {
        "openai sync": oa_plain, "openai sync stream50": oa_stream,
        "anthropic sync": an_plain, "anthropic sync stream50": an_stream,
        "openai async": (aoa_client, aoa_plain), "openai async stream50": (aoa_client, aoa_stream),
        "anthropic async": (aan_client, aan_plain), "anthropic async stream50": (aan_client, aan_stream),
    }, {"openai": first_chunk_openai, "anthropic": first_chunk_anthropic}


def run_block(fn, n: int) -> None:
    """``n`` calls of a workload: a function, or (client factory, coroutine function) run on one event loop."""
    if isinstance(fn, tuple):
        make, coro = fn

        async def run():
            client = make()
            for _ in range(n):
                await coro(client)
            await client.close()

        asyncio.run(run())
    else:
        for _ in range(n):
            fn()


def print_overhead_table(per_call: dict[str, dict[str, float]], tools: list[str], base_head: str, fmt) -> None:
    """Markdown table: per workload, the uninstrumented figure, what each tool adds, and tools[0] / tools[1].

    ``per_call[workload][tool]`` is one figure per call (``"none"``: uninstrumented); ``fmt`` formats one.
    """
    head = " | ".join(f"{t} added" for t in tools)
    ratio = f" | {tools[0]} / {tools[1]} |" if len(tools) > 1 else " |"
    print(f"| workload | {base_head} | {head}{ratio}")
    print("|---|---:|" + "---:|" * len(tools) + ("---:|" if len(tools) > 1 else ""))
    for name, by in per_call.items():
        base = by["none"]
        added = [by[t] - base for t in tools]
        cells = " | ".join(fmt(a) for a in added)
        r = (f" | {added[0] / added[1]:.2f}x |" if added[1] > 0 else " | n/a |") if len(added) > 1 else " |"
        print(f"| {name} | {fmt(base)} | {cells}{r}")


def cpu_samples(fn, n: int) -> list[float]:
    """Process CPU time of each of ``n`` calls (medians of single calls resist the machine's noise)."""
    out: list[float] = []
    clock = time.process_time
    if isinstance(fn, tuple):  # (client factory, coroutine function): one client per event loop
        make, coro = fn

        async def loop():
            client = make()
            for _ in range(n):
                t0 = clock()
                await coro(client)
                out.append(clock() - t0)
            await client.close()

        asyncio.run(loop())
        return out
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def inprocess(n: int = 3000) -> list[str]:
    """inferops' own cost without any network: requests and answers built in memory.

    Runs ``Runtime.begin`` / ``Call.enter`` / ``Call.response`` on an httpx2
    request and a canned OpenAI chat answer (non-streamed), and a canned
    50-chunk stream through the tee, against the same work without inferops.
    Free of the scheduling and loopback noise of the end-to-end figures.
    """
    import json

    try:
        import httpx2
    except ImportError:  # a peer's virtualenv with openai 2.x: httpx only
        import httpx as httpx2

    from inferops.instrumentation.configure import build_runtime
    from inferops.instrumentation.patch import Hooks, _parse_result
    from inferops.instrumentation.streams import tee_classes

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(DropExporter()))
    mp = MeterProvider(metric_readers=[OpenMetricsReader()])
    base = "http://127.0.0.1:9"
    endpoints = {base + "/openai/v1": "openai"}
    # rt: metrics batched off the request path (the default); rt_direct: one record_call per call.
    rt = build_runtime(tracer_provider=tp, meter_provider=mp, settings=Settings(provider_endpoints=endpoints))
    rt_direct = build_runtime(tracer_provider=tp, meter_provider=mp,
                              settings=Settings(provider_endpoints=endpoints, metrics_batch_interval_seconds=0))
    sync_tee, async_tee = tee_classes(httpx2)
    hooks = Hooks(sync_tee, async_tee, httpx2._content.ByteStream, _parse_result(httpx2))  # as patch_all builds it
    url = base + "/openai/v1/chat/completions"
    hdrs = {"content-type": "application/json", "authorization": "Bearer sk-x", "user-agent": "OpenAI/Python",
            "x-stainless-lang": "python", "x-stainless-os": "Linux", "x-stainless-retry-count": "0",
            "accept": "application/json"}
    req_body = json.dumps({"model": "gpt-4o", "messages": MSGS, "max_tokens": CHUNKS}).encode()
    stream_body = json.dumps({"model": "gpt-4o", "messages": MSGS, "max_tokens": CHUNKS, "stream": True}).encode()
    answer = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "w0 w1"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 20 + CHUNKS,
                                   "prompt_tokens_details": {"cached_tokens": 0},
                                   "completion_tokens_details": {"reasoning_tokens": 0}}}).encode()

    def event(content=None, finish=None, usage=None, choices=True):
        c = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
             "choices": [{"index": 0, "delta": {"content": content} if content is not None else {},
                          "finish_reason": finish}] if choices else [], "usage": usage}
        return b"data: " + json.dumps(c).encode() + b"\n\n"

    events = ([event("")] + [event(f" w{i}") for i in range(CHUNKS)] + [event(None, "stop"),
              event(None, None, {"prompt_tokens": 20, "completion_tokens": CHUNKS, "total_tokens": 70}, False),
              b"data: [DONE]\n\n"])

    class Canned(httpx2.SyncByteStream):
        def __iter__(self):
            yield from events

    def plain(instrumented: bool, runtime=rt) -> float:
        t0 = time.perf_counter()
        req = httpx2.Request("POST", url, content=req_body, headers=hdrs)
        call = runtime.begin(req, hooks) if instrumented else None
        if call is not None:
            call.exit(call.enter())
        resp = httpx2.Response(200, content=answer, headers={"content-type": "application/json"}, request=req)
        if call is not None:
            call.response(resp, False, False)
        return time.perf_counter() - t0

    def streamed(instrumented: bool) -> tuple[float, float]:
        t0 = time.perf_counter()
        req = httpx2.Request("POST", url, content=stream_body, headers=hdrs)
        call = rt.begin(req, hooks) if instrumented else None
        if call is not None:
            call.exit(call.enter())
        resp = httpx2.Response(200, stream=Canned(), headers={"content-type": "text/event-stream"}, request=req)
        if call is not None:
            call.response(resp, True, False)
        it = resp.iter_raw()
        next(it)
        t1 = time.perf_counter()
        for _ in it:
            pass
        return t1 - t0, time.perf_counter() - t0

    def medians(fn):
        for _ in range(300):
            fn(False), fn(True)
        off, on = [], []
        for _ in range(n):
            off.append(fn(False))
            on.append(fn(True))
        return off, on

    def cpu_per_call(block: int = 200, rounds: int = 15) -> dict[str, float]:
        """Median process CPU per call over blocks of calls, *including* batched recording.

        process_time counts every thread (the batcher's flush thread, the span
        export thread); each batched block ends with an explicit flush inside
        the clock, so every call's metric work is counted.
        """
        configs = {
            "none": lambda: plain(False),
            "batched": lambda: plain(True, rt),
            "direct": lambda: plain(True, rt_direct),
        }
        out: dict[str, list[float]] = {k: [] for k in configs}
        for r in range(rounds + 1):
            for name, fn in configs.items():
                t0 = time.process_time()
                for _ in range(block):
                    fn()
                rt.flush_metrics()
                dt = (time.process_time() - t0) / block
                if r:  # round 0 warms up
                    out[name].append(dt)
        return {k: statistics.median(v) for k, v in out.items()}

    m = statistics.median
    off, on = medians(plain)
    direct = lambda instrumented: plain(instrumented, rt_direct)  # noqa: E731
    doff, don = medians(direct)
    rec = rt_direct.recorder.record_call
    rt_direct.recorder.record_call = lambda *a, **k: None
    off2, on2 = medians(direct)
    cpu_nometrics = cpu_per_call(rounds=5)
    rt_direct.recorder.record_call = rec
    cpu = cpu_per_call()
    soff, son = medians(streamed)
    lines = [
        f"in-process (no network), openai chat, median of {n} calls:",
        f"- non-streamed call, request path (metrics batched): {(m(on) - m(off)) * 1e6:.0f} us added; "
        f"recording each call's metrics on its path instead: {(m(don) - m(doff)) * 1e6:.0f} us added, "
        f"of which metric recording (its 8 measurements through CostRecorder) "
        f"{((m(don) - m(doff)) - (m(on2) - m(off2))) * 1e6:.0f} us",
        f"- non-streamed call, process CPU incl. the batch flushes (all threads, median of blocks of 200): "
        f"batched {(cpu['batched'] - cpu['none']) * 1e6:.0f} us added, "
        f"per-call recording {(cpu['direct'] - cpu['none']) * 1e6:.0f} us added, "
        f"no metrics at all {(cpu_nometrics['direct'] - cpu_nometrics['none']) * 1e6:.0f} us added "
        f"(uninstrumented {cpu['none'] * 1e6:.0f} us)",
        f"- streamed call ({CHUNKS} chunks): {(m([x[1] for x in son]) - m([x[1] for x in soff])) * 1e6:.0f} us added; "
        f"time to first chunk {(m([x[0] for x in son]) - m([x[0] for x in soff])) * 1e6:.0f} us added",
    ]
    rt.close()
    rt_direct.close()
    tp.shutdown()
    return lines


class CriticalPath:
    """Wall time inferops' own code spends before the caller sees the first chunk of a stream.

    Wall-clock time to first chunk against a local server is noisy (scheduling,
    delayed ACKs); this sums, per streamed call, the time spent in
    ``Runtime.begin``, ``Call.enter``, ``Call.response`` and what the tee runs
    on the first chunk before handing it over: ``Call.hold`` (the chunk is
    parsed after the hand-over) or ``Call.on_chunk`` (parsed before it).
    """

    def __init__(self):
        from inferops.instrumentation import runtime

        self.rt, self.samples, self._cur, self._saved = runtime, [], {}, []

    def install(self):
        Runtime, Call = self.rt.Runtime, self.rt.Call
        cur = self._cur

        def timed(cls, name, first_only=False):
            orig = getattr(cls, name)
            self._saved.append((cls, name, orig))

            def wrapper(obj, *a, **kw):
                t0 = time.perf_counter()
                try:
                    return orig(obj, *a, **kw)
                finally:
                    dt = time.perf_counter() - t0
                    key = id(obj) if isinstance(obj, Call) else "begin"
                    if name == "begin":
                        cur["pending"] = dt
                    elif name == "enter":
                        cur[key] = cur.pop("pending", 0.0) + dt
                    elif name == "response":
                        cur[key] = cur.get(key, 0.0) + dt
                    elif name == "hold" and key in cur:
                        self.samples.append(cur.pop(key) + dt)
                    elif name == "on_chunk" and key in cur and (len(a) < 2 or a[1] is None):
                        self.samples.append(cur.pop(key) + dt)  # called by the tee itself, not by release()
            setattr(cls, name, wrapper)

        timed(Runtime, "begin")
        timed(Call, "enter")
        timed(Call, "response")
        timed(Call, "hold")
        timed(Call, "on_chunk")

    def uninstall(self):
        for cls, name, orig in reversed(self._saved):
            setattr(cls, name, orig)
        self._saved.clear()


class Tool:
    """Something that instruments the SDKs and can (normally) be switched off again."""

    name = ""
    reversible = True

    def on(self) -> None: ...

    def off(self) -> None: ...


class Inferops(Tool):
    name = "inferops"

    def __init__(self, tp, mp, settings):
        self.inst, self.kw = InferopsInstrumentor(), {"tracer_provider": tp, "meter_provider": mp,
                                                      "settings": settings}

    def on(self):
        self.inst.instrument(**self.kw)

    def off(self):
        self.inst.uninstrument()


class OpenLLMetry(Tool):
    """opentelemetry-instrumentation-openai / -anthropic (Traceloop), spans and metrics on."""

    name = "openllmetry"

    def __init__(self, tp, mp):
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        self.insts = [OpenAIInstrumentor(), AnthropicInstrumentor()]
        self.kw = {"tracer_provider": tp, "meter_provider": mp}

    def on(self):
        for i in self.insts:
            i.instrument(**self.kw)

    def off(self):
        for i in self.insts:
            i.uninstrument()


class OpenLIT(Tool):
    """openlit.init() with a local price file; it cannot be switched off, so it is measured last."""

    name = "openlit"
    reversible = False

    def __init__(self, tp, mp, pricing_json):
        self.tp, self.mp, self.pricing_json, self.started = tp, mp, pricing_json, False

    def on(self):
        if self.started:
            return
        import openlit
        from opentelemetry import metrics, trace

        trace.set_tracer_provider(self.tp)  # openlit uses the global providers when they are set
        metrics.set_meter_provider(self.mp)
        openlit.init(pricing_json=self.pricing_json or None, disable_batch=False, collect_gpu_stats=False,
                     capture_message_content=False, disable_events=True)
        self.started = True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10, help="calls per block")
    ap.add_argument("--rounds", type=int, default=30, help="alternating baseline/instrumented blocks")
    ap.add_argument("--peer", choices=["none", "openllmetry", "openlit"], default="none",
                    help="also measure a peer (install it in this virtualenv first; openlit needs "
                         "openai<3 and anthropic<1)")
    ap.add_argument("--pricing-json", default="", help="local price file for openlit (it downloads one otherwise)")
    ap.add_argument("--inprocess-only", action="store_true", help="only the in-process (no network) figures")
    ap.add_argument("--peer-last", action="store_true",
                    help="measure the peer after every baseline block (see bench/instructions.py)")
    args = ap.parse_args()
    if args.inprocess_only:
        print("\n".join(inprocess()))
        return 0

    warnings.simplefilter("ignore", DeprecationWarning)  # model deprecation notices of the SDKs
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    try:
        tp = TracerProvider()
        tp.add_span_processor(BatchSpanProcessor(DropExporter()))
        mp = MeterProvider(metric_readers=[OpenMetricsReader()])
        settings = Settings(provider_endpoints={base + "/openai/v1": "openai", base + "/anthropic": "anthropic"})
        tools: list[Tool] = [Inferops(tp, mp, settings)]
        if args.peer == "openllmetry":
            tools.append(OpenLLMetry(tp, mp))
        elif args.peer == "openlit":
            tools.append(OpenLIT(tp, mp, args.pricing_json))
        if args.peer_last and len(tools) > 1:
            tools[1].reversible = False  # measured after all baseline blocks (uninstrument may leave work behind)
        loads, firsts = workloads(base)
        cpu: dict[str, dict[str, list[float]]] = {n: {"none": []} for n in loads}
        first: dict[str, dict[str, list[float]]] = {n: {"none": []} for n in firsts}
        for phase in ("reversible", "last"):
            for name, fn in loads.items():
                for tool in tools:
                    if (phase == "reversible") != tool.reversible:
                        continue
                    tool.on()
                    cpu_samples(fn, 20)  # warm up
                    tool.off()
                cpu_samples(fn, 20)
                for _ in range(args.rounds):
                    if phase == "reversible":
                        cpu[name]["none"].extend(cpu_samples(fn, args.calls))
                    for tool in tools:
                        if (phase == "reversible") != tool.reversible:
                            continue
                        tool.on()
                        cpu[name].setdefault(tool.name, []).extend(cpu_samples(fn, args.calls))
                        tool.off()
                print(f"[{phase}] {name}: " + ", ".join(
                    f"{k} {statistics.median(v) * 1e6:.0f} us" for k, v in cpu[name].items() if v),
                    file=sys.stderr, flush=True)
            for name, fn in firsts.items():
                for _ in range(args.rounds):
                    if phase == "reversible":
                        first[name]["none"].extend(fn() for _ in range(args.calls))
                    for tool in tools:
                        if (phase == "reversible") != tool.reversible:
                            continue
                        tool.on()
                        first[name].setdefault(tool.name, []).extend(fn() for _ in range(args.calls))
                        tool.off()
        crit = CriticalPath()
        crit.install()
        tools[0].on()
        for name, fn in firsts.items():
            for _ in range(args.calls * 4):
                fn()
        tools[0].off()
        crit.uninstall()
        tp.shutdown()
    finally:
        server.stdin.close()
        server.wait(timeout=10)

    names = [t.name for t in tools]
    import openai as _oa, anthropic as _an
    print(f"instrumentation overhead ({args.rounds} rounds x {args.calls} calls; python {sys.version.split()[0]}, "
          f"openai {_oa.__version__}, anthropic {_an.__version__}, {os.cpu_count()} cpus)\n")
    print_overhead_table({name: {t: statistics.median(v) for t, v in by.items()} for name, by in cpu.items()},
                         names, "CPU/call uninstrumented", lambda x: f"{x * 1e6:.0f} us")
    print()
    print("| stream (50 chunks) | time to first chunk uninstrumented | " + " | ".join(f"{n} added" for n in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for name, by in first.items():
        b = statistics.median(by["none"])
        print(f"| {name} | {b * 1e6:.0f} us | " + " | ".join(
            f"{(statistics.median(by[n]) - b) * 1e6:.0f} us" for n in names) + " |")
    samples = sorted(crit.samples)
    if samples:
        print(f"\ninferops code on the path to the first chunk (begin + enter + response + first hold/on_chunk), "
              f"{len(samples)} streamed calls: median {statistics.median(samples) * 1e6:.0f} us, "
              f"p90 {samples[int(len(samples) * 0.9)] * 1e6:.0f} us")
    print()
    print("\n".join(inprocess()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
