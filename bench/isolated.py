"""CPU per call added by inferops and a peer, each tool in its own process (no switching on and off).

``bench/instrumentation.py`` switches the tools on and off in one process;
OpenLLMetry's uninstrument leaves work behind (the baseline after it rises,
and grows with each cycle), which pollutes every block measured after it.
Here every (workload, tool) block runs in a fresh process that instruments
once (or not at all, for the baseline), warms up, and measures blocks of calls
with ``time.process_time`` (all threads: the span exporter and inferops' metric
flush are counted; each block ends with a flush of both). Processes of the
three tools alternate, in rotating order, round after round, so drift of the
shared machine hits all of them alike; the figure is the median block.

    bash bench/peers/setup.sh
    /tmp/inferops-peers/openllmetry/bin/python bench/isolated.py --peer openllmetry [--rounds 4]

Same workloads as ``bench/instrumentation.py`` (openai 2.x and anthropic 0.x in
the peer virtualenv, mock provider server in another process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import instrumentation as bench
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from inferops.processors.exposition import OpenMetricsReader
    from inferops.settings import Settings

    warnings.simplefilter("ignore", DeprecationWarning)
    base = args.base
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(bench.DropExporter()))
    mp = MeterProvider(metric_readers=[OpenMetricsReader()])
    ours = bench.Inferops(tp, mp, Settings(provider_endpoints={base + "/openai/v1": "openai",
                                                               base + "/anthropic": "anthropic"}))
    tool = {"inferops": ours, "openllmetry": lambda: bench.OpenLLMetry(tp, mp),
            "openlit": lambda: bench.OpenLIT(tp, mp, args.pricing_json)}.get(args.tool)
    if args.tool == "inferops":
        ours.on()
    elif tool is not None:
        tool().on()
    loads, _ = bench.workloads(base)
    fn = loads[args.workload]

    clock = time.process_time
    bench.run_block(fn, args.calls)  # warm: imports, caches, connections
    out = []
    for _ in range(args.blocks):
        t0 = clock()
        bench.run_block(fn, args.calls)
        tp.force_flush()
        ours.inst.flush_metrics()
        out.append((clock() - t0) / args.calls)
    print(json.dumps(out), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", choices=["openllmetry", "openlit"], default="openllmetry")
    ap.add_argument("--pricing-json", default="")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=5, help="measured blocks per process")
    ap.add_argument("--calls", type=int, default=20, help="calls per block")
    ap.add_argument("--only", default="", help="substring: only the workloads containing it")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "WORKLOAD"), help=argparse.SUPPRESS)
    ap.add_argument("--base", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.tool, args.workload = args.child
        child(args)
        return 0
    sys.path.insert(0, HERE)
    import instrumentation as bench

    server = subprocess.Popen([sys.executable, "-c", bench.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    names = ["openai sync", "openai sync stream50", "anthropic sync", "anthropic sync stream50", "openai async",
             "openai async stream50", "anthropic async", "anthropic async stream50"]
    names = [n for n in names if args.only in n]
    tools = ["none", "inferops", args.peer]
    samples: dict[str, dict[str, list[float]]] = {n: {t: [] for t in tools} for n in names}
    try:
        for r in range(args.rounds):
            for name in names:
                order = tools[r % 3:] + tools[:r % 3]
                for tool in order:
                    cmd = [sys.executable, os.path.abspath(__file__), "--child", tool, name, "--base", base,
                           "--blocks", str(args.blocks), "--calls", str(args.calls)]
                    if args.pricing_json:
                        cmd += ["--pricing-json", args.pricing_json]
                    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    lines = [x for x in res.stdout.splitlines() if x.startswith("[")]
                    if res.returncode or not lines:
                        print(f"child {tool} {name} failed ({res.returncode})", file=sys.stderr)
                        return 1
                    samples[name][tool].extend(json.loads(lines[-1]))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    import anthropic
    import openai
    print(f"CPU per call, each tool in its own process ({args.rounds} rounds x {args.blocks} blocks x {args.calls} "
          f"calls, median block; python {sys.version.split()[0]}, openai {openai.__version__}, "
          f"anthropic {anthropic.__version__})\n")
    bench.print_overhead_table({n: {t: statistics.median(v) for t, v in samples[n].items()} for n in names},
                               ["inferops", args.peer], "uninstrumented", lambda x: f"{x * 1e6:,.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
