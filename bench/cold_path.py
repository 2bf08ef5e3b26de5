"""inferops' work in front of a request, hot (in a tight loop) and cold (right after a real SDK call).

In-process benchmarks run inferops' code in a tight loop, with its code and
data in the CPU caches. In an application every LLM call runs between large
amounts of SDK work (pydantic, httpx, the SDK's own stream decoding) that evict
them, and the same Python then costs several times more CPU. This script takes
one real anthropic SDK request (captured from the patched ``send``), then times
each step of ``Runtime.begin`` on copies of it with ``time.thread_time``: 200
times back to back ("hot") and 200 times each right after a real streamed SDK
call ("after an SDK call"), and prints the medians. What it showed on
2026-11-29 (session 4): every step is 2-4x slower cold; ``begin`` ~35-60 us hot,
~150-160 us cold. Session 5 (the span no longer started here, one raw pass over
the headers): the sum of the steps 15 us hot, 34 us after an SDK call.

    python bench/cold_path.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import httpx2  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

import instrumentation as bench  # noqa: E402  (bench/instrumentation.py: workloads, server)
from inferops.instrumentation import runtime  # noqa: E402
from inferops.instrumentation.attribution import pop_inferops_headers  # noqa: E402
from inferops.instrumentation.providers.base import Endpoint  # noqa: E402
from inferops.processors.exposition import OpenMetricsReader  # noqa: E402
from inferops.settings import Settings  # noqa: E402

STEPS = ["route", "headers", "parse_request", "resolve", "Call() (span started lazily)", "enforce"]


def main() -> int:
    srv = subprocess.Popen([sys.executable, "-c", bench.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    base = srv.stdout.readline().strip()
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(bench.DropExporter()))
    mp = MeterProvider(metric_readers=[OpenMetricsReader()])
    tool = bench.Inferops(tp, mp, Settings(provider_endpoints={base + "/openai/v1": "openai",
                                                               base + "/anthropic": "anthropic"}))
    tool.on()
    _, first_chunk = bench.workloads(base)
    sdk_call = first_chunk["anthropic"]

    captured = {}
    original = runtime.Runtime.begin

    def capture(self, request, hooks):
        captured.setdefault("req", (request.method, str(request.url), list(request.headers.raw), request.content,
                                    self, hooks))
        return original(self, request, hooks)

    runtime.Runtime.begin = capture
    sdk_call()
    runtime.Runtime.begin = original
    method, url, raw_headers, content, rt, hooks = captured["req"]
    clock = time.thread_time

    def steps() -> list[float]:
        req = httpx2.Request(method, url, headers=raw_headers, content=content)
        out = []
        t0 = clock()
        u = req.url
        adapter = rt.router.route(u.scheme, u.host, u.port, u.path)
        out.append(clock() - t0)
        t0 = clock()
        headers = req.headers
        tagged = pop_inferops_headers(headers, True)
        out.append(clock() - t0)
        t0 = clock()
        endpoint = Endpoint(u.scheme, u.host, u.port, u.path, u.query.decode())
        info = adapter.parse_request(req.method, endpoint, headers, req._content)
        out.append(clock() - t0)
        t0 = clock()
        who = rt.resolver.resolve(tagged, info.user)
        out.append(clock() - t0)
        t0 = clock()
        call = runtime.Call(rt, adapter, info, who, req, hooks)
        out.append(clock() - t0)
        t0 = clock()
        rt._enforce(call)
        out.append(clock() - t0)
        call.abort()
        return out

    for _ in range(50):
        steps()
    print(f"inferops' steps in front of a request (median of 200, thread CPU, us); request: {len(raw_headers)} "
          f"headers, {len(content)} body bytes\n")
    print("| | " + " | ".join(STEPS) + " | sum |")
    print("|---|" + "---:|" * (len(STEPS) + 1))
    for label, before in (("hot", None), ("after an SDK call", sdk_call)):
        rows = []
        for _ in range(200):
            if before is not None:
                before()
            rows.append(steps())
        med = [statistics.median(r[i] for r in rows) * 1e6 for i in range(len(STEPS))]
        print(f"| {label} | " + " | ".join(f"{m:.1f}" for m in med) + f" | {sum(med):.1f} |")
    tool.off()
    srv.stdin.close()
    srv.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
