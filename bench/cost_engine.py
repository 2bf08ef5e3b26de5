"""Benchmark: microseconds per priced usage record (run by hand: `python bench/cost_engine.py`).

Prices a realistic mix of 21 usage records (OpenAI, Azure, Anthropic, Bedrock, Gemini, Vertex,
Mistral, Cohere, DeepSeek, xAI, a self-hosted override; cache reads and writes, reasoning,
audio, batch/flex/priority tiers, long-context requests, a discount, an unpriced model) with the
built-in catalog and a small overrides file.

* warm: the resolution cache is warm (the steady state of a running service); target < 5 us.
* cold: every record resolves from scratch (resolver and price-set caches cleared before each
  record), i.e. the cost of the first call of a new (provider, model).

Not part of the test suite: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time

from inferops.processors.engine import CostEngine
from inferops.processors.overrides import parse_overrides_text
from inferops.processors.usage import UsageRecord as U

OVERRIDES = """
models:
  - provider: vllm
    model: llama-3.1-8b-instruct
    self_hosted: true
    prices: {input: 0.05, output: 0.10}
aliases:
  - provider: azure.ai.openai
    name: prod-gpt4o
    model: gpt-4o-2024-08-06
discounts:
  - provider: anthropic
    percent: 10
"""

RECORDS = [
    U("openai", "gpt-4o-2024-08-06", input_tokens=2400, cache_read_tokens=1024, output_tokens=350),
    U("openai", "gpt-4o-mini", input_tokens=800, output_tokens=120),
    U("openai", "o4-mini-2025-04-16", input_tokens=5000, output_tokens=3000, reasoning_tokens=2200,
      service_tier="flex"),
    U("openai", "gpt-5", input_tokens=12000, cache_read_tokens=8000, output_tokens=900, reasoning_tokens=500,
      service_tier="priority"),
    U("openai", "gpt-5.4", input_tokens=300_000, cache_read_tokens=100_000, output_tokens=2000),
    U("openai", "gpt-4o-audio-preview-2024-12-17", input_tokens=1000, audio_input_tokens=400, output_tokens=600,
      audio_output_tokens=300),
    U("openai", "text-embedding-3-small", operation="embeddings", input_tokens=8000),
    U("azure.ai.openai", "prod-gpt4o", input_tokens=3000, cache_read_tokens=1000, output_tokens=400),
    U("anthropic", "claude-sonnet-4-5-20250929", input_tokens=12000, cache_read_tokens=8000,
      cache_write_5m_tokens=1500, cache_write_1h_tokens=500, output_tokens=900, reasoning_tokens=300),
    U("anthropic", "claude-haiku-4-5", input_tokens=20000, output_tokens=1000, service_tier="batch"),
    U("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", input_tokens=9000, cache_read_tokens=6000,
      output_tokens=700),
    U("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", input_tokens=250_000, output_tokens=4000),
    U("gcp.gemini", "models/gemini-2.5-flash", input_tokens=10000, cache_read_tokens=4000, output_tokens=3000,
      reasoning_tokens=2000),
    U("gcp.gemini", "gemini-2.5-pro", input_tokens=5000, output_tokens=1000, service_tier="batch"),
    U("gcp.vertex_ai", "claude-sonnet-4-5@20250929", input_tokens=5000, cache_read_tokens=2000,
      cache_write_5m_tokens=1000, output_tokens=600),
    U("mistral_ai", "mistral-large-latest", input_tokens=3000, output_tokens=800),
    U("cohere", "command-a-03-2025", input_tokens=4000, output_tokens=600),
    U("deepseek", "deepseek-chat", input_tokens=10000, cache_read_tokens=9000, output_tokens=500),
    U("x_ai", "grok-4.20", input_tokens=220_000, output_tokens=1000),
    U("vllm", "llama-3.1-8b-instruct", input_tokens=1500, output_tokens=400, self_hosted=True),
    U("openai", "unknown-model-x", input_tokens=100, output_tokens=10),  # unpriced
]


def warm_us(engine: CostEngine, rounds: int) -> float:
    price = engine.price
    records = RECORDS
    for r in records:  # warm the caches
        price(r)
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for r in records:
                price(r)
        best.append((time.perf_counter() - t0) / (rounds * len(records)) * 1e6)
    return min(best), statistics.median(best)


def cold_us(engine: CostEngine, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        for r in RECORDS:
            engine.resolver.clear_cache()
            engine._price_sets.clear()
            engine._discount_plan.clear()
            t0 = time.perf_counter()
            engine.price(r)
            samples.append((time.perf_counter() - t0) * 1e6)
    return min(samples), statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rounds", type=int, default=2000, help="passes over the 21 records per timing (warm)")
    args = ap.parse_args()
    engine = CostEngine(overrides=parse_overrides_text(OVERRIDES, "bench-overrides.yaml"))
    statuses = [engine.price(r).status for r in RECORDS]
    w_best, w_med = warm_us(engine, args.rounds)
    c_best, c_med = cold_us(engine, max(5, args.rounds // 100))
    print(f"cost engine: {len(RECORDS)} records ({statuses.count('priced')} priced, "
          f"{statuses.count('unpriced')} unpriced), catalog {engine.version}")
    print(f"{'case':<34} {'best us/record':>15} {'median':>10}")
    print(f"{'warm resolution cache':<34} {w_best:>15.2f} {w_med:>10.2f}")
    print(f"{'cold (resolve every record)':<34} {c_best:>15.2f} {c_med:>10.2f}")
    print(f"{'cold / warm':<34} {c_med / w_med:>15.1f}x")
    print(f"target < 5 us warm: {'met' if w_med < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
