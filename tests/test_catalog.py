"""The price catalog: reproducible from the source table, updatable from a file or URL, resolution rules."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from inferops.processors.catalog import Catalog, Resolver, builtin_catalog, load_catalog, model_candidates
from inferops.processors.catalog_build import build_catalog, convert_entry, write_catalog
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord
from inferops.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "reference" / "pricing" / "litellm-model-prices.json"
COMMITTED = REPO / "processors" / "data" / "catalog.json"


def test_committed_catalog_is_a_fresh_build_of_the_source(tmp_path):
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    raw = SOURCE.read_bytes()
    fresh = build_catalog(raw, source_name=SOURCE.name, source_version=committed["source"]["version"])
    out = tmp_path / "catalog.json"
    write_catalog(fresh, out)
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "processors/data/catalog.json is stale: run `inferops prices update --from "
        f"{SOURCE} --source-version {committed['source']['version']} --out processors/data/catalog.json`")


def test_catalog_records_source_version_and_licence():
    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert doc["currency"] == "USD"
    assert doc["source"]["sha256"] and doc["version"].endswith(doc["source"]["sha256"][:12])
    assert "MIT" in doc["source"]["license"]
    licence = (REPO / "processors" / "data" / "LICENSE-litellm.txt").read_text()
    assert "MIT" in licence and "Permission is hereby granted" in licence
    assert len(doc["entries"]) > 3000
    cat = builtin_catalog()
    assert cat.version == doc["version"]


def test_every_source_price_is_kept_exactly():
    """Spot-check across the table: the catalog's per-token prices are the source's numbers, untouched."""
    source = json.loads(SOURCE.read_text(encoding="utf-8"))
    entries = json.loads(COMMITTED.read_text(encoding="utf-8"))["entries"]
    checked = 0
    for key in list(entries)[::40]:
        raw = source[key]
        std = entries[key]["prices"]["standard"]
        if "input_cost_per_token" in raw:
            assert std["input"] == raw["input_cost_per_token"], key
        if "output_cost_per_token" in raw:
            assert std["output"] == raw["output_cost_per_token"], key
        if "cache_read_input_token_cost" in raw:
            assert std["cache_read"] == raw["cache_read_input_token_cost"], key
        checked += 1
    assert checked > 50


def test_convert_entry_components_and_tiers():
    raw = {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5,
        "cache_read_input_token_cost": 3e-7, "cache_creation_input_token_cost": 3.75e-6,
        "cache_creation_input_token_cost_above_1hr": 6e-6,
        "input_cost_per_token_batches": 1.5e-6, "output_cost_per_token_batches": 7.5e-6,
        "input_cost_per_token_above_200k_tokens": 6e-6, "output_cost_per_token_above_200k_tokens": 2.25e-5,
        "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-5,
        "input_cost_per_token_above_200k_tokens_priority": 9e-6,
        "output_cost_per_reasoning_token": 2e-5, "input_cost_per_audio_token": 1e-5,
        "input_cost_per_request": 0.01, "input_cost_per_image": 0.5,  # per-image (not per token): ignored
        "supports_reasoning": True,
    }
    e = convert_entry("anthropic/claude-x", raw)
    assert e["provider"] == "anthropic" and e["model"] == "claude-x"
    assert e["prices"]["standard"] == {
        "input": 3e-6, "output": 1.5e-5, "cache_read": 3e-7, "cache_write_5m": 3.75e-6, "cache_write_1h": 6e-6,
        "reasoning": 2e-5, "input_audio": 1e-5, "per_request": 0.01}
    assert e["prices"]["batch"] == {"input": 1.5e-6, "output": 7.5e-6}
    assert e["tiers"] == [{"above": 200_000, "prices": {
        "priority": {"input": 9e-6},
        "standard": {"cache_write_1h": 1.2e-5, "input": 6e-6, "output": 2.25e-5}}}]
    assert e["capabilities"] == ["reasoning"]
    # Entries without any token or request price (image or video generation) are left out.
    assert convert_entry("dall-e-3", {"litellm_provider": "openai", "output_cost_per_image": 0.04}) is None


# --------------------------------------------------------------------------------------------
# prices update --from FILE | URL, and INFEROPS_CATALOG_FILE
# --------------------------------------------------------------------------------------------

SMALL_TABLE = {
    "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "one of the providers"},
    "acme-llm-1": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6,
                   "output_cost_per_token": 4e-6, "cache_read_input_token_cost": 1e-7},
    "mistral/acme-mistral": {"litellm_provider": "mistral", "mode": "chat", "input_cost_per_token": 2e-7,
                             "output_cost_per_token": 6e-7},
    "dall-e-9": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.1},
}


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - http.server API
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def price_server():
    _Handler.routes = {
        "/prices.json": json.dumps(SMALL_TABLE).encode(),
        "/not-a-table.json": json.dumps([1, 2, 3]).encode(),
        "/html": b"<html>hello</html>",
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for var in [v for v in os.environ if v.startswith("INFEROPS_")]:
        monkeypatch.delenv(var)
    return monkeypatch


def test_update_from_url_and_catalog_file_setting(price_server, tmp_path, run_cli, clean_env):
    out = tmp_path / "catalog.json"
    status, stdout, err = run_cli("prices", "update", "--from", f"{price_server}/prices.json", "--out", str(out),
                                  "--source-version", "test-1")
    assert status == 0, err
    assert "2 priced models" in stdout
    doc = json.loads(out.read_text())
    assert set(doc["entries"]) == {"acme-llm-1", "mistral/acme-mistral"}
    assert doc["source"]["url"] == f"{price_server}/prices.json"
    assert doc["version"].startswith("test-1+")

    # Not in the built-in catalog ...
    status, _, _ = run_cli("prices", "lookup", "acme-llm-1", "--provider", "openai")
    assert status == 1
    # ... but found once INFEROPS_CATALOG_FILE points at the new one.
    clean_env.setenv("INFEROPS_CATALOG_FILE", str(out))
    status, stdout, err = run_cli("prices", "lookup", "acme-llm-1", "--provider", "openai")
    assert status == 0, err
    assert "acme-llm-1 -> acme-llm-1" in stdout and "test-1+" in stdout
    engine = CostEngine.from_settings(load_settings())
    r = engine.price(UsageRecord("openai", "acme-llm-1", input_tokens=1000, cache_read_tokens=400,
                                 output_tokens=100))
    assert r.total == pytest.approx(600 * 1e-6 + 400 * 1e-7 + 100 * 4e-6)
    assert r.catalog_version == doc["version"]
    # gpt-4o is not in the small catalog: unpriced, not $0.
    assert engine.price(UsageRecord("openai", "gpt-4o", input_tokens=10)).total is None


def test_update_from_file(tmp_path, run_cli):
    src = tmp_path / "table.json"
    src.write_text(json.dumps(SMALL_TABLE))
    out = tmp_path / "out.json"
    status, stdout, err = run_cli("prices", "update", "--from", str(src), "--out", str(out))
    assert status == 0, err
    cat = load_catalog(out)
    assert cat.source["file"] == "table.json" and cat.source["url"] == ""
    assert Resolver(cat).resolve("mistral_ai", "acme-mistral").entry.key == "mistral/acme-mistral"


@pytest.mark.parametrize("route,expected", [
    ("/not-a-table.json", "expected a JSON object mapping model keys to entries"),
    ("/html", "not JSON"),
    ("/missing.json", "HTTP Error 404"),
])
def test_update_from_bad_url(price_server, tmp_path, run_cli, route, expected):
    out = tmp_path / "out.json"
    status, stdout, err = run_cli("prices", "update", "--from", price_server + route, "--out", str(out))
    assert status != 0 and stdout == ""
    assert expected in err
    assert not out.exists()


@pytest.mark.parametrize("content,expected", [
    ('{"gpt-x": {"litellm_provider": "openai", "mode": "chat"}}', "no priced entries found (is this a LiteLLM"),
    ("not json at all", "not JSON"),
    ("[]", "expected a JSON object"),
    (None, "file not found"),
])
def test_update_from_bad_file(tmp_path, run_cli, content, expected):
    src = tmp_path / "table.json"
    if content is not None:
        src.write_text(content)
    status, _, err = run_cli("prices", "update", "--from", str(src), "--out", str(tmp_path / "o.json"))
    assert status != 0
    assert expected in err and "table.json" in err


def test_the_catalog_itself_is_not_a_source_table(tmp_path, run_cli):
    status, _, err = run_cli("prices", "update", "--from", str(COMMITTED), "--out", str(tmp_path / "o.json"))
    assert status != 0 and "no priced entries found" in err


def test_bad_catalog_file_setting(tmp_path, run_cli, clean_env):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(SMALL_TABLE))  # a source table, not a built catalog
    clean_env.setenv("INFEROPS_CATALOG_FILE", str(bad))
    status, _, err = run_cli("prices", "lookup", "gpt-4o")
    assert status != 0 and str(bad) in err and "not an inferops catalog" in err
    clean_env.setenv("INFEROPS_CATALOG_FILE", str(tmp_path / "missing.json"))
    status, _, err = run_cli("prices", "lookup", "gpt-4o")
    assert status != 0 and "catalog file not found" in err


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------

RESOLUTION = [
    ("openai", "gpt-4o", "gpt-4o"),
    ("openai", "GPT-4o", "gpt-4o"),
    ("openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
    ("openai", "openai/gpt-4o", "gpt-4o"),
    ("openai", "gpt-4o-2031-01-01", "gpt-4o"),  # unknown snapshot: its model's price
    ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "ft:gpt-4o-mini-2024-07-18"),
    ("openai", "ft:gpt-4o-2024-08-06:org:custom:xyz", "ft:gpt-4o-2024-08-06"),
    ("azure.ai.openai", "gpt-4o", "azure/gpt-4o"),
    ("azure", "gpt-4o-2024-08-06", "azure/gpt-4o-2024-08-06"),
    ("azure.ai.openai", "gpt-4o-search-preview", "gpt-4o-search-preview"),  # not listed for Azure: OpenAI list price
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("anthropic", "anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws.bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws.bedrock", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                    "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws.bedrock", "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("bedrock", "us.amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1:0"),
    ("gcp.gemini", "gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("gcp.gemini", "models/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ("gemini", "gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ("gcp.vertex_ai", "gemini-2.5-pro", "gemini-2.5-pro"),
    ("gcp.vertex_ai", "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash",
     "gemini-2.5-flash"),
    ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "vertex_ai/claude-sonnet-4-5@20250929"),
    ("vertex_ai", "claude-haiku-4-5@20251001", "vertex_ai/claude-haiku-4-5@20251001"),
    ("mistral_ai", "mistral-large-latest", "mistral/mistral-large-latest"),
    ("mistral_ai", "codestral-latest", "mistral/codestral-latest"),
    ("cohere", "command-a-03-2025", "command-a-03-2025"),
    ("deepseek", "deepseek-chat", "deepseek-chat"),
    ("x_ai", "grok-4.20", "xai/grok-4.20"),
    ("groq", "openai/gpt-oss-120b", "groq/openai/gpt-oss-120b"),
    ("", "gpt-4o", "gpt-4o"),  # no provider: the big providers are tried
]


@pytest.mark.parametrize("provider,model,key", RESOLUTION, ids=[f"{p}:{m}"[:70] for p, m, _ in RESOLUTION])
def test_resolution(provider, model, key):
    res = Resolver(builtin_catalog()).resolve(provider, model)
    assert res.entry is not None, (provider, model)
    assert res.entry.key == key


@pytest.mark.parametrize("provider,model", [
    ("openai", "no-such-model"),
    ("anthropic", "gpt-4o"),  # a model of another provider is not guessed
    ("openai", "claude-sonnet-4-5"),
    ("azure.ai.openai", "prod-deployment-7"),
    ("aws.bedrock", "arn:aws:bedrock:us-east-1:123:application-inference-profile/abc123"),
    ("vllm", "llama-3.1-8b-instruct"),
    ("openai", ""),
])
def test_unresolved_models(provider, model):
    assert Resolver(builtin_catalog()).resolve(provider, model).entry is None


def test_model_candidates_order():
    assert list(model_candidates("us.anthropic.claude-sonnet-4-5-20250929-v1:0"))[:4] == [
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5-20250929-v1:0",
    ]
    cands = list(model_candidates("gpt-4o-2024-08-06"))
    assert cands.index("gpt-4o-2024-08-06") < cands.index("gpt-4o")


def test_resolution_is_cached():
    r = Resolver(builtin_catalog())
    first = r.resolve("openai", "gpt-4o-2024-08-06")
    assert r.resolve("openai", "gpt-4o-2024-08-06") is first
    assert r._cached.cache_info().hits == 1


def test_catalog_rejects_other_documents():
    with pytest.raises(ValueError, match="not an inferops catalog"):
        Catalog({"entries": []}, origin="x.json")
