"""Price overrides: every kind of bad file gives a clear error; the shipped example works as documented."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from inferops.names import PricingStatus
from inferops.processors.engine import CostEngine
from inferops.processors.overrides import load_overrides
from inferops.processors.usage import UsageRecord
from inferops.yamlfile import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "prices.example.yaml"
ENTRIES = json.loads((REPO / "processors" / "data" / "catalog.json").read_text(encoding="utf-8"))["entries"]

GOOD_MODEL = """\
models:
  - provider: vllm
    model: m1
    prices: {input: 1, output: 2}
"""

# (id, file text, line, field, given value as shown, what was expected)
BAD_FILES = [
    ("unknown top-level key", "model:\n  - provider: x\n", 1, "model", "'model'", "expected one of"),
    ("unknown model key", "models:\n  - provider: vllm\n    model: m\n    price: {input: 1}\n", 4,
     "models[0].price", "'price'", "expected one of"),
    ("wrong type for prices", "models:\n  - provider: vllm\n    model: m\n    prices: cheap\n", 4,
     "models[0].prices", "'cheap'", "expected a mapping"),
    ("negative price", "models:\n  - provider: vllm\n    model: m\n    prices:\n      input: -1\n", 5,
     "models[0].prices.input", "-1", "expected a number finite and >= 0"),
    ("price not a number", "models:\n  - provider: vllm\n    model: m\n    prices: {input: cheap}\n", 4,
     "models[0].prices.input", "'cheap'", "expected a number"),
    ("infinite price", "models:\n  - provider: vllm\n    model: m\n    prices: {input: .inf}\n", 4,
     "models[0].prices.input", "inf", "finite"),
    ("unknown component", "models:\n  - provider: vllm\n    model: m\n    prices: {inputs: 1}\n", 4,
     "models[0].prices.inputs", "'inputs'", "expected one of: input, output"),
    ("percent over 100", "discounts:\n  - provider: openai\n    percent: 150\n", 3,
     "discounts[0].percent", "150", "<= 100"),
    ("negative percent", "discounts:\n  - provider: openai\n    percent: -5\n", 3,
     "discounts[0].percent", "-5", ">= 0"),
    ("percent wrong type", "discounts:\n  - provider: openai\n    percent: ten\n", 3,
     "discounts[0].percent", "'ten'", "expected a number"),
    ("percent missing", "discounts:\n  - provider: openai\n    model: gpt-4o\n", 2,
     "discounts[0].percent", "", "missing required field 'percent'"),
    ("impossible date", GOOD_MODEL + "    effective_from: 2026-02-30\n", 5,
     "models[0].effective_from", "'2026-02-30'", "expected a date YYYY-MM-DD"),
    ("month 13", GOOD_MODEL + "    effective_from: 2026-13-01\n", 5,
     "models[0].effective_from", "'2026-13-01'", "expected a date YYYY-MM-DD"),
    ("words for a date", "discounts:\n  - provider: openai\n    percent: 5\n    effective_from: next week\n", 4,
     "discounts[0].effective_from", "'next week'", "expected a date YYYY-MM-DD"),
    ("missing model", "models:\n  - provider: vllm\n    prices: {input: 1}\n", 2,
     "models[0].model", "", "missing required field 'model'"),
    ("missing provider", "aliases:\n  - name: prod\n    model: gpt-4o\n", 2,
     "aliases[0].provider", "", "missing required field 'provider'"),
    ("no price given", "models:\n  - provider: vllm\n    model: m\n", 3,
     "models[0]", "got none", "expected exactly one of 'prices', 'base_model' or 'gpu_hour_usd'"),
    ("two ways to price", "models:\n  - provider: vllm\n    model: m\n    prices: {input: 1}\n    base_model: gpt-4o\n",
     3, "models[0]", "prices, base_model", "expected exactly one of"),
    ("empty model name", "models:\n  - provider: vllm\n    model: ''\n    prices: {input: 1}\n", 3,
     "models[0].model", "''", "expected a non-empty string"),
    ("gpu hour without throughput", "models:\n  - provider: vllm\n    model: m\n    gpu_hour_usd: 2.5\n", 4,
     "models[0].tokens_per_gpu_hour", "", "missing 'tokens_per_gpu_hour'"),
    ("zero throughput", "models:\n  - provider: vllm\n    model: m\n    gpu_hour_usd: 2.5\n"
     "    tokens_per_gpu_hour: 0\n", 5, "models[0].tokens_per_gpu_hour", "0", "> 0"),
    ("self_hosted not a bool", GOOD_MODEL + "    self_hosted: maybe\n", 5,
     "models[0].self_hosted", "'maybe'", "expected true or false"),
    ("unknown key in a long-context tier", GOOD_MODEL + "    tiers:\n      - {above: 200000, prices: {input: 2},"
     " below: 1}\n", 6, "models[0].tiers[0].below", "'below'", "expected one of: above, prices"),
    ("tier without threshold", GOOD_MODEL + "    tiers:\n      - {prices: {input: 2}}\n", 6,
     "models[0].tiers[0]", "{'prices'", "expected a mapping with 'above'"),
    ("currency not USD", "currency: EUR\n", 1, "currency", "'EUR'", "only USD is supported"),
    ("models not a list", "models:\n  provider: vllm\n", 1, "models", "{'provider': 'vllm'}", "expected a list"),
    ("top level not a mapping", "- provider: vllm\n", 1, "", "", "expected a mapping with models"),
    ("duplicate key", "models:\n  - provider: vllm\n    model: m\n    prices: {input: 1}\n    model: m2\n", 5,
     "model", "'model'", "duplicate key"),
    ("duplicate model entry", GOOD_MODEL + "  - provider: vllm\n    model: m1\n    prices: {input: 3}\n", 6,
     "models[1].model", "'m1'", "expected one entry per model and effective_from"),
    ("duplicate discount", "discounts:\n  - {provider: openai, percent: 5}\n  - {provider: openai, percent: 7}\n", 3,
     "discounts[1]", "every model", "expected one per provider/model"),
    ("alias defined twice", "aliases:\n  - {provider: azure, name: prod, model: gpt-4o}\n"
     "  - {provider: azure, name: prod, model: gpt-4.1}\n", 3, "aliases[1].name", "'prod'", "defined twice"),
    ("yaml syntax error", "models:\n  - provider: vllm\n    prices: {input: 1\n", 4, "", "",
     "not valid YAML"),
    ("tab indentation", "models:\n\t- provider: vllm\n", 2, "", "", "not valid YAML"),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text,line,field,given,expected", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_overrides_file(tmp_path, run_cli, text, line, field, given, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_overrides(str(path))
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}:"), msg
    assert info.value.line == line
    if field:
        assert f": {field}:" in msg, msg
    assert given in msg, msg
    assert expected in msg, msg
    # The CLI says the same on stderr with a non-zero exit.
    status, out, err = run_cli("prices", "validate", str(path))
    assert status != 0
    assert out == ""
    assert f"{path}:{line}:" in err and expected in err


@pytest.mark.parametrize("text,field,given,expected", [
    ("models:\n  - provider: openai\n    model: ft:x:acme::1\n    base_model: gpt-nonexistent-9\n",
     "base_model", "'gpt-nonexistent-9'", "expected a model `inferops prices lookup` finds"),
    ("aliases:\n  - provider: azure.ai.openai\n    name: prod\n    model: gpt-4oo\n",
     "model", "'gpt-4oo'", "expected a model `inferops prices lookup` finds"),
], ids=["unknown base model", "alias to an unknown model"])
def test_references_to_unknown_models(tmp_path, run_cli, text, field, given, expected):
    path = _write(tmp_path, text)
    overrides = load_overrides(str(path))  # well-formed ...
    with pytest.raises(ConfigError) as info:
        CostEngine(overrides=overrides)  # ... but points nowhere
    msg = str(info.value)
    assert msg.startswith(f"{path}:"), msg
    assert f": {field}:" in msg and given in msg and expected in msg, msg
    status, out, err = run_cli("prices", "validate", str(path))
    assert status == 1 and given in err and str(path) in err


def test_missing_file(tmp_path, run_cli):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="file not found"):
        load_overrides(str(path))
    status, _, err = run_cli("prices", "validate", str(path))
    assert status == 1 and f"{path}: file not found" in err


def test_empty_file_is_valid_and_changes_nothing(tmp_path):
    path = _write(tmp_path, "# nothing yet\n")
    ov = load_overrides(str(path))
    assert not ov
    assert CostEngine(overrides=ov).version == CostEngine().version


# --------------------------------------------------------------------------------------------
# The shipped example
# --------------------------------------------------------------------------------------------


def _ts(day: str) -> float:
    d = dt.date.fromisoformat(day)
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(scope="module")
def example_engine() -> CostEngine:
    return CostEngine(overrides=load_overrides(str(EXAMPLE)))


def test_example_validates(run_cli):
    status, out, err = run_cli("prices", "validate", str(EXAMPLE))
    assert status == 0, err
    assert "OK (4 models, 1 aliases, 2 discounts)" in out


def test_example_self_hosted_per_million(example_engine):
    r = example_engine.price(UsageRecord("vllm", "llama-3.1-8b-instruct", input_tokens=1000, output_tokens=500))
    assert r.status == PricingStatus.PRICED and r.self_hosted
    assert r.total == pytest.approx(1000 * 0.05 / 1e6 + 500 * 0.10 / 1e6, rel=1e-12)


def test_example_self_hosted_gpu_hour(example_engine):
    r = example_engine.price(UsageRecord("vllm", "qwen3-32b", input_tokens=4000, output_tokens=1000))
    assert r.self_hosted
    per_token = 2.50 / 5_000_000
    assert r.total == pytest.approx((4000 + 1000) * per_token, rel=1e-12)


def test_example_fine_tune_priced_as_base_model(example_engine):
    p = ENTRIES["gpt-4o-mini-2024-07-18"]["prices"]["standard"]
    r = example_engine.price(UsageRecord("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123",
                                         input_tokens=2000, output_tokens=300))
    assert r.total == pytest.approx(2000 * p["input"] + 300 * p["output"], rel=1e-12)
    # Other fine-tunes of the same base keep the catalog's fine-tune price.
    ft = ENTRIES["ft:gpt-4o-mini-2024-07-18"]["prices"]["standard"]
    r = example_engine.price(UsageRecord("openai", "ft:gpt-4o-mini-2024-07-18:other::zzz",
                                         input_tokens=2000, output_tokens=300))
    assert r.catalog_key == "ft:gpt-4o-mini-2024-07-18"
    assert r.total == pytest.approx(2000 * ft["input"] + 300 * ft["output"], rel=1e-12)


def test_example_effective_dated_price(example_engine):
    p = ENTRIES["gpt-4o"]["prices"]["standard"]
    u = dict(input_tokens=3000, cache_read_tokens=1000, output_tokens=500)
    before = example_engine.price(UsageRecord("openai", "gpt-4o", timestamp=_ts("2026-11-15"), **u))
    assert before.total == pytest.approx(2000 * p["input"] + 1000 * p["cache_read"] + 500 * p["output"])
    after = example_engine.price(UsageRecord("openai", "gpt-4o", timestamp=_ts("2026-12-15"), **u))
    assert after.total == pytest.approx((2000 * 2.00 + 1000 * 1.00 + 500 * 8.00) / 1e6)
    batch = example_engine.price(UsageRecord("openai", "gpt-4o", timestamp=_ts("2026-12-15"),
                                             input_tokens=3000, output_tokens=500, service_tier="batch"))
    assert batch.total == pytest.approx((3000 * 1.00 + 500 * 4.00) / 1e6)


def test_example_azure_deployment_alias(example_engine):
    p = ENTRIES["azure/gpt-4o-2024-08-06"]["prices"]["standard"]
    r = example_engine.price(UsageRecord("azure.ai.openai", "prod-gpt4o", input_tokens=1000, output_tokens=100))
    assert r.catalog_key == "azure/gpt-4o-2024-08-06"
    assert r.total == pytest.approx(1000 * p["input"] + 100 * p["output"])


def test_example_discounts(example_engine):
    p = ENTRIES["claude-haiku-4-5"]["prices"]["standard"]
    r = example_engine.price(UsageRecord("anthropic", "claude-haiku-4-5", input_tokens=1000, output_tokens=100))
    assert r.total == pytest.approx((1000 * p["input"] + 100 * p["output"]) * 0.90)
    p = ENTRIES["claude-sonnet-4-5-20250929"]["prices"]["standard"]
    u = dict(input_tokens=1000, output_tokens=100)
    before = example_engine.price(UsageRecord("anthropic", "claude-sonnet-4-5-20250929",
                                              timestamp=_ts("2026-10-31"), **u))
    after = example_engine.price(UsageRecord("anthropic", "claude-sonnet-4-5-20250929",
                                             timestamp=_ts("2026-11-01"), **u))
    assert before.total == pytest.approx((1000 * p["input"] + 100 * p["output"]) * 0.90)
    assert after.total == pytest.approx((1000 * p["input"] + 100 * p["output"]) * 0.80)


def test_example_cli_cost(run_cli):
    status, out, err = run_cli("prices", "cost", "--prices-file", str(EXAMPLE), "--provider", "vllm",
                               "--model", "qwen3-32b", "--input", "4000", "--output", "1000", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["total_usd"] == pytest.approx(5000 * 2.50 / 5_000_000)
    assert data["currency"] == "USD"


def test_overrides_docstring_example_is_valid(tmp_path):
    """The format shown in processors/overrides.py's docstring is itself a valid file."""
    from inferops.processors import overrides

    doc = overrides.__doc__
    block = doc.split("::", 1)[1].split("\n\nErrors", 1)[0]
    path = _write(tmp_path, textwrap.dedent(block).strip("\n") + "\n")
    CostEngine(overrides=load_overrides(str(path)))


def test_scientific_notation_prices_are_numbers(tmp_path):
    """PyYAML reads `5e-2` (no dot) as a string; a price written that way is still a number."""
    path = _write(tmp_path, "models:\n  - provider: vllm\n    model: m\n    prices: {input: 5e-2, output: 1.5E+1}\n")
    entry = load_overrides(str(path)).models[0].entry
    assert entry.prices["standard"] == {"input": 5e-2 / 1e6, "output": 15.0 / 1e6}
