"""InferopsInstrumentor: entry point, dependencies, fail-safe instrument(), budget enforcement hook."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

import httpx2
import openai
import pytest

from inferops.errors import BudgetExceededError
from inferops.instrumentation import InferopsInstrumentor
from inferops.instrumentation import configure
from inferops.instrumentation.testing import instrumented
from inferops.mock_providers import MockProviderServer
from inferops.names import ATTRIBUTION_ATTRS, Attr, GenAI, Metrics
from inferops.settings import Settings

MSGS = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer(host="127.0.0.1", port=0) as server:
        yield server


def test_entry_point_and_dependencies():
    [ep] = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "inferops"]
    assert ep.load() is InferopsInstrumentor
    inst = InferopsInstrumentor()
    assert inst._check_dependency_conflicts() is None  # httpx or httpx2 is installed
    from importlib.metadata import metadata

    requires = metadata("inferops").get_all("Requires-Dist")
    extras_any = {r.split(";")[0].replace(" ", "") for r in requires if 'extra == "instruments-any"' in r}
    from inferops.instrumentation import _instruments_any

    assert {d.replace(" ", "") for d in _instruments_any} == extras_any


def test_instrument_never_raises(monkeypatch, caplog):
    monkeypatch.setenv("INFEROPS_LABEL_VALUE_CAP", "lots")  # invalid setting
    inst = InferopsInstrumentor()
    with caplog.at_level(logging.ERROR):
        assert inst.instrument() is None
    assert "INFEROPS_LABEL_VALUE_CAP" in caplog.text
    assert not inst.is_instrumented_by_opentelemetry
    assert not hasattr(httpx2.Client.send, "__inferops_original__")

    def broken_router(settings):
        raise RuntimeError("adapter import exploded")

    monkeypatch.delenv("INFEROPS_LABEL_VALUE_CAP")
    monkeypatch.setattr("inferops.instrumentation.providers.AdapterRouter", broken_router)
    assert inst.instrument() is None
    assert not inst.is_instrumented_by_opentelemetry


def test_disabled_by_setting(srv):
    with instrumented(Settings(enabled=False, provider_endpoints=srv.endpoints())) as cap:
        with httpx2.Client() as client:
            client.post(srv.base_url + "/openai/v1/chat/completions", json={"model": "gpt-4o", "messages": MSGS})
    assert cap.spans() == []


# -- budget enforcement hook -------------------------------------------------------------------


@dataclass
class Decision:
    action: str
    budget: str = ""
    model: str = ""


class FakeEnforcer:
    def __init__(self, decision=None, error=None):
        self.decision, self.error, self.calls = decision, error, []

    def decide(self, who, provider, model):
        self.calls.append((who, provider, model))
        if self.error:
            raise self.error
        return self.decision


def _enforced(srv, monkeypatch, enforcer):
    monkeypatch.setattr(configure, "_enforcer", lambda settings: enforcer)
    return instrumented(Settings(provider_endpoints=srv.endpoints(),
                                 enforcement_alertmanager_url="http://127.0.0.1:9"))


def _client(srv):
    return openai.OpenAI(base_url=srv.base_url + "/openai/v1", api_key="sk-x", max_retries=0,
                         default_headers={"X-Inferops-Team": "growth"})


@pytest.mark.parametrize("action", ["block", "throttle"])
def test_block_raises_budget_exceeded_before_sending(srv, monkeypatch, action):
    enforcer = FakeEnforcer(Decision(action, "growth-monthly"))
    before = len(srv.requests)
    with _enforced(srv, monkeypatch, enforcer) as cap:
        with pytest.raises(BudgetExceededError) as info:
            _client(srv).chat.completions.create(model="gpt-4o", messages=MSGS)
    assert len(srv.requests) == before  # nothing left the process
    assert info.value.budget == "growth-monthly" and info.value.action == action
    assert "growth-monthly" in str(info.value) and action in str(info.value)
    who, provider, model = enforcer.calls[0]
    assert (who.team, provider, model) == ("growth", "openai", "gpt-4o")
    [span] = cap.spans()
    assert span.attributes[Attr.BUDGET_ACTION] == action
    assert span.attributes[GenAI.ERROR_TYPE] == "BudgetExceededError"
    # A blocked span still carries what was known before the request would have left.
    assert span.attributes[GenAI.PROVIDER_NAME] == "openai" and span.attributes[GenAI.REQUEST_MODEL] == "gpt-4o"
    assert span.attributes[ATTRIBUTION_ATTRS["team"]] == "growth"
    [(labels, n)] = cap.samples(Metrics.BUDGET_ACTIONS.prom_name)
    assert labels["budget"] == "growth-monthly" and labels["action"] == action and labels["team"] == "growth"
    assert cap.samples(Metrics.REQUESTS.prom_name) == []


def test_downgrade_rewrites_the_model(srv, monkeypatch):
    enforcer = FakeEnforcer(Decision("downgrade", "growth-monthly", "gpt-4o-mini"))
    with _enforced(srv, monkeypatch, enforcer) as cap:
        completion = _client(srv).chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=3)
    assert json.loads(srv.requests[-1].body)["model"] == "gpt-4o-mini"
    assert completion.model.startswith("gpt-4o-mini")
    a = cap.spans()[0].attributes
    assert a[Attr.REQUESTED_MODEL] == "gpt-4o" and a[GenAI.REQUEST_MODEL] == "gpt-4o-mini"
    assert cap.spans()[0].name == "chat gpt-4o-mini"


def test_enforcer_errors_fail_open(srv, monkeypatch):
    enforcer = FakeEnforcer(error=ConnectionError("alertmanager down"))
    with _enforced(srv, monkeypatch, enforcer) as cap:
        completion = _client(srv).chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=3)
    assert completion.usage.completion_tokens == 3
    assert cap.spans()[0].attributes[GenAI.USAGE_OUTPUT_TOKENS] == 3


def test_enforcement_off_without_url():
    assert configure._enforcer(Settings()) is None
    # with a URL, the real Enforcer is asked (or, if that module is missing, enforcement stays off)
    enforcer = configure._enforcer(Settings(enforcement_alertmanager_url="http://127.0.0.1:9"))
    assert enforcer is None or hasattr(enforcer, "decide")
