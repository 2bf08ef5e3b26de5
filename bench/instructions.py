"""Instructions added per LLM call, counted by callgrind: the noise-free twin of ``instrumentation.py``.

CPU time on a shared 2-core machine moves by tens of percent from run to run,
which drowns differences of a few hundred microseconds. Instruction counts do
not move: ``valgrind --tool=callgrind`` counts the instructions the process
executes (all its threads), whatever else the machine is doing. This script
runs the same workloads as ``bench/instrumentation.py`` (real openai/anthropic
SDKs against the mock provider server in a separate, uncounted process), with
no instrumentation, with inferops, and with a peer, and marks the boundaries of
each block of calls by calling ``os.getppid()``: callgrind is started with
``--dump-before=getppid``, so each block's count lands in its own dump file.

    python bench/instructions.py [--calls 10] [--rounds 3] [--peer openllmetry|openlit] [--pricing-json FILE]

runs itself under valgrind (it must be installed: ``apt-get install valgrind``)
and prints, per workload, instructions per call uninstrumented, added by each
tool, and inferops' ratio to the peer. Instructions are not seconds (a cache
miss costs more than an add), but for the same interpreter running similar
Python code the ratios track CPU time closely; report both.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def callgrind(argv: list[str], prefix: str = "inferops-callgrind-") -> tuple[str, dict[int, int]] | None:
    """Run ``python *argv`` under callgrind with a dump before each ``os.getppid()``: its stdout and the
    instructions of each dump (dump number -> count), or None (said on stderr) when valgrind failed.
    Shared by this script and ``first_chunk.py``."""
    out_dir = tempfile.mkdtemp(prefix=prefix)
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=getppid", "--collect-systime=no",
                           f"--callgrind-out-file={out_dir}/cg.out", sys.executable, *argv],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if proc.returncode:
        print(f"valgrind run failed ({proc.returncode}); files in {out_dir}", file=sys.stderr)
        return None
    counts: dict[int, int] = {}
    for path in glob.glob(f"{out_dir}/cg.out.*"):
        with open(path) as f:
            counts[int(path.rsplit(".", 1)[1])] = next(int(x.split()[1]) for x in f if x.startswith("totals:"))
    return proc.stdout, counts


def child(args: argparse.Namespace) -> None:
    """Runs under callgrind: blocks of calls separated by ``os.getppid()`` marks; prints the block order."""
    sys.path.insert(0, HERE)
    import instrumentation as bench  # bench/instrumentation.py (its workloads and tools)
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from inferops.processors.exposition import OpenMetricsReader
    from inferops.settings import Settings

    warnings.simplefilter("ignore", DeprecationWarning)
    server = subprocess.Popen([sys.executable, "-c", bench.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip()
    order: list[tuple[str, str]] = []
    try:
        tp = TracerProvider()
        # Spans are exported at the end of each block (force_flush below), never by the processor's 5 s timer:
        # under valgrind's slowed clock that timer fires a varying number of times per block and moves both
        # tools' counts by tens of thousands of instructions from run to run.
        tp.add_span_processor(BatchSpanProcessor(bench.DropExporter(), schedule_delay_millis=3_600_000))
        mp = MeterProvider(metric_readers=[OpenMetricsReader()])
        # Under valgrind time runs ~50x slower, so the 0.5 s metric batches would hold a call or two where
        # the same calls in real time share one batch: batches end with each block instead (flush below).
        settings = Settings(provider_endpoints={base + "/openai/v1": "openai", base + "/anthropic": "anthropic"},
                            metrics_batch_interval_seconds=3600.0)
        if args.variant == "full":
            ours = bench.Inferops(tp, mp, settings)
        else:  # diagnostics: what the span (or the metrics) of a call cost, by switching them off
            from opentelemetry.metrics import NoOpMeterProvider
            from opentelemetry.trace import NoOpTracerProvider
            ours = bench.Inferops(NoOpTracerProvider() if "nospan" in args.variant else tp,
                                  NoOpMeterProvider() if "nometrics" in args.variant else mp, settings)
        tools = [ours]
        if args.peer == "openllmetry":
            tools.append(bench.OpenLLMetry(tp, mp))
        elif args.peer == "openlit":
            tools.append(bench.OpenLIT(tp, mp, args.pricing_json))
        if args.peer_last and len(tools) > 1:
            # Measured after every baseline block, switched on once and never off: an uninstrument that
            # leaves work behind (wrappers still in place) would otherwise be counted in the baseline.
            tools[1].reversible = False
        loads, _ = bench.workloads(base)
        if args.only:
            loads = {k: v for k, v in loads.items() if re.search(args.only, k)}

        def measured(name: str, tool: str, fn) -> None:
            bench.run_block(fn, 3)  # warm: first-call imports, caches, connection
            # Empty the batch span processor's queue and our metric batch before counting.
            tp.force_flush()
            ours.inst.flush_metrics()
            os.getppid()
            bench.run_block(fn, args.calls)
            tp.force_flush()  # the spans of this block are exported (and counted) inside the block
            ours.inst.flush_metrics()
            os.getppid()
            order.append((name, tool))

        for phase in ("reversible", "last"):
            for name, fn in loads.items():
                for _ in range(args.rounds):  # interleaved rounds; the parent takes the median per tool
                    if phase == "reversible":
                        measured(name, "none", fn)
                    for tool in tools:
                        if (phase == "reversible") != tool.reversible:
                            continue
                        tool.on()
                        measured(name, tool.name, fn)
                        if tool.reversible:
                            tool.off()
        tp.shutdown()
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    for name, tool in order:
        print(f"BLOCK\t{name}\t{tool}", flush=True)


def parent(args: argparse.Namespace) -> int:
    argv = [os.path.abspath(__file__), "--child", "--calls", str(args.calls), "--rounds", str(args.rounds),
            "--peer", args.peer]
    if args.pricing_json:
        argv += ["--pricing-json", args.pricing_json]
    if args.only:
        argv += ["--only", args.only]
    if args.peer_last:
        argv += ["--peer-last"]
    argv += ["--variant", args.variant]
    run = callgrind(argv)
    if run is None:
        return 1
    stdout, counts = run
    blocks = [line.split("\t")[1:] for line in stdout.splitlines() if line.startswith("BLOCK\t")]
    # Dumps come in pairs per block: the first ends the warm-up, the second ends the measured calls.
    samples: dict[str, dict[str, list[float]]] = {}
    for i, (name, tool) in enumerate(blocks):
        samples.setdefault(name, {}).setdefault(tool, []).append(counts[2 * i + 2] / args.calls)
    # Sync calls repeat to the instruction; async ones vary with the event loop's wake-ups: median of rounds.
    per_call = {name: {tool: statistics.median(v) for tool, v in by.items()} for name, by in samples.items()}
    import openai
    import anthropic
    tools = ["inferops"] + ([args.peer] if args.peer != "none" else [])
    print(f"instructions per call (callgrind, median of {args.rounds} blocks of {args.calls} calls; python {sys.version.split()[0]}, "
          f"openai {openai.__version__}, anthropic {anthropic.__version__})\n")
    sys.path.insert(0, HERE)
    from instrumentation import print_overhead_table  # bench/instrumentation.py

    print_overhead_table(per_call, tools, "uninstrumented", lambda x: f"{x / 1e3:,.0f}k")
    if args.show_blocks:  # the spread behind each median (async blocks move with the event loop's wake-ups)
        print("\nper block, in run order (instructions per call):")
        for name, by in samples.items():
            for tool, values in by.items():
                print(f"  {name:26s} {tool:14s} " + " ".join(f"{v / 1e3:,.0f}k" for v in values))
    return 0


def inprocess(args: argparse.Namespace) -> int:
    """``--inprocess``: inferops' own work without network or SDK (bench/instructions_inprocess.py)."""
    print(f"in-process instructions (callgrind; {args.calls} calls per block), added by inferops:\n")
    print("| variant | non-streamed call | openai stream50 | anthropic stream50 | to first chunk, openai | "
          "to first chunk, anthropic |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in ("full", "nospan", "nometrics", "nospan-nometrics"):
        run = callgrind([os.path.join(HERE, "instructions_inprocess.py"), variant, str(args.calls)])
        if run is None:
            return 1
        stdout, counts = run
        seq = [counts[k] for k in sorted(counts)]
        lines = [line.split("\t") for line in stdout.splitlines() if "\t" in line]
        blocks = [x for x in lines if x[0] == "BLOCK"]
        firsts = [x for x in lines if x[0] == "FIRST"]
        # Marks in order: 2 per block (end of the gap before it, end of the block), then 2 per first-chunk call.
        per: dict[tuple[str, str], float] = {}
        i = 0
        for _, name, tool in blocks:
            per[(name, tool)] = seq[i + 1] / args.calls
            i += 2
        for _, kind, tool in firsts:
            inside = [seq[i + 2 * k + 1] for k in range(args.calls)]
            per[(f"first {kind}", tool)] = statistics.median(inside)
            i += 2 * args.calls
        cells = [per[(n, "inferops")] - per[(n, "none")] for n in
                 ("plain", "openai stream50", "anthropic stream50", "first openai", "first anthropic")]
        print(f"| {variant} | " + " | ".join(f"{c / 1e3:,.0f}k" for c in cells) + " |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved blocks per tool and workload (median)")
    ap.add_argument("--peer", choices=["none", "openllmetry", "openlit"], default="none")
    ap.add_argument("--pricing-json", default="")
    ap.add_argument("--show-blocks", action="store_true", help="also print every block's count per call")
    ap.add_argument("--only", default="", help="regular expression: only the workloads it matches")
    ap.add_argument("--variant", default="full", choices=["full", "nospan", "nometrics", "nospan-nometrics"],
                    help="diagnostics: inferops with spans and/or metrics going to no-op providers")
    ap.add_argument("--peer-last", action="store_true",
                    help="measure the peer after all baseline and inferops blocks, never switching it off")
    ap.add_argument("--inprocess", action="store_true",
                    help="inferops' own work only (no network, no SDK), split by no-op span/metric providers, "
                         "and the instructions in front of the first chunk")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    if args.inprocess:
        return inprocess(args)
    return parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
