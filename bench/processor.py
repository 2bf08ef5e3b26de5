"""Throughput and memory of ``inferops serve``'s processing path.

Throughput (in process, one core): 512-span batches of GenAI spans (a mix of
semconv, OpenLLMetry, OpenLIT and Bedrock shapes, ~20 attributes each, like
real instrumentations emit) through

* **baseline**: protobuf decode + encode of the same bytes (the floor for any
  Python OTLP processor), and
* **inferops**: decode + drop invalid spans + price + enrich + encode
  (``Service.export`` without the HTTP layer), and
* **inferops + metrics**: the same plus recording the inferops_* and
  gen_ai.client.* metrics through ``Enricher.commit`` /
  ``CostRecorder.record_calls`` (what the service does for each accepted
  request; its three per-request ``inferops_serve_*`` adds are left out, they
  are ~0.1 us per span), and
* **inferops fast path**: what ``Service.export`` does for protobuf requests
  since the compiled scanner (``processors/serve/_otlpscan.c``): price +
  enrich + drop invalid spans + re-encode on the raw bytes, then record the
  inferops_* metrics (``FastPath.process`` + ``FastPath.commit``), and
* a diagnostic figure with the gen_ai.client.* histograms (on the Python path:
  the fast path is off while ``INFEROPS_SERVE_SEMCONV_METRICS`` is on).

Spans/second/core are CPU seconds (``time.process_time``) over the same
batches in the same run; the ratio inferops/baseline is the figure to watch
(target >= 50%).

Memory: the real ``inferops serve`` process under sustained load for
``--memory-seconds`` (batches posted back to back, forwarded to a local
receiver), RSS sampled every second; flat = no growth after warm-up.

Run: ``python bench/processor.py [--batches 40] [--memory-seconds 20]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from inferops.processors.engine import CostEngine
from inferops.processors.recorder import CostRecorder
from inferops.processors.serve.enrich import Enricher
from inferops.processors.serve.extract import AttributionResolver
from inferops.processors.serve.fastpath import FastPath
from inferops.processors.serve.fastpath import available as fast_path_available
from inferops.processors.serve.server import _drop_invalid_spans
from inferops.processors.serve.testing import OtlpReceiver, ServeProcess, make_request, make_span, post
from inferops.settings import load_settings

SHAPES = [
    {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
     "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.cache_read.input_tokens": 256},
    {"gen_ai.system": "Anthropic", "llm.request.type": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
     "gen_ai.response.model": "claude-sonnet-4-5-20250929", "llm.usage.total_tokens": 1500,
     "gen_ai.usage.cache_read_input_tokens": 300},
    {"gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
     "gen_ai.usage.cost": 0.0003, "telemetry.sdk.name": "openlit"},
    {"gen_ai.system": "aws.bedrock", "gen_ai.operation.name": "chat",
     "gen_ai.request.model": "anthropic.claude-3-5-haiku-20241022-v1:0"},
]
COMMON = {"server.address": "api.example.com", "server.port": 443, "gen_ai.response.id": "resp_0123456789abcdef",
          "gen_ai.response.finish_reasons": "stop", "gen_ai.request.max_tokens": 1024,
          "gen_ai.request.temperature": 0.7, "http.response.status_code": 200, "inferops.team": "search",
          "inferops.feature": "answer", "thread.name": "worker-3", "code.function": "answer_question"}


def batch(rng: random.Random, n: int = 512) -> bytes:
    spans = []
    for i in range(n):
        attrs = dict(rng.choice(SHAPES))
        attrs.update(COMMON)
        inp = rng.randint(300, 5000)
        if attrs.get("gen_ai.system") == "Anthropic":
            attrs["gen_ai.usage.input_tokens"] = inp
            attrs["gen_ai.usage.output_tokens"] = rng.randint(10, 800)
        else:
            attrs["gen_ai.usage.input_tokens" if i % 2 else "gen_ai.usage.prompt_tokens"] = inp
            attrs["gen_ai.usage.output_tokens" if i % 2 else "gen_ai.usage.completion_tokens"] = rng.randint(10, 800)
        spans.append(make_span(attrs))
    req = make_request(spans, resource={"service.name": "checkout", "deployment.environment.name": "prod",
                                        "team": "payments", "telemetry.sdk.language": "java"})
    return req.SerializeToString()


def _enricher(settings, *, semconv_histograms: bool | None = None) -> Enricher:
    """An enricher wired like ``Service`` (same engine, recorder, resolver; OpenMetrics reader).

    ``semconv_histograms`` defaults to the service's setting (``serve_semconv_metrics``, off).
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from inferops.processors.exposition import OpenMetricsReader
    meter = MeterProvider(metric_readers=[OpenMetricsReader()]).get_meter("bench")
    if semconv_histograms is None:
        semconv_histograms = settings.serve_semconv_metrics
    recorder = CostRecorder(meter, label_value_cap=settings.label_value_cap, user_label=settings.user_label,
                            semconv_histograms=semconv_histograms)
    return Enricher(CostEngine.from_settings(settings), recorder,
                    AttributionResolver(settings.baggage_keys, settings.resource_keys, settings.required_tags),
                    reprice=settings.serve_reprice)


