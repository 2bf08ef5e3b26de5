"""`inferops advise` against a real Prometheus with known traffic and a small hand-made catalog.

Window: 10 days ending 2026-10-31T00:00Z (240 hourly samples), projected x3 to 30 days.

* qa on big-model: input 1000/h, cache_read 500/h, output 100/h -> 720,000 / 360,000 / 72,000 a month.
  big-model: 720000 x 10e-6 + 360000 x 5e-6 + 72000 x 30e-6 = 7.2 + 1.8 + 2.16 = 11.16
  small-model (cache reads at its input price): 0.36 + 0.18 + 0.144 = 0.684 -> saves 10.476
* summarize on mid-model: input 2000/h -> 1,440,000: mid 2.88, small 0.72 -> saves 2.16
* embed on embed-large (embedding mode): 10000/h -> 7,200,000: 0.936 vs embed-small 0.144 -> saves 0.792

Cheaper entries that must NOT be proposed: one without vision, one deprecated before the
window's end, one with a smaller context window, a dated snapshot, another provider's model.
"""

from __future__ import annotations

import json

import pytest

from test_report_prom import hourly, start_prometheus, ts

pytestmark = pytest.mark.e2e

CAPS = ["vision", "function_calling"]


def entry(model, input_, output, *, caps=CAPS, max_input=128000, mode="chat", provider="openai", **extra):
    prices = {"input": input_ * 1e-6}
    if output is not None:
        prices["output"] = output * 1e-6
    if "cache_read" in extra:
        prices["cache_read"] = extra.pop("cache_read") * 1e-6
    return {"provider": provider, "model": model, "mode": mode, "prices": {"standard": prices},
            "max_input_tokens": max_input, "capabilities": caps, **extra}


CATALOG = {"format": 1, "version": "advise-test", "currency": "USD", "entries": {
    "big-model": entry("big-model", 10, 30, cache_read=5),
    "mid-model": entry("mid-model", 2, 8, cache_read=1),
    "small-model": entry("small-model", 0.5, 2, caps=[*CAPS, "reasoning"], max_input=200000),
    "tiny-no-vision": entry("tiny-no-vision", 0.1, 0.4, caps=["function_calling"]),
    "tiny-deprecated": entry("tiny-deprecated", 0.1, 0.4, deprecation_date="2026-10-01"),
    "tiny-short": entry("tiny-short", 0.1, 0.4, max_input=32000),
    "tiny-2024-05-01": entry("tiny-2024-05-01", 0.1, 0.4),
    "cheap-claude": entry("cheap-claude", 0.1, 0.4, provider="anthropic"),
    "embed-large": entry("embed-large", 0.13, None, caps=[], mode="embedding"),
    "embed-small": entry("embed-small", 0.02, None, caps=[], mode="embedding"),
}}


def history():
    start, end = ts(2026, 10, 20, 22), ts(2026, 10, 31, 1)
    n = (end - start) // 3600 + 1
    base = {"provider": "openai", "operation": "chat", "team": "t", "project": "p", "environment": "prod",
            "service_name": "api", "usage_source": "provider"}

    def tok(feature, model, ttype, per_hour):
        return ({**base, "feature": feature, "model": model, "token_type": ttype}, hourly(start, n, 0.0, per_hour))

    return {"inferops_tokens": [
        tok("qa", "big-model", "input", 1000.0), tok("qa", "big-model", "cache_read", 500.0),
        tok("qa", "big-model", "output", 100.0), tok("summarize", "mid-model", "input", 2000.0),
        tok("embed", "embed-large", "input", 10000.0),
    ]}


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = start_prometheus(tmp_path_factory, "advise", history())
    yield server
    server.stop()


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    monkeypatch.setenv("INFEROPS_CATALOG_FILE", str(path))
    return path


def test_ranks_same_tier_candidates_by_monthly_savings(run_cli, prom, catalog):
    status, out, err = run_cli("advise", "--prometheus", prom.url, "--at", "2026-10-31T00:00:00Z", "--window", "10d",
                               "--format", "json")
    assert status == 0, err
    advice = json.loads(out)["advice"]
    got = [(a["feature"], a["model"], a["candidate"]) for a in advice]
    assert got == [("qa", "big-model", "small-model"), ("summarize", "mid-model", "small-model"),
                   ("embed", "embed-large", "embed-small")]
    qa, summarize, embed = advice
    assert qa["monthly_tokens"] == {"input": 720_000, "cache_read": 360_000, "output": 72_000}
    assert qa["current_monthly_usd"] == pytest.approx(11.16)
    assert qa["candidate_monthly_usd"] == pytest.approx(0.684)
    assert qa["savings_monthly_usd"] == pytest.approx(10.476)
    assert (summarize["current_monthly_usd"], summarize["savings_monthly_usd"]) == (pytest.approx(2.88),
                                                                                     pytest.approx(2.16))
    assert embed["savings_monthly_usd"] == pytest.approx(0.792)


def test_table_lists_alternatives_and_changes_nothing(run_cli, prom, catalog):
    status, out, err = run_cli("advise", "--prometheus", prom.url, "--at", "2026-10-31T00:00:00Z", "--window", "10d",
                               "--per-model", "3")
    assert status == 0, err
    assert "Nothing was changed" in out and "dry_run: true" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("qa ")]
    # Both cheaper same-tier models, cheapest first; none of the excluded ones.
    assert [ln.split()[5] for ln in lines] == ["small-model", "mid-model"]
    assert "10.48" in lines[0] and "8.78" in lines[1]  # 11.16 - 2.376
    for excluded in ("tiny-no-vision", "tiny-deprecated", "tiny-short", "tiny-2024-05-01", "cheap-claude"):
        assert excluded not in out
