"""The `inferops` command: --version and the `prices` subcommands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferops._version import __version__

REPO = Path(__file__).resolve().parent.parent
ENTRIES = json.loads((REPO / "processors" / "data" / "catalog.json").read_text(encoding="utf-8"))["entries"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("INFEROPS_")]:
        monkeypatch.delenv(var)


def test_version(run_cli):
    status, out, _ = run_cli("--version")
    assert status == 0 and out.strip() == f"inferops {__version__}"


def test_console_script_runs():
    """The installed entry point works as a process (exit status and streams)."""
    exe = Path(sys.executable).with_name("inferops")
    proc = subprocess.run([str(exe), "prices", "cost", "--provider", "openai", "--model", "nope-model",
                           "--input", "10"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "UNPRICED" in proc.stderr and "not $0" in proc.stderr


def test_lookup(run_cli):
    status, out, err = run_cli("prices", "lookup", "claude-sonnet-4-5-20250929", "--provider", "anthropic")
    assert status == 0, err
    p = ENTRIES["claude-sonnet-4-5-20250929"]["prices"]["standard"]
    assert "claude-sonnet-4-5-20250929 -> claude-sonnet-4-5-20250929" in out
    assert "USD per 1M tokens" in out
    assert f"input {p['input'] * 1e6:g}" in out and f"cache_write_1h {p['cache_write_1h'] * 1e6:g}" in out


def test_lookup_json_and_long_context_tiers(run_cli):
    status, out, _ = run_cli("prices", "lookup", "gemini-2.5-pro", "--provider", "gcp.gemini", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["key"] == "gemini/gemini-2.5-pro" and data["currency"] == "USD"
    assert data["per_million"]["standard"]["input"] == pytest.approx(
        ENTRIES["gemini/gemini-2.5-pro"]["prices"]["standard"]["input"] * 1e6)
    assert data["tiers"][0]["above"] == 200_000


def test_lookup_unknown_model(run_cli):
    status, out, err = run_cli("prices", "lookup", "made-up-model-9", "--provider", "openai")
    assert status == 1 and out == ""
    assert "made-up-model-9" in err and "unpriced" in err


def test_cost_breakdown(run_cli):
    p = ENTRIES["claude-sonnet-4-5-20250929"]["prices"]["standard"]
    status, out, err = run_cli("prices", "cost", "--provider", "anthropic", "--model", "claude-sonnet-4-5-20250929",
                               "--input", "12000", "--cache-read", "8000", "--cache-write", "2000",
                               "--output", "900", "--reasoning", "300")
    assert status == 0, err
    total = 2000 * p["input"] + 8000 * p["cache_read"] + 2000 * p["cache_write_5m"] + 900 * p["output"]
    lines = {line.split()[0] + (" " + line.split()[1] if line.split()[0] in ("input", "cache") else ""): line
             for line in out.splitlines() if line.startswith("  ")}
    assert f"${2000 * p['input']:,.6f}" in lines["input (uncached)"]
    assert f"${8000 * p['cache_read']:,.6f}" in lines["cache read"]
    assert f"${2000 * p['cache_write_5m']:,.6f}" in lines["cache write"]
    assert f"${600 * p['output']:,.6f}" in lines["output"]
    assert f"${300 * p['output']:,.6f}" in lines["reasoning"]
    assert f"${total:,.6f} USD" in lines["total"]


def test_cost_json_and_batch_tier(run_cli):
    b = ENTRIES["gpt-4o-mini"]["prices"]["batch"]
    status, out, err = run_cli("prices", "cost", "--provider", "openai", "--model", "gpt-4o-mini",
                               "--input", "100000", "--output", "5000", "--tier", "batch", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["status"] == "priced" and data["service_tier"] == "batch" and data["currency"] == "USD"
    assert data["total_usd"] == pytest.approx(100_000 * b["input"] + 5000 * b["output"], rel=1e-12)
    assert data["components_usd"]["input"] == pytest.approx(100_000 * b["input"], rel=1e-12)
    assert data["catalog_key"] == "gpt-4o-mini"


def test_cost_long_context_and_1h_cache_write(run_cli):
    t = next(x for x in ENTRIES["anthropic.claude-sonnet-4-5-20250929-v1:0"]["tiers"] if x["above"] == 200_000)
    t = t["prices"]["standard"]
    status, out, _ = run_cli("prices", "cost", "--provider", "aws.bedrock",
                             "--model", "anthropic.claude-sonnet-4-5-20250929-v1:0", "--input", "210000",
                             "--cache-write-1h", "10000", "--output", "100", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["context_tier_above"] == 200_000
    assert data["total_usd"] == pytest.approx(200_000 * t["input"] + 10_000 * t["cache_write_1h"]
                                              + 100 * t["output"], rel=1e-12)


def test_cost_unpriced(run_cli):
    status, out, err = run_cli("prices", "cost", "--provider", "openai", "--model", "gpt-unknown-7",
                               "--input", "10", "--output", "10")
    assert status == 1 and out == ""
    assert "gpt-unknown-7" in err and "UNPRICED" in err and "not $0" in err


def test_cost_unpriced_json(run_cli):
    status, out, err = run_cli("prices", "cost", "--provider", "openai", "--model", "gpt-unknown-7",
                               "--input", "10", "--json")
    assert status == 1
    data = json.loads(out)
    assert data["status"] == "unpriced" and data["total_usd"] is None
    assert "unpriced" in err


@pytest.mark.parametrize("args,expected", [
    (["--input", "10", "--cache-read", "20"], "must include the cached tokens"),
    (["--input", "10", "--output", "5", "--reasoning", "6"], "must include the reasoning tokens"),
    (["--input", "-3"], "expected a non-negative number"),
    (["--input", "ten"], "expected a whole number of tokens"),
    (["--tier", "gold"], "invalid choice: 'gold'"),
    (["--at", "2026-02-30"], "--at: expected a date YYYY-MM-DD"),
])
def test_cost_bad_arguments(run_cli, args, expected):
    status, out, err = run_cli("prices", "cost", "--provider", "openai", "--model", "gpt-4o", *args)
    assert status == 2 and out == ""
    assert expected in err


def test_cost_with_bad_prices_file(run_cli, tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("discounts:\n  - provider: openai\n    percent: 200\n")
    status, out, err = run_cli("prices", "cost", "--provider", "openai", "--model", "gpt-4o", "--input", "1",
                               "--prices-file", str(bad))
    assert status != 0 and out == ""
    assert f"{bad}:3: discounts[0].percent" in err and "200" in err


def test_cost_uses_prices_file_setting(run_cli, tmp_path, monkeypatch):
    f = tmp_path / "p.yaml"
    f.write_text("models:\n  - provider: vllm\n    model: tiny\n    prices: {input: 1.0, output: 2.0}\n")
    monkeypatch.setenv("INFEROPS_PRICES_FILE", str(f))
    status, out, err = run_cli("prices", "cost", "--provider", "vllm", "--model", "tiny", "--input", "1000000",
                               "--output", "500000", "--json")
    assert status == 0, err
    assert json.loads(out)["total_usd"] == pytest.approx(1.0 + 1.0)


def test_validate_good_and_bad(run_cli, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("aliases:\n  - {provider: azure, name: prod, model: gpt-4o}\n")
    status, out, err = run_cli("prices", "validate", str(good))
    assert status == 0 and "OK (0 models, 1 aliases, 0 discounts)" in out and err == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text("aliases:\n  - {provider: azure, name: prod, model: gpt-4o, colour: red}\n")
    status, out, err = run_cli("prices", "validate", str(bad))
    assert status == 1 and out == ""
    assert f"{bad}:2: aliases[0].colour: unknown field 'colour'" in err


def test_update_bad_out_path(run_cli, tmp_path):
    src = tmp_path / "t.json"
    src.write_text(json.dumps({"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-6}}))
    status, _, err = run_cli("prices", "update", "--from", str(src), "--out", str(tmp_path / "no" / "dir" / "c.json"))
    assert status != 0 and "cannot write" in err


def test_no_subcommand_is_an_error(run_cli):
    status, out, err = run_cli("prices")
    assert status == 2 and "required" in err


def _doc_examples() -> list[tuple[list[str], float]]:
    import re
    import shlex

    text = (REPO / "docs" / "pricing.md").read_text(encoding="utf-8")
    found = re.findall(r"```sh\n(inferops prices cost [^\n]+)\n```.*?\*\*total: \$([0-9.]+)\*\*", text, re.S)
    return [(shlex.split(cmd)[1:], float(total)) for cmd, total in found]


DOC_EXAMPLES = _doc_examples()


def test_doc_has_a_worked_example_per_provider():
    providers = {args[args.index("--provider") + 1] for args, _ in DOC_EXAMPLES}
    assert {"openai", "azure.ai.openai", "anthropic", "aws.bedrock", "gcp.gemini", "gcp.vertex_ai",
            "mistral_ai", "cohere"} <= providers


@pytest.mark.parametrize("args,total", DOC_EXAMPLES, ids=[" ".join(a[4:8]) for a, _ in DOC_EXAMPLES])
def test_doc_pricing_examples_are_right(run_cli, monkeypatch, args, total):
    """Every `inferops prices cost` command in docs/pricing.md gives the total the page states."""
    monkeypatch.chdir(REPO)
    status, out, err = run_cli(*args, "--json")
    assert status == 0, err
    assert json.loads(out)["total_usd"] == pytest.approx(total, abs=5e-7)
