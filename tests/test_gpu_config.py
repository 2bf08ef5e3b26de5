"""The gpu: configuration: the shipped example, price arithmetic, the overrides link, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferops.alerts.gpu_config import (
    HOURS_PER_MONTH,
    load_gpu_config,
    overrides_document,
    parse_gpu_config_text,
    write_overrides,
)
from inferops.processors.engine import CostEngine
from inferops.processors.overrides import load_overrides
from inferops.processors.usage import UsageRecord
from inferops.yamlfile import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "gpu.example.yaml"


@pytest.fixture(scope="module")
def example():
    return load_gpu_config(EXAMPLE)


def test_example_prices_in_usd_per_gpu_hour(example):
    by = {(p.kind, p.node, p.model, p.cluster): p.usd_per_gpu_hour for p in example.prices}
    assert by[("node", "gpu-node-7", "", "")] == 3.20
    # p5.48xlarge: 55.04 USD per instance-hour over 8 GPUs, for each listed node.
    assert by[("node", "ip-10-0-12-4", "", "")] == pytest.approx(6.88)
    assert by[("node", "ip-10-0-12-5", "", "")] == pytest.approx(6.88)
    # Bought A100s: 17520 USD over 36 months of 730 h.
    assert by[("cluster_model", "", "NVIDIA A100-SXM4-80GB", "onprem")] == pytest.approx(17520 / (36 * HOURS_PER_MONTH))
    assert by[("cluster_model", "", "NVIDIA A100-SXM4-80GB", "onprem")] == pytest.approx(0.6667, abs=1e-4)
    assert by[("default", "", "", "")] == 1.50
    assert example.power_by_cluster == {"onprem": 0.14} and example.power_usd_per_kwh is None


def test_example_comparable_prices_come_from_the_catalog(example):
    served = {s.model: s for s in example.serving}
    llama = served["meta-llama/Llama-3.1-8B-Instruct"]
    assert (llama.comparable.input_usd_per_1m, llama.comparable.output_usd_per_1m) == (0.15, 0.6)
    assert llama.comparable.source == "catalog:gpt-4o-mini"
    assert served["mistralai/Mistral-7B-Instruct-v0.3"].engine == "tgi"
    assert example.engines() == ("vllm", "nim", "tgi")
    assert example.idle.usd_per_day == 20 and example.idle.for_ == "2h"


def test_overrides_file_prices_self_hosted_calls_with_the_estimate(example, tmp_path, run_cli):
    path = write_overrides(example, tmp_path / "gpu-overrides.yaml")
    assert len(overrides_document(example)["models"]) == 2
    status, out, err = run_cli("prices", "validate", str(path))
    assert status == 0, out + err
    engine = CostEngine(overrides=load_overrides(str(path)))
    # vLLM llama: 4.00 USD per H100-hour / 2.5M tokens per GPU-hour = 1.60 USD per 1M tokens.
    llama = engine.price(UsageRecord(provider="vllm", model="meta-llama/Llama-3.1-8B-Instruct",
                                     input_tokens=600_000, output_tokens=400_000))
    assert llama.total == pytest.approx(1.60)
    assert llama.self_hosted
    # NIM: the configured 1.20 USD per 1M tokens.
    nim = engine.price(UsageRecord(provider="nim", model="meta/llama-3.1-70b-instruct",
                                   input_tokens=500_000, output_tokens=0))
    assert nim.total == pytest.approx(0.60)
    # No estimate configured for the TGI model: it stays unpriced (never $0).
    tgi = engine.price(UsageRecord(provider="tgi", model="mistralai/Mistral-7B-Instruct-v0.3", input_tokens=10))
    assert tgi.total is None


BAD = [
    ("prices: []\n", "bad.yaml:1: expected a mapping with a top-level 'gpu:' section"),
    ("gpu:\n  prices:\n    - usd_per_hour: 1\n      reserved_usd_per_hour: 2\n",
     "bad.yaml:3: gpu.prices[0]: expected exactly one of usd_per_hour, on_demand_usd_per_hour, "
     "reserved_usd_per_hour, purchase, got usd_per_hour, reserved_usd_per_hour"),
    ("gpu:\n  prices:\n    - model: H100\n      usd_per_hour: -1\n",
     "bad.yaml:4: gpu.prices[0].usd_per_hour: expected a number > 0, got -1"),
    ("gpu:\n  prices:\n    - modle: H100\n      usd_per_hour: 1\n", "bad.yaml:3: gpu.prices[0].modle: unknown field"),
    ("gpu:\n  prices:\n    - model: H100\n      usd_per_hour: 1\n    - model: H100\n      usd_per_hour: 2\n",
     "bad.yaml:5: gpu.prices[1]: a price for model='H100' is already defined at bad.yaml:3"),
    ("gpu:\n  prices:\n    - instance_type: p4d.24xlarge\n      usd_per_hour: 32\n",
     "bad.yaml:3: gpu.prices[0].nodes: missing 'nodes'"),
    ("gpu:\n  prices:\n    - model: H100\n      purchase: {price_usd: 30000}\n",
     "bad.yaml:4: gpu.prices[0].purchase.months: missing required field 'months'"),
    ("gpu:\n  serving:\n    - engine: ollama\n      model: m\n",
     "bad.yaml:3: gpu.serving[0].engine: expected one of vllm, nim, tgi, got 'ollama'"),
    ("gpu:\n  serving:\n    - engine: tgi\n      model: m\n",
     "bad.yaml:3: gpu.serving[0].namespace: tgi metrics carry no model label"),
    ("gpu:\n  serving:\n    - engine: vllm\n      model: m\n      comparable_api: {provider: openai, model: gpt-9-ultra}\n",
     "bad.yaml:5: gpu.serving[0].comparable_api.model: comparable model 'gpt-9-ultra' of provider 'openai' is not "
     "in the price catalog"),
    ("gpu:\n  serving:\n    - engine: vllm\n      model: m\n      pods: 'vllm-(['\n",
     "bad.yaml:5: gpu.serving[0].pods: not a valid regular expression"),
    ("gpu:\n  teams:\n    - team: search\n", "bad.yaml:3: gpu.teams[0].namespaces: expected 'namespaces' and/or 'pods'"),
    ("gpu:\n  alerts:\n    idle: {for: 2 hours}\n",
     "bad.yaml:3: gpu.alerts.idle.for: expected a Prometheus duration such as 30s, 5m, 2h, 1h30m, got '2 hours'"),
    ("gpu:\n  alerts:\n    idle:\n      utilisation_below: 20\n",
     "bad.yaml:4: gpu.alerts.idle.utilisation_below: expected a number >= 0 and <= 1, got 20"),
    ("gpu:\n  utilisation: sm_active\n", "bad.yaml:2: gpu.utilisation: expected one of auto, engine_active, gpu_util"),
    ("gpu:\n  mig_slices_per_gpu: 0\n", "bad.yaml:2: gpu.mig_slices_per_gpu: expected a whole number 1-8"),
    ("gpu:\n  prices:\n    - node: 'a\"b'\n      usd_per_hour: 1\n",
     "bad.yaml:3: gpu.prices[0].node: expected a label value without quotes"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m.split(": ", 2)[1] for _, m in BAD])
def test_bad_config_names_file_line_and_field(text, message):
    with pytest.raises(ConfigError) as err:
        parse_gpu_config_text(text, "bad.yaml")
    assert str(err.value).startswith(message), str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_gpu_config(tmp_path / "nope.yaml")
