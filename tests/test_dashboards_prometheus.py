"""Every Prometheus query of every dashboard panel, run against a real Prometheus 2.42.

Prometheus (exemplar storage on, scrape every 1 s, rules evaluated every 1 s)
scrapes an app that records LLM calls for several teams, projects, features,
models, providers and environments, with cached reads, streams, failures,
an unpriced model and unattributed calls, under a routing policy
(``ROUTING``) that rewrites some calls and dry-runs others, so the "Model
routing" panels have savings and potential savings to show. The recording rules of
``inferops alerts build`` (from a small budgets file) are loaded too, so the
queries that read them are checked with them in place.

The app (``InstrumentedApp``) is instrumented by ``InferopsInstrumentor`` and
calls the local mock provider (``MockProviderServer``, real HTTP, real wire
formats) through httpx under ``inferops.attribute(...)``; it serves OpenMetrics
with exemplars through ``InferopsPrometheusMetricReader``.

Each query is interpolated as Grafana would ($__range, $__rate_interval,
$__interval, multi-value variables as regex alternations, "All" as ``.*``)
and run three times: all variables "All", one concrete value each, and two
teams/models at once. Each must succeed and return at least one series.

The "Self-hosted GPU cost" dashboard is left out on purpose (``EXCLUDED``): its
queries read dcgm-exporter / vLLM series and the GPU recording rules, which this
app does not produce. tests/test_gpu_live.py runs every one of its panel queries
against a real Prometheus fed by a dcgm/vLLM fixture exporter with the generated
GPU rules; ``test_excluded_gpu_queries_are_the_ones_test_gpu_live_runs`` below
keeps the two in step.
"""

from __future__ import annotations

import calendar
import math
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferops.alerts.budgets import parse_budgets_text
from inferops.alerts.rules import RuleOptions, build_groups, dump_yaml
from inferops.dashboards import lint, promql, provisioning
from inferops.alerts.gpu_config import parse_gpu_config_text
from inferops.dashboards.build import COST_DASHBOARDS, DASHBOARDS, GPU_DASHBOARD, build_all, iter_targets, to_dict
from inferops.dashboards.gpu import gpu_dashboard
import inferops
import inferops.instrumentation
from inferops.instrumentation import InferopsInstrumentor
from inferops.instrumentation.prometheus_reader import InferopsPrometheusMetricReader
from inferops.mock_providers import DATED_MODELS, MockProviderServer
from inferops.names import Attr, GenAI, Label, Metrics, RecordingRules
from inferops.processors.engine import CostEngine
from inferops.processors.usage import UsageRecord
from inferops.settings import Settings
from inferops.testing import PrometheusAPIError, PrometheusServer, prometheus_config

pytestmark = pytest.mark.e2e

PROMETHEUS = shutil.which("prometheus")
SCRAPE_S = 1

# Response models the mock reports for the requested ones (and the dashboards' `model` label).
MINI = DATED_MODELS["gpt-4o-mini"]
SONNET = DATED_MODELS["claude-sonnet-4-5"]
GPT4O = DATED_MODELS["gpt-4o"]
UNPRICED_MODEL = "acme-private-llm-7b"
PROMPT = "Summarize the customer's order history and suggest the next purchase."
CACHED = {"x-mock-cached-tokens": "800"}
#: ((team, project, feature, environment), [(provider, requested model, call options)]); "" = not set.
PLAN = [
    (("alpha", "checkout", "summarize", "prod"), [
        ("openai", "gpt-4o", dict()),  # routed to gpt-4o-mini by ROUTING (served and labelled as MINI)
        ("openai", "gpt-4o-mini", dict(headers=CACHED)),
        ("openai", "gpt-4o-mini", dict(stream=True)),
        ("openai", "gpt-4o-mini", dict(stream=True, headers={"x-mock-stream-abort-after": "4"})),
        ("openai", UNPRICED_MODEL, dict()),
    ]),
    (("beta", "search", "chat", "prod"), [
        ("anthropic", "claude-sonnet-4-5",
         dict(headers={"x-mock-cached-tokens": "1200", "x-mock-cache-write-tokens": "300"})),
        ("anthropic", "claude-sonnet-4-5", dict(stream=True)),
    ]),
    (("gamma", "search", "classify", "staging"), [("openai", "gpt-4o", dict())]),
    ((None, None, None, None), [("openai", "gpt-4o-mini", dict())]),  # unattributed
]
CONCRETE = {"environment": "prod", "team": "alpha", "project": "checkout", "feature": "summarize",
            "provider": "openai", "model": MINI}
