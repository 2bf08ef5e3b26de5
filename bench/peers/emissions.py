"""What each tool emits for ONE call of each benchmark workload: spans, span attributes, metric observations.

Backs the overhead comparison (docs/instrumentation.md, "Why the three
Anthropic cells miss"): it shows which OpenTelemetry SDK work a tool does per
call (one span and how many attributes; how many histogram observations and
counter increments, per instrument and scope), so "both pay the same SDK
floor" can be checked rather than assumed.

    /tmp/inferops-peers/openllmetry/bin/python bench/peers/emissions.py openllmetry
    /tmp/inferops-peers/openllmetry/bin/python bench/peers/emissions.py inferops

(Metrics are cumulative; per workload the script prints the change: histogram
``count`` and counter ``value`` summed over data points, keyed by scope and name.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import instrumentation as bench  # noqa: E402  (bench/instrumentation.py: workloads and tools)
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from inferops.settings import Settings  # noqa: E402


def totals(reader) -> dict[str, float]:
    out: dict[str, float] = {}
    data = reader.get_metrics_data()
    for rm in (data.resource_metrics if data else []):
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                key = f"{sm.scope.name.split('.')[-1]}:{m.name}"
                out[key] = sum(p.count if hasattr(p, "count") else p.value for p in m.data.data_points)
    return out


def main() -> int:
    tool = sys.argv[1] if len(sys.argv) > 1 else "inferops"
    srv = subprocess.Popen([sys.executable, "-c", bench.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    base = srv.stdout.readline().strip()
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    if tool == "openllmetry":
        t = bench.OpenLLMetry(tp, mp)
    else:
        t = bench.Inferops(tp, mp, Settings(
            provider_endpoints={base + "/openai/v1": "openai", base + "/anthropic": "anthropic"},
            metrics_batch_interval_seconds=0))
    t.on()
    workloads, _ = bench.workloads(base)
    before = totals(reader)
    for name, fn in workloads.items():
        exporter.clear()
        bench.run_block(fn, 1)
        now = totals(reader)
        delta = {k: round(v - before.get(k, 0), 9) for k, v in now.items() if v != before.get(k, 0)}
        before = now
        spans = exporter.get_finished_spans()
        print(f"{name:26s} spans={len(spans)} " + " ".join(f"{s.name!r}:{len(s.attributes)} attrs" for s in spans))
        print("    observations / increments:", json.dumps(delta))
    srv.stdin.close()
    srv.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
