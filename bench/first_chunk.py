"""Time to first chunk added by inferops, with the real openai and anthropic SDKs, paired call by call.

Switching the instrumentation on and off between blocks of calls (as
``instrumentation.py`` does) leaves the first calls after each switch cold
(the patched classes lose their method caches, a fresh runtime its memos), and
on this shared 2-core VM the wall time of a block moves by more than 100 us.
Here nothing is switched: inferops is on for the whole run, and each SDK has
two clients, one on a plain ``httpx2.Client`` subclass that keeps the original
``send`` (so inferops never sees its calls) and one on the default, patched,
client. Calls alternate between the two (ABBA order), so each instrumented call
has an uninstrumented twin made next to it under the same conditions; the
script reports the median of the paired differences and the mean of their
middle half, for wall time and for the calling thread's CPU time, from the
call to the SDK until it hands over the first streamed event.

``--instructions`` runs the same calls under ``valgrind --tool=callgrind`` and
counts the instructions (all threads) of each call's path to its first event
instead: exact and free of the machine's noise, but blind to cache misses,
which are most of the cost of code that runs between two large SDK calls.

    python bench/first_chunk.py [--calls 400]
    python bench/first_chunk.py --instructions [--calls 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
MSGS = [{"role": "user", "content": "Summarise the quarterly cost report in one sentence."}]
CHUNKS = 50


def _setup(quiet: bool = False):
    """The mock server, inferops on (one runtime for the whole run), per SDK an (uninstrumented,
    instrumented) pair of clients, and a function that exports the spans and records the metrics batched so
    far. ``quiet``: no timer-driven export or metric flush (under callgrind, whose slowed clock would fire
    them inside random calls of either arm; the child flushes between calls instead)."""
    sys.path.insert(0, HERE)
    import anthropic
    import httpx2
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import instrumentation as bench  # bench/instrumentation.py: the server and the exporter
    from inferops.instrumentation.configure import build_runtime
    from inferops.instrumentation.patch import patch_all
    from inferops.processors.exposition import OpenMetricsReader
    from inferops.settings import Settings

    original_send = httpx2.Client.send

    class PlainClient(httpx2.Client):
        send = original_send  # bypasses the patched httpx2.Client.send

    server = subprocess.Popen([sys.executable, "-c", bench.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(bench.DropExporter(), **(
        {"schedule_delay_millis": 3_600_000} if quiet else {})))
    mp = MeterProvider(metric_readers=[OpenMetricsReader()])
    rt = build_runtime(tracer_provider=tp, meter_provider=mp, settings=Settings(
        provider_endpoints={base + "/openai/v1": "openai", base + "/anthropic": "anthropic"},
        **({"metrics_batch_interval_seconds": 3600.0} if quiet else {})))
    patch_all(rt)
    assert httpx2.Client.send is not original_send
    kw = {"api_key": "sk-bench", "max_retries": 0}
    pairs = {
        "openai": tuple(openai.OpenAI(base_url=base + "/openai/v1", http_client=c(), **kw)
                        for c in (PlainClient, httpx2.Client)),
        "anthropic": tuple(anthropic.Anthropic(base_url=base + "/anthropic", http_client=c(), **kw)
                           for c in (PlainClient, httpx2.Client)),
    }
    def flush():
        tp.force_flush()
        rt.flush_metrics()

    return server, pairs, flush


def _first_event(kind: str, client, mark=None) -> tuple[float, float]:
    """One streamed call: (wall, thread CPU) seconds until the SDK yields the first event; then drained."""
    hdr = {"x-mock-chunks": str(CHUNKS)}
    if mark:
        mark()
    w0, c0 = time.perf_counter(), time.thread_time()
    if kind == "openai":
        stream = client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                                extra_headers=hdr)
    else:
        stream = client.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=CHUNKS, stream=True,
                                        extra_headers=hdr)
    it = iter(stream)
    next(it)
    c1, w1 = time.thread_time(), time.perf_counter()
    if mark:
        mark()
    for _ in it:
        pass
    return w1 - w0, c1 - c0


def timing(calls: int) -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    server, pairs, _ = _setup()
    try:
        for kind, (plain, inst) in pairs.items():
            for _ in range(30):  # warm: imports, connections, memos
                _first_event(kind, plain), _first_event(kind, inst)
        res = {kind: ([], []) for kind in pairs}
        for i in range(calls):
            for kind, (plain, inst) in pairs.items():
                order = ((0, plain), (1, inst)) if i % 2 else ((1, inst), (0, plain))
                for arm, client in order:
                    res[kind][arm].append(_first_event(kind, client))
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    import anthropic
    import openai
    print(f"time to first event added by inferops ({calls} paired calls per SDK; python {sys.version.split()[0]}, "
          f"openai {openai.__version__}, anthropic {anthropic.__version__})\n")
    print("| SDK | measure | uninstrumented (median) | added: median of pairs | added: mean of middle half |")
    print("|---|---|---:|---:|---:|")
    for kind, (off, on) in res.items():
        for j, what in ((0, "wall"), (1, "thread CPU")):
            diffs = sorted(a[j] - b[j] for a, b in zip(on, off))
            q = len(diffs) // 4
            print(f"| {kind} | {what} | {statistics.median(x[j] for x in off) * 1e6:.0f} us | "
                  f"{statistics.median(diffs) * 1e6:.0f} us | {statistics.mean(diffs[q:len(diffs) - q]) * 1e6:.0f} us |")


def child(calls: int) -> None:
    """Under callgrind: each call's path to its first event between two ``os.getppid()`` marks."""
    warnings.simplefilter("ignore", DeprecationWarning)
    server, pairs, flush = _setup(quiet=True)
    try:
        for kind, (plain, inst) in pairs.items():
            for _ in range(5):
                _first_event(kind, plain), _first_event(kind, inst)
        for _ in range(calls):
            for kind, (plain, inst) in pairs.items():
                for arm, client in (("none", plain), ("inferops", inst)):
                    flush()  # the previous call's span export and metrics: outside every measured path
                    _first_event(kind, client, os.getppid)
                    print(f"CALL\t{kind}\t{arm}", flush=True)
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def instructions(calls: int) -> int:
    sys.path.insert(0, HERE)
    from instructions import callgrind  # bench/instructions.py

    run = callgrind([os.path.abspath(__file__), "--child", "--calls", str(calls)], "inferops-first-chunk-")
    if run is None:
        return 1
    stdout, counts = run
    order = [line.split("\t")[1:] for line in stdout.splitlines() if line.startswith("CALL\t")]
    # Two marks per call: dump 2i+1 ends what came before call i, dump 2i+2 ends its path to the first event.
    per: dict[str, dict[str, list[int]]] = {}
    for i, (kind, arm) in enumerate(order):
        per.setdefault(kind, {}).setdefault(arm, []).append(counts[2 * i + 2])
    print(f"instructions to the first event (callgrind, median of {calls} calls per arm)\n")
    print("| SDK | uninstrumented | inferops | added |")
    print("|---|---:|---:|---:|")
    for kind, by in per.items():
        off, on = statistics.median(by["none"]), statistics.median(by["inferops"])
        print(f"| {kind} | {off / 1e3:,.0f}k | {on / 1e3:,.0f}k | {(on - off) / 1e3:,.0f}k |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=0, help="paired calls per SDK (default 400; 8 with --instructions)")
    ap.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.calls)
        return 0
    if args.instructions:
        return instructions(args.calls or 8)
    timing(args.calls or 400)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
