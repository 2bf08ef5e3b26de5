"""CPU added per LLM call by inferops' instrumentation, and time to first chunk added.

Runs the real openai (3.x) and anthropic (2.x) SDKs against the mock provider
server (in a separate process, zero latency, so its CPU is not counted) with
and without inferops in the same run, alternating blocks so drift hits both
sides equally. Reports, per workload, the median CPU per call (process CPU
time: includes the span export thread) and the difference, plus the median
wall time to the first streamed chunk and its difference.

    python bench/instrumentation.py [--calls 200] [--rounds 5]

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


def cpu_per_call(fn, n: int) -> float:
    if isinstance(fn, tuple):  # (client factory, coroutine function): one client per event loop
        make, coro = fn

        async def loop():
            client = make()
            for _ in range(n):
                await coro(client)
            await client.close()

        t0 = time.process_time()
        asyncio.run(loop())
        return (time.process_time() - t0) / n
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200, help="calls per block")
    ap.add_argument("--rounds", type=int, default=5, help="alternating baseline/instrumented blocks")
    args = ap.parse_args()

    warnings.simplefilter("ignore", DeprecationWarning)  # model deprecation notices of the SDKs
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    try:
        tp = TracerProvider()
        tp.add_span_processor(BatchSpanProcessor(DropExporter()))
        mp = MeterProvider(metric_readers=[OpenMetricsReader()])
        settings = Settings(provider_endpoints={base + "/openai/v1": "openai", base + "/anthropic": "anthropic"})
        inst = InferopsInstrumentor()
        loads, firsts = workloads(base)
        results = {}
        for name, fn in loads.items():
            cpu_per_call(fn, 20)  # warm up both paths
            inst.instrument(tracer_provider=tp, meter_provider=mp, settings=settings)
            cpu_per_call(fn, 20)
            inst.uninstrument()
            base_s, inst_s = [], []
            for _ in range(args.rounds):
                base_s.append(cpu_per_call(fn, args.calls))
                inst.instrument(tracer_provider=tp, meter_provider=mp, settings=settings)
                inst_s.append(cpu_per_call(fn, args.calls))
                inst.uninstrument()
            results[name] = (statistics.median(base_s), statistics.median(inst_s))
        ttfc = {}
        for name, fn in firsts.items():
            b, i = [], []
            for _ in range(args.rounds):
                b.extend(fn() for _ in range(args.calls // 4))
                inst.instrument(tracer_provider=tp, meter_provider=mp, settings=settings)
                i.extend(fn() for _ in range(args.calls // 4))
                inst.uninstrument()
            ttfc[name] = (statistics.median(b), statistics.median(i))
        tp.shutdown()
    finally:
        server.stdin.close()
        server.wait(timeout=10)

    print(f"inferops instrumentation overhead ({args.rounds} rounds x {args.calls} calls, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cpus)\n")
    print(f"| workload | CPU/call without | CPU/call with | added CPU/call | added % |")
    print(f"|---|---:|---:|---:|---:|")
    for name, (b, i) in results.items():
        print(f"| {name} | {b * 1e6:.0f} us | {i * 1e6:.0f} us | {(i - b) * 1e6:.0f} us | {(i - b) / b * 100:.1f}% |")
    print()
    print(f"| stream (50 chunks) | time to first chunk without | with | added |")
    print(f"|---|---:|---:|---:|")
    for name, (b, i) in ttfc.items():
        print(f"| {name} | {b * 1e6:.0f} us | {i * 1e6:.0f} us | {(i - b) * 1e6:.0f} us |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