MULTI = {"team": ["alpha", "beta"], "model": [MINI, SONNET]}

#: Routing policy of the app (Settings.routing_file). alpha's gpt-4o calls are rewritten to gpt-4o-mini
#: (Metrics.ROUTING_SAVINGS); alpha's gpt-4o-mini calls and every claude-sonnet-4-5 call match dry-run rules
#: (Metrics.ROUTING_POTENTIAL_SAVINGS, requests unchanged). gamma's gpt-4o call matches nothing, so
#: gpt-4o still reaches Prometheus as a served model.
ROUTED_FROM, ROUTED_TO = "gpt-4o", "gpt-4o-mini"
ROUTING = f"""\
rules:
  - name: alpha-4o-to-mini
    when: {{provider: openai, model: {ROUTED_FROM}, team: alpha}}
    route_to: {{model: {ROUTED_TO}}}
  - name: try-nano-for-alpha
    when: {{provider: openai, model: gpt-4o-mini, team: alpha}}
    route_to: {{model: gpt-4.1-nano}}
    dry_run: true
  - name: try-haiku
    when: {{provider: anthropic, model: claude-sonnet-4-5}}
    route_to: {{model: claude-haiku-4-5}}
    dry_run: true
"""

BUDGETS = """\
version: 1
defaults:
  receiver: {email: finops@example.com}
budgets:
  - name: alpha-checkout-monthly
    scope: {team: alpha, project: checkout}
    amount_usd: 5
  - name: beta-daily
    scope: {team: beta}
    period: calendar_day
    amount_usd: 2
"""


