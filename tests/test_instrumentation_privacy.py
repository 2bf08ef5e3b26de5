"""Privacy and attribution: API keys never exported, content only on opt-in, bounded labels."""

from __future__ import annotations

import asyncio
import logging

import anthropic
import httpx2
import openai
import pytest

import inferops
from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.names import OVERFLOW_VALUE, Attr, GenAI, Metrics
from inferops.settings import Settings

SECRETS = ("sk-proj-TOPSECRET-aaaa1111", "sk-ant-TOPSECRET-bbbb2222", "AZURE-TOPSECRET-cccc3333",
           "GEMINI-TOPSECRET-dddd4444")
PROMPT = "my very private prompt about payroll"


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def _settings(srv, **kw) -> Settings:
    return Settings(provider_endpoints=srv.endpoints(), **kw)


def _our_logs(caplog) -> str:
    """Log records of inferops and OpenTelemetry (httpx's own request log prints URLs; not ours)."""
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if r.name.startswith(("inferops", "opentelemetry")))


def _exported_text(cap) -> str:
    parts = []
    for span in cap.all_spans():
        parts.append(span.to_json())
    parts.append(cap.metrics_text(openmetrics=True))
    parts.append(cap.metrics_text(openmetrics=False))
    return "\n".join(parts)


def _all_calls(srv):
    openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key=SECRETS[0], max_retries=0).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], max_tokens=3)
    anthropic.Anthropic(base_url=srv.base_url + "/anthropic", api_key=SECRETS[1], max_retries=0).messages.create(
        model="claude-haiku-4-5", max_tokens=3, messages=[{"role": "user", "content": PROMPT}])
    with httpx2.Client() as client:
        client.post(srv.base_url + "/azure/openai/deployments/prod-gpt/chat/completions?api-version=2024-10-21",
                    headers={"api-key": SECRETS[2]},
                    json={"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 3})
        client.post(srv.base_url + f"/gemini/v1beta/models/gemini-2.5-flash:generateContent?key={SECRETS[3]}",
                    json={"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]})
        # an error answer too (error paths log and record more)
        client.post(srv.base_url + "/openai/v1/chat/completions", headers={
            "Authorization": f"Bearer {SECRETS[0]}", "x-mock-status": "401"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]})


def test_api_keys_and_content_never_exported(srv, caplog):
    caplog.set_level(logging.DEBUG)
    with instrumented(_settings(srv)) as cap:
        _all_calls(srv)
    assert len(cap.spans()) == 5
    exported = _exported_text(cap) + "\n" + _our_logs(caplog)
    for secret in SECRETS:
        assert secret not in exported
        assert secret.split("-")[-1] not in exported
    assert "TOPSECRET" not in exported
    assert PROMPT not in exported and "w0 w1" not in exported
    assert all(GenAI.INPUT_MESSAGES not in s.attributes for s in cap.spans())
    # the calls really carried the keys (so the test could fail)
    sent = " ".join(str(r.headers) + r.path for r in srv.requests[-5:])
    assert all(s in sent for s in SECRETS)


def test_content_capture_opt_in(srv, caplog):
    with instrumented(_settings(srv, capture_content=True)) as cap:
        _all_calls(srv)
    first = cap.spans()[0].attributes
    assert PROMPT in first[GenAI.INPUT_MESSAGES]
    assert "w0 w1 w2" in first[GenAI.OUTPUT_MESSAGES]
    exported = _exported_text(cap) + _our_logs(caplog)
    assert "TOPSECRET" not in exported  # keys stay out even with content capture on


def test_label_cap_overflows_into_one_value(srv):
    with instrumented(_settings(srv, label_value_cap=3)) as cap:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-x", max_retries=0)
        for i in range(6):
            with inferops.attribute(feature=f"feature-{i}"):
                client.chat.completions.create(model="gpt-4o-mini", max_tokens=2,
                                               messages=[{"role": "user", "content": "x"}])
    features = {lbl["feature"]: v for lbl, v in cap.samples(Metrics.REQUESTS.prom_name)}
    assert features == {"feature-0": 1, "feature-1": 1, "feature-2": 1, OVERFLOW_VALUE: 3}
    overflows = {lbl["label"]: v for lbl, v in cap.samples(Metrics.LABEL_OVERFLOWS.prom_name)}
    assert overflows["feature"] >= 3
    assert [s.attributes[Attr.FEATURE] for s in cap.spans()][-1] == "feature-5"  # spans keep the truth


def test_required_tags_mark_unattributed(srv):
    with instrumented(_settings(srv, required_tags=("team", "feature"))) as cap:
        client = openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-x", max_retries=0,
                               default_headers={"X-Inferops-Team": "ml"})
        client.chat.completions.create(model="gpt-4o", max_tokens=2, messages=[{"role": "user", "content": "x"}])
        with inferops.attribute(feature="chat"):
            client.chat.completions.create(model="gpt-4o", max_tokens=2, messages=[{"role": "user", "content": "x"}])
    first, second = cap.spans()
    assert first.attributes[Attr.UNATTRIBUTED] is True and Attr.UNATTRIBUTED not in second.attributes
    [(labels, n)] = cap.samples(Metrics.UNATTRIBUTED_REQUESTS.prom_name)
    assert n == 1 and labels["team"] == "ml" and labels["feature"] == "unattributed"


def test_attribute_decorator_async_and_baggage_key_mapping(srv):
    settings = _settings(srv, baggage_keys={"team": "x-team", "feature": "feature"})

    @inferops.attribute(team="payments")
    async def handler():
        client = openai.AsyncOpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-x", max_retries=0)
        await client.chat.completions.create(model="gpt-4o", max_tokens=2,
                                             messages=[{"role": "user", "content": "x"}], user="end-user-7")

    with instrumented(settings) as cap:
        asyncio.run(handler())
        from opentelemetry import baggage
        assert baggage.get_all() == {}  # the decorator restored the context
    a = cap.spans()[0].attributes
    assert a[Attr.TEAM] == "payments" and a[Attr.USER] == "end-user-7"
    with inferops.attribute(team="t1", tenant="acme"):
        from opentelemetry import baggage
        assert baggage.get_all() == {"x-team": "t1", "tenant": "acme"}


def test_import_inferops_is_light():
    import subprocess
    import sys

    code = ("import sys, inferops; heavy = [m for m in ('httpx', 'httpx2', 'opentelemetry.sdk', "
            "'inferops.processors.catalog', 'tiktoken') if m in sys.modules]; print(heavy); "
            "assert not heavy; assert callable(inferops.attribute)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
