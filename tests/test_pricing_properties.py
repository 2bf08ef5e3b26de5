"""Property tests of the cost engine over the real catalog (hypothesis).

Token counts are drawn as the billing buckets that partition a call (uncached input,
cache read, cache write 5m/1h, audio/image input; text output, reasoning, audio/image
output); the usage record is built from them the way the adapters do (``input_tokens``
includes the cache, ``output_tokens`` includes reasoning), so every record is valid.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferops.names import CostType, PricingStatus, ServiceTier
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord

CATALOG_PATH = Path(__file__).resolve().parent.parent / "processors" / "data" / "catalog.json"
ENTRIES = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))["entries"]
ENGINE = CostEngine()

BUCKETS = ("text_in", "cache_read", "cache_write_5m", "cache_write_1h", "audio_in", "image_in",
           "text_out", "reasoning", "audio_out", "image_out", "requests")


def _monotone_entry(raw: dict) -> bool:
    """True when no long-context price is below the price it replaces.

    A handful of source entries price some component *lower* above the threshold (e.g. audio
    input on one Vertex model); for those, crossing the threshold can lower the bill, which is
    the provider's price list, not an engine bug. They are left out of the monotonicity property
    (they stay in every other property).
    """
    for tier in raw.get("tiers", ()):
        for service, comps in tier["prices"].items():
            base = {**raw["prices"].get("standard", {}), **raw["prices"].get(service, {})}
            if any(price < base.get(comp, 0.0) for comp, price in comps.items()):
                return False
    return True


ALL_KEYS = sorted(ENTRIES)
MONOTONE_KEYS = [k for k in ALL_KEYS if _monotone_entry(ENTRIES[k])]
# Entries with long-context tiers, so thresholds get crossed often.
TIERED_KEYS = [k for k in MONOTONE_KEYS if ENTRIES[k].get("tiers")]

counts = st.integers(min_value=0, max_value=400_000)
small = st.integers(min_value=0, max_value=5_000)
bucket_strategy = st.fixed_dictionaries({
    "text_in": counts, "cache_read": counts, "cache_write_5m": small, "cache_write_1h": small,
    "audio_in": small, "image_in": small, "text_out": small, "reasoning": small, "audio_out": small,
    "image_out": small, "requests": st.integers(min_value=0, max_value=5),
})
tiers = st.sampled_from(ServiceTier.ALL)


def record(key: str, b: dict[str, int], tier: str) -> UsageRecord:
    e = ENTRIES[key]
    return UsageRecord(
        provider=e["provider"], model=e["model"],
        input_tokens=b["text_in"] + b["cache_read"] + b["cache_write_5m"] + b["cache_write_1h"]
        + b["audio_in"] + b["image_in"],
        cache_read_tokens=b["cache_read"], cache_write_5m_tokens=b["cache_write_5m"],
        cache_write_1h_tokens=b["cache_write_1h"], audio_input_tokens=b["audio_in"],
        image_input_tokens=b["image_in"],
        output_tokens=b["text_out"] + b["reasoning"] + b["audio_out"] + b["image_out"],
        reasoning_tokens=b["reasoning"], audio_output_tokens=b["audio_out"], image_output_tokens=b["image_out"],
        requests=b["requests"], service_tier=tier,
    )


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(key=st.sampled_from(ALL_KEYS), b=bucket_strategy, tier=tiers)
def test_cost_never_negative_and_components_sum_to_total(key, b, tier):
    r = ENGINE.price(record(key, b, tier))
    assert r.status in (PricingStatus.PRICED, PricingStatus.PARTIAL)
    assert r.catalog_key
    assert r.total is not None and r.total >= 0
    assert set(r.components) == set(CostType.ALL)
    assert all(v >= 0 for v in r.components.values())
    assert abs(sum(r.components.values()) - r.total) <= 1e-12 * max(1.0, r.total)
    assert r.cache_read_savings >= 0


@FAST
@given(key=st.sampled_from(MONOTONE_KEYS + TIERED_KEYS * 3), b=bucket_strategy, tier=tiers,
       bucket=st.sampled_from(BUCKETS), extra=st.integers(min_value=1, max_value=300_000))
def test_cost_monotone_in_every_token_count(key, b, tier, bucket, extra):
    before = ENGINE.price(record(key, b, tier))
    more = dict(b)
    more[bucket] += extra
    after = ENGINE.price(record(key, more, tier))
    assert after.total >= before.total - 1e-12 * max(1.0, before.total), (key, bucket, before, after)


@FAST
@given(key=st.sampled_from(ALL_KEYS), b=bucket_strategy)
def test_record_with_more_of_each_field_directly_is_monotone(key, b):
    """The same property on the raw record fields: adding to input (or output) alone never lowers the cost."""
    u = record(key, b, "standard")
    base = ENGINE.price(u).total
    u.input_tokens += 1000 if not ENTRIES[key].get("tiers") or _monotone_entry(ENTRIES[key]) else 0
    u.output_tokens += 1000
    assert ENGINE.price(u).total >= base - 1e-12 * max(1.0, base)


@FAST
@given(model=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:/@", min_size=1, max_size=40),
       provider=st.sampled_from(["openai", "anthropic", "aws.bedrock", "gcp.gemini", "vllm", "nobody", ""]),
       b=bucket_strategy)
def test_unpriced_is_never_zero(model, provider, b):
    u = record(ALL_KEYS[0], b, "standard")
    u.provider, u.model = provider, "zz-unknown-" + model
    r = ENGINE.price(u)
    if r.catalog_key:  # an odd string may still resolve through a real entry; then it is priced
        assert r.total is not None and r.status != PricingStatus.UNPRICED
    else:
        assert r.status == PricingStatus.UNPRICED
        assert r.total is None
        assert not r.priced


@FAST
@given(key=st.sampled_from(ALL_KEYS), b=bucket_strategy, tier=tiers,
       pct=st.floats(min_value=0, max_value=100, allow_nan=False))
def test_discount_scales_every_component(key, b, tier, pct):
    e = ENTRIES[key]
    eng = _discount_engine(e["provider"], pct)
    u = record(key, b, tier)
    plain, discounted = ENGINE.price(u), eng.price(u)
    factor = 1 - pct / 100
    assert discounted.total == _approx(plain.total * factor)
    for name, value in plain.components.items():
        assert discounted.components[name] == _approx(value * factor)


_DISCOUNT_ENGINES: dict[tuple[str, float], CostEngine] = {}


def _discount_engine(provider: str, pct: float) -> CostEngine:
    from inferops.processors.overrides import parse_overrides_text

    key = (provider, pct)
    if key not in _DISCOUNT_ENGINES:
        if len(_DISCOUNT_ENGINES) > 20:
            _DISCOUNT_ENGINES.clear()
        _DISCOUNT_ENGINES[key] = CostEngine(overrides=parse_overrides_text(
            f"discounts:\n  - provider: '{provider}'\n    percent: {pct!r}\n", "d.yaml"))
    return _DISCOUNT_ENGINES[key]


def _approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-15)