def throughput(batches: list[bytes], with_metrics: bool
               ) -> tuple[float, float, float | None, float | None, float | None]:
    settings = load_settings({})
    enricher = _enricher(settings)
    fast = FastPath(_enricher(settings)) if fast_path_available() else None
    spans = 512 * len(batches)

    def fast_once() -> float:
        t = time.process_time()
        for b in batches:
            res = fast.process(b)
            fast.commit(res)
        return time.process_time() - t

    def base_once() -> float:
        t = time.process_time()
        for b in batches:
            r = ExportTraceServiceRequest()
            r.ParseFromString(b)
            r.SerializeToString()
        return time.process_time() - t

    def ours_once(metrics: bool, enricher: Enricher = enricher) -> float:
        t = time.process_time()
        for b in batches:
            r = ExportTraceServiceRequest()
            r.ParseFromString(b)
            _drop_invalid_spans(r)
            res = enricher.process(r)
            r.SerializeToString()
            if metrics:
                enricher.commit(res)
        return time.process_time() - t

    with_semconv = _enricher(settings, semconv_histograms=True)
    ours_once(True)  # warm caches (resolver, label guard, shape memos)
    ours_once(True, with_semconv)
    if fast is not None:
        fast_once()
    # Interleaved rounds, best of five each: the machine is shared, so the figures of one round are
    # taken under the same load.
    base = ours = full = part = quick = float("inf")
    for _ in range(5):
        base = min(base, base_once())
        if fast is not None:
            quick = min(quick, fast_once())
        ours = min(ours, ours_once(False))
        if with_metrics:
            full = min(full, ours_once(True))
            part = min(part, ours_once(True, with_semconv))
    quick_rate = spans / quick if fast is not None else None
    if not with_metrics:
        return spans / base, spans / ours, None, None, quick_rate
    return spans / base, spans / ours, spans / full, spans / part, quick_rate


def memory(seconds: float) -> list[tuple[float, int]]:
    receiver = OtlpReceiver()
    proc = ServeProcess(downstream=receiver.url)
    rng = random.Random(7)
    bodies = [batch(rng, 128) for _ in range(8)]
    stop = threading.Event()
    samples: list[tuple[float, int]] = []

    def load() -> None:
        i = 0
        while not stop.is_set():
            post(proc.traces_url, bodies[i % len(bodies)])
            i += 1

    t = threading.Thread(target=load, daemon=True)
    start = time.monotonic()
    t.start()
    try:
        while time.monotonic() - start < seconds:
            time.sleep(1.0)
            with open(f"/proc/{proc.proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            samples.append((time.monotonic() - start, rss))
    finally:
        stop.set()
        t.join(10)
        proc.terminate()
        proc.close()
        receiver.stop()
    print(f"  spans delivered downstream during the run: {receiver.total()}")
    return samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--memory-seconds", type=float, default=20.0)
    args = ap.parse_args()
    rng = random.Random(42)
    batches = [batch(rng) for _ in range(args.batches)]
    size = statistics.mean(len(b) for b in batches)
    print(f"{args.batches} batches x 512 GenAI spans, {size / 1024:.0f} KiB per batch (protobuf)")
    base, ours, full, part, quick = throughput(batches, with_metrics=True)
    print(f"baseline decode+encode          : {base:12,.0f} spans/s/core")
    if quick:
        print(f"inferops fast path + metrics    : {quick:12,.0f} spans/s/core  ratio {quick / base:.1%}"
              "   <- what the service does (protobuf)")
    else:
        print("inferops fast path              : not built (no C compiler at install): the service uses Python")
    print(f"Python path: decode+price+enrich+enc: {ours:12,.0f} spans/s/core  ratio {ours / base:.1%}")
    if full:
        print(f"  ... + inferops_* metrics      : {full:12,.0f} spans/s/core  ratio {full / base:.1%}"
              "   <- JSON bodies, fast path off")
        print(f"  ... + gen_ai.client.* histograms too (INFEROPS_SERVE_SEMCONV_METRICS=true): {part:,.0f} "
              f"spans/s/core  ratio {part / base:.1%}")
    if args.memory_seconds > 0:
        samples = memory(args.memory_seconds)
        print("RSS of `inferops serve` under sustained load (s, MiB):")
        print("  " + ", ".join(f"{t:.0f}s={kb / 1024:.1f}" for t, kb in samples))
        if len(samples) >= 6:
            warm = samples[len(samples) // 3:]
            print(f"  after warm-up: min {min(k for _, k in warm) / 1024:.1f} MiB, "
                  f"max {max(k for _, k in warm) / 1024:.1f} MiB, "
                  f"growth {(warm[-1][1] - warm[0][1]) / 1024:+.1f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based")
    main()