class InstrumentedApp:
    """An app instrumented by InferopsInstrumentor, calling the mock provider over real HTTP (httpx).

    Metrics are served by ``InferopsPrometheusMetricReader`` (OpenMetrics with exemplars);
    spans go to an in-memory exporter so exemplar trace ids can be checked against them.
    """

    def __init__(self, server: MockProviderServer, routing_file: Path) -> None:
        self.server = server
        res = Resource.create({"service.name": "shop-api", "deployment.environment.name": "prod"})
        self.exporter = InMemorySpanExporter()
        self.tp = TracerProvider(resource=res)
        self.tp.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InferopsPrometheusMetricReader(host="127.0.0.1", port=0)
        self.mp = MeterProvider(metric_readers=[self.reader], resource=res)
        self.instrumentor = InferopsInstrumentor()
        failures = inferops.instrumentation.instrument_failures
        self.instrumentor.instrument(
            tracer_provider=self.tp, meter_provider=self.mp,
            settings=Settings(provider_endpoints=server.endpoints(), required_tags=(Label.TEAM,),
                              routing_file=str(routing_file)))
        assert inferops.instrumentation.instrument_failures == failures, "InferopsInstrumentor failed"
        self.client = httpx.Client(timeout=30)
        self.engine = CostEngine()
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return self.reader.address[1]

    def trace_ids(self) -> set[str]:
        return {f"{s.context.trace_id:032x}" for s in self.exporter.get_finished_spans()}

    def call(self, provider: str, request_model: str, *, stream: bool = False, headers: dict | None = None):
        path, body = {
            "openai": ("/openai/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}]}),
            "anthropic": ("/anthropic/v1/messages", {"messages": [{"role": "user", "content": PROMPT}]}),
        }[provider]
        body = {**body, "model": request_model, "max_tokens": 40, "stream": stream}
        url = self.server.base_url + path
        try:
            if stream:
                with self.client.stream("POST", url, json=body, headers=headers or {}) as resp:
                    for _ in resp.iter_bytes():
                        pass
            else:
                self.client.post(url, json=body, headers=headers or {})
        except httpx.HTTPError:
            pass  # aborted streams: the app sees the provider's failure, inferops records it
        self.calls += 1

    def _round(self) -> None:
        for (team, project, feature, env), calls in PLAN:
            with inferops.attribute(team=team, project=project, feature=feature, environment=env):
                for provider, model, kw in calls:
                    self.call(provider, model, **kw)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._round()
            self._stop.wait(0.3)

    def start(self) -> "InstrumentedApp":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()
        self.instrumentor.uninstrument()
        self.mp.shutdown()
        self.tp.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if PROMETHEUS is None:
        pytest.fail("prometheus 2.42 is not installed (apt-get install prometheus); see README")
    tmp = tmp_path_factory.mktemp("prom")
    rules = tmp / "rules.yml"
    rules.write_text(dump_yaml(build_groups(parse_budgets_text(BUDGETS), RuleOptions.demo())))
    routing = tmp / "routing.yaml"
    routing.write_text(ROUTING)
    server = MockProviderServer(host="127.0.0.1", port=0).start()
    app = InstrumentedApp(server, routing).start()
    config = prometheus_config(jobs={"app": [f"127.0.0.1:{app.port}"]}, rule_files=[rules], interval=f"{SCRAPE_S}s",
                               evaluation_interval="1s")
    cost = Metrics.COST.prom_name
    ptd = RecordingRules.BUDGET_PERIOD_TO_DATE.name

    def scrapes_and_rules() -> tuple[float, float]:
        n = prom.query(f"max(count_over_time({cost}[1m]))")
        r = prom.query(f"count({ptd} > 0)")
        return (float(n[0]["value"][1]) if n else 0), (float(r[0]["value"][1]) if r else 0)

    # Wait (no timed assertion: a deadline only turns a hang into a clear failure) until
    # Prometheus holds >= 8 scrapes of the app and the recording rules have values.
    deadline = time.monotonic() + 120
    try:
        start = time.time()
        with PrometheusServer(config, workdir=tmp, exemplars=True, retention="1h") as prom:
            prom.wait_for(scrapes_and_rules, until=lambda sr: sr[0] >= 8 and sr[1] >= 2,
                          timeout=deadline - time.monotonic(), ignore=(OSError, PrometheusAPIError),
                          what="8 scrapes of the app and the budget rules")
            yield prom, app, start
    finally:
        app.stop()
        server.stop()


# -- Grafana's interpolation -------------------------------------------------------------


def _round_interval(seconds: float) -> int:
    """Grafana rounds $__interval to a "nice" value; at these ranges whole seconds (>= 1 s)."""
    return max(1, int(round(seconds)))


def _grafana_regex_escape(value: str) -> str:
    """Grafana's Prometheus datasource escaping of a variable value inside a regex matcher:
    regex metacharacters get a backslash, written doubled inside the PromQL string literal."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(), value)


def interpolate(expr: str, values: dict[str, list[str] | None], *, range_s: int, max_points: int) -> str:
    """What Grafana sends for ``expr``: variables, $__range, $__interval, $__rate_interval."""
    interval = max(_round_interval(range_s / max_points), SCRAPE_S)
    rate_interval = max(interval + SCRAPE_S, 4 * SCRAPE_S)
    out = expr.replace("$__rate_interval", f"{rate_interval}s").replace("$__range", f"{range_s}s") \
        .replace("$__interval", f"{interval}s")
    for var in promql.FILTER_VARIABLES:
        chosen = values.get(var)
        if chosen is None:
            text = ".*"  # "All" with allValue .*
        elif len(chosen) == 1:
            text = _grafana_regex_escape(chosen[0])
        else:
            text = "(" + "|".join(_grafana_regex_escape(v) for v in chosen) + ")"
        out = re.sub(rf"\${var}\b", lambda _m, text=text: text, out)
    assert "$" not in out.replace('"$1"', ""), out
    return out


def _month_start(t: float) -> float:
    tm = time.gmtime(t)
    return calendar.timegm((tm.tm_year, tm.tm_mon, 1, 0, 0, 0))


#: Dashboards whose queries this app cannot feed, and the test that runs them against real data instead.
#: The GPU dashboard needs dcgm-exporter and serving-engine series plus the GPU recording rules:
#: tests/test_gpu_live.py runs every panel query of gpu_dashboard() against a real Prometheus
#: scraping a dcgm/vLLM fixture exporter (see test_excluded_gpu_queries_are_the_ones_test_gpu_live_runs).
EXCLUDED = {GPU_DASHBOARD: "tests/test_gpu_live.py"}
QUERIES = [(name, panel, target) for name, board in build_all().items() if name not in EXCLUDED
           for panel, target in iter_targets(board) if target["datasource"]["type"] == "prometheus"]
PASSES = {
    "all": {},
    "concrete": {k: [v] for k, v in CONCRETE.items()},
    "multi": {k: list(v) for k, v in MULTI.items()},
}


def _run_query(prom: PrometheusServer, panel: dict, target: dict, values: dict, start: float) -> dict:
    now = time.time() - 1.5  # the last scrape is in
    if panel.get("timeFrom") == "now/M":
        frm = _month_start(now)
    else:
        frm = start - 2
    range_s = max(1, int(now - frm))
    expr = interpolate(target["expr"], values, range_s=range_s, max_points=panel.get("maxDataPoints") or 100)
    if target.get("instant"):
        return prom.get("/api/v1/query", query=expr, time=f"{now:.3f}") | {"_expr": expr}
    step = max(_round_interval(range_s / (panel.get("maxDataPoints") or 100)), SCRAPE_S)
    return prom.get("/api/v1/query_range", query=expr, start=f"{frm:.3f}", end=f"{now:.3f}", step=step) \
        | {"_expr": expr}


@pytest.mark.parametrize("pass_name", sorted(PASSES))
def test_every_panel_query_returns_series(stack, pass_name):
    prom, _, start = stack
    failures = []
    for name, panel, target in QUERIES:
        res = _run_query(prom, panel, target, PASSES[pass_name], start)
        if res.get("status") != "success":
            failures.append(f"{name} / {panel['title']} [{target['refId']}]: error {res.get('error')}\n  {res['_expr']}")
        elif not res["data"]["result"]:
            failures.append(f"{name} / {panel['title']} [{target['refId']}]: no series\n  {res['_expr']}")
    assert len(QUERIES) >= 75
    assert not failures, f"{len(failures)} of {len(QUERIES)} queries failed:\n" + "\n".join(failures)


def test_every_metric_a_query_names_has_its_own_data(stack):
    """`or vector(0)` fallbacks must not hide a metric that never reached Prometheus."""
    prom, _, _ = stack
    names = set()
    for _, _, target in QUERIES:
        names |= lint.metric_names(target["expr"])
    assert Metrics.CACHE_SAVINGS.prom_name in names and Metrics.ERROR_COST.prom_name in names
    missing = [n for n in sorted(names) if not prom.get("/api/v1/series", **{"match[]": n})["data"]]
    assert not missing, f"no series in Prometheus for {missing}"


def test_every_label_variable_resolves(stack):
    prom, _, _ = stack
    board = build_all()["inferops-overview.json"]
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
        selector, label = m.group(1), m.group(2)
        for values in ({}, {k: [v] for k, v in CONCRETE.items()}):
            sel = interpolate(selector, values, range_s=60, max_points=100)
            res = prom.get(f"/api/v1/label/{label}/values", **{"match[]": sel})
            assert res["status"] == "success" and res["data"], (var["name"], sel)
            assert CONCRETE[var["name"]] in res["data"], (var["name"], res["data"])


def test_figures_add_up(stack):
    """Spot-check arithmetic through the panels: shares sum to 1, cache savings match the engine."""
    prom, app, start = stack
    by_team = next(t for _, p, t in QUERIES if p["title"] == "Spend by team" and t["refId"] == "B")
    shares = _run_query(prom, {"maxDataPoints": 100}, {**by_team, "instant": True}, {}, start)
    assert math.isclose(sum(float(r["value"][1]) for r in shares["data"]["result"]), 1.0, rel_tol=1e-9)
    # Savings per cached call: cache-read tokens x (input price - cache-read price), from the engine.
    per_call = app.engine.price(UsageRecord("openai", MINI, input_tokens=1000, cache_read_tokens=800))
    entry = app.engine.resolve("openai", MINI).entry.prices["standard"]
    assert math.isclose(per_call.cache_read_savings, 800 * (entry["input"] - entry["cache_read"]), rel_tol=1e-9)
    saved = prom.get("/api/v1/query", query=f'sum({Metrics.CACHE_SAVINGS.prom_name}{{{Label.MODEL}="{MINI}"}})')
    calls = prom.get("/api/v1/query", query=f'sum({Metrics.TOKENS.prom_name}{{{Label.MODEL}="{MINI}",'
                                              f'{Label.TOKEN_TYPE}="cache_read"}}) / 800')
    n = float(calls["data"]["result"][0]["value"][1])
    assert n >= 1 and n == int(n)
    assert math.isclose(float(saved["data"]["result"][0]["value"][1]), n * per_call.cache_read_savings, rel_tol=1e-6)


def _panel_target(title: str, ref: str = "A") -> dict:
    [target] = [t for _, p, t in QUERIES if p["title"] == title and t["refId"] == ref]
    return target


def test_routing_panels_show_the_policy_and_its_savings(stack):
    """The "Model routing" panels read what the policy did: the rewritten pair's savings equal the
    engine's per-call figure times a whole number of calls, dry-run pairs are the rules' targets."""
    prom, app, start = stack
    spans = app.exporter.get_finished_spans()
    routed = [s for s in spans if s.attributes.get(Attr.ROUTING_RULE) == "alpha-4o-to-mini"]
    assert routed and all(s.attributes[Attr.REQUESTED_MODEL] == ROUTED_FROM for s in routed)
    assert all(s.attributes[GenAI.RESPONSE_MODEL] == MINI for s in routed)  # the mock served the routed model
    # Per routed call: the requested model's price minus the routed model's, for the tokens used.
    per_call = set()
    for s in routed:
        a = s.attributes
        used = dict(input_tokens=a[GenAI.USAGE_INPUT_TOKENS], output_tokens=a[GenAI.USAGE_OUTPUT_TOKENS])
        want = (app.engine.price(UsageRecord("openai", ROUTED_FROM, **used)).total
                - app.engine.price(UsageRecord("openai", MINI, **used)).total)
        assert want > 0 and math.isclose(a[Attr.ROUTING_SAVINGS], want, rel_tol=1e-9)
        per_call.add(round(want, 15))
    assert len(per_call) == 1  # same prompt, same tokens: one figure per call
    saved = prom.get("/api/v1/query", query=f"sum by ({Label.TEAM}, {Label.REQUESTED_MODEL}, {Label.ROUTED_MODEL}) "
                                            f"({Metrics.ROUTING_SAVINGS.prom_name})")["data"]["result"]
    assert [r["metric"] for r in saved] == [{Label.TEAM: "alpha", Label.REQUESTED_MODEL: ROUTED_FROM,
                                             Label.ROUTED_MODEL: ROUTED_TO}]
    n = float(saved[0]["value"][1]) / per_call.pop()
    assert n >= 1 and math.isclose(n, round(n), abs_tol=1e-6)
    # The pair panels: exactly the policy's pairs.
    pairs = _run_query(prom, {"maxDataPoints": 100}, _panel_target("Routing savings by model pair ($ per hour)"),
                       {}, start)["data"]["result"]
    assert {(r["metric"][Label.REQUESTED_MODEL], r["metric"][Label.ROUTED_MODEL]) for r in pairs} == \
        {(ROUTED_FROM, ROUTED_TO)}
    dry = _run_query(prom, {"maxDataPoints": 100},
                     _panel_target("Dry-run routing: potential savings by model pair ($ per hour)"), {}, start)
    assert {r["metric"][Label.ROUTED_MODEL] for r in dry["data"]["result"]} == {"gpt-4.1-nano", "claude-haiku-4-5"}
    by_team = _run_query(prom, {"maxDataPoints": 100},
                         {**_panel_target("Routing savings by team, feature and model pair", "B"), "instant": True},
                         {}, start)["data"]["result"]
    assert {r["metric"][Label.TEAM] for r in by_team} == {"alpha", "beta"}
    # Dry runs sent the requests unchanged: gamma's gpt-4o (no rule) and the dry-run models still served.
    served = set(prom.get(f"/api/v1/label/{Label.MODEL}/values", **{"match[]": Metrics.COST.prom_name})["data"])
    assert {GPT4O, MINI, SONNET} <= served
    assert not served & {DATED_MODELS["gpt-4.1-nano"], DATED_MODELS["claude-haiku-4-5"]}


def test_exemplars_are_trace_ids_of_exported_spans(stack):
    prom, app, start = stack
    exemplar_targets = [(p, t) for _, p, t in QUERIES if t.get("exemplar")]
    assert len(exemplar_targets) >= 6
    exported = app.trace_ids()
    for panel, target in exemplar_targets:
        now = time.time() - 1.5
        expr = interpolate(target["expr"], {}, range_s=int(now - start), max_points=100)
        res = prom.get("/api/v1/query_exemplars", query=expr, start=f"{start - 2:.3f}", end=f"{now:.3f}")
        assert res["status"] == "success", (panel["title"], res)
        ids = {e["labels"]["trace_id"] for s in res["data"] for e in s["exemplars"]}
        assert ids, f"{panel['title']}: no exemplars"
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert ids <= exported, f"{panel['title']}: exemplar trace ids not among exported spans"


def test_tempo_trace_to_metrics_queries_find_the_span_series(stack):
    """Grafana's Tempo -> Prometheus links (deploy/grafana) with $__tags built from a real exported span."""
    prom, app, start = stack
    span = next(s for s in app.exporter.get_finished_spans()
                if all(s.attributes.get(attr) for attr, _ in provisioning.SPAN_TO_LABEL))
    tags = ", ".join(f'{label}="{span.attributes[attr]}"' for attr, label in provisioning.SPAN_TO_LABEL)
    for query in provisioning.trace_to_metrics_queries():
        expr = interpolate(query["query"].replace("$__tags", tags), {}, range_s=int(time.time() - start),
                           max_points=100)
        now = time.time() - 1.5
        res = prom.get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{now:.3f}", step=1)
        assert res["status"] == "success" and res["data"]["result"], (query["name"], expr)


def test_only_the_gpu_dashboard_is_excluded():
    """Every API-cost dashboard's queries run here; only the GPU dashboard is left to test_gpu_live."""
    assert set(EXCLUDED) == set(DASHBOARDS) - COST_DASHBOARDS == {GPU_DASHBOARD}
    assert {name for name, _, _ in QUERIES} == set(COST_DASHBOARDS)


def test_excluded_gpu_queries_are_the_ones_test_gpu_live_runs(repo_root):
    """test_gpu_live runs the queries of gpu_dashboard(<its config>); the committed dashboard is
    gpu_dashboard(None). They must be the same panels and queries, or the committed JSON would
    carry queries nothing ran against Prometheus."""
    import test_gpu_live  # tests/ is on sys.path (pytest's default rootdir-relative import)

    assert (repo_root / EXCLUDED[GPU_DASHBOARD]).exists()
    assert callable(test_gpu_live.test_every_gpu_dashboard_query_returns_data)
    # What test_gpu_live does: to_dict(gpu_dashboard(config)) with its live config.
    live = {(p["title"], t["refId"], t["expr"])
            for p, t in iter_targets(to_dict(gpu_dashboard(parse_gpu_config_text(test_gpu_live.CONFIG))))}
    committed = {(p["title"], t["refId"], t["expr"]) for p, t in iter_targets(build_all()[GPU_DASHBOARD])}
    assert len(committed) >= 20 and committed == live, sorted(committed ^ live)
