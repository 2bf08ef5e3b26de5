"""`inferops report` against a real Prometheus 2.42 holding known, back-dated traffic.

History (hourly samples, UTC), all figures below worked by hand:

* cost input, openai gpt-4o, team search: 10.0 at 2026-09-30T22:00, +0.5/h up to
  2026-10-15T11:00; the process restarts and the counter reads 0.25 at 12:00,
  then +0.5/h until 2026-11-01T02:00.
  October = 347 x 0.5 (Oct 1 01:00..Oct 15 11:00) + 0.25 (the reset sample)
  + 396 x 0.5 (Oct 15 13:00..Nov 1 00:00) = 173.5 + 0.25 + 198 = 371.75.
* cost output, same call labels, instance a: 0 at 2026-09-30T22:00, +1/h: October = 744.
* cost input, anthropic claude-sonnet-4-5, team unattributed: born 2026-10-20T00:00
  at 2.0, +0.25/h until Nov 1 02:00: October = 2.0 + 288 x 0.25 = 74.0.
* tokens: search input +1000/h and output +100/h from 0 (October 744,000 and
  74,400); the unattributed series born Oct 20 at 500, +500/h (144,500); an
  unpriced model (my-custom-model, team research) born Oct 5 00:00 at 300,
  +300/h for 24 h (7,500 tokens) with 1 + 24 = 25 unpriced requests.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from test_report_prom import hourly, start_prometheus, ts

pytestmark = pytest.mark.e2e

CALL = {"provider": "openai", "model": "gpt-4o", "operation": "chat", "team": "search", "project": "web",
        "feature": "qa", "environment": "prod", "service_name": "api", "job": "app", "instance": "a"}
CLAUDE = {**CALL, "provider": "anthropic", "model": "claude-sonnet-4-5", "team": "unattributed",
          "feature": "summarize", "instance": "b"}
CUSTOM = {**CALL, "model": "my-custom-model", "team": "research", "project": "lab", "feature": "agent",
          "instance": "c"}

START = ts(2026, 9, 30, 22)
RESET = ts(2026, 10, 15, 12)
END = ts(2026, 11, 1, 2)


def history():
    before = hourly(START, (RESET - START) // 3600, 10.0, 0.5)  # 22:00 Sep 30 .. 11:00 Oct 15
    after = hourly(RESET, (END - RESET) // 3600 + 1, 0.25, 0.5)  # 12:00 Oct 15 .. 02:00 Nov 1
    full = (END - START) // 3600 + 1
    born = ts(2026, 10, 20)
    nborn = (END - born) // 3600 + 1
    custom = ts(2026, 10, 5)
    return {
        "inferops_cost_usd": [
            ({**CALL, "cost_type": "input"}, before + after),
            ({**CALL, "cost_type": "output"}, hourly(START, full, 0.0, 1.0)),
            ({**CLAUDE, "cost_type": "input"}, hourly(born, nborn, 2.0, 0.25)),
        ],
        "inferops_tokens": [
            ({**CALL, "token_type": "input", "usage_source": "provider"}, hourly(START, full, 0.0, 1000.0)),
            ({**CALL, "token_type": "output", "usage_source": "provider"}, hourly(START, full, 0.0, 100.0)),
            ({**CLAUDE, "token_type": "input", "usage_source": "provider"}, hourly(born, nborn, 500.0, 500.0)),
            ({**CUSTOM, "token_type": "input", "usage_source": "provider"}, hourly(custom, 25, 300.0, 300.0)),
        ],
        "inferops_unpriced_requests": [
            (CUSTOM, hourly(custom, 25, 1.0, 1.0)),
        ],
    }


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = start_prometheus(tmp_path_factory, "report", history())
    yield server
    server.stop()


def report_json(run_cli, prom, *args):
    status, out, err = run_cli("report", "--prometheus", prom.url, "--format", "json", *args)
    assert status == 0, err
    return json.loads(out)


def test_month_by_team_equals_hand_sums_across_reset_and_boundaries(run_cli, prom):
    doc = report_json(run_cli, prom, "--period", "2026-10", "--by", "team")
    rows = {r["team"]: r for r in doc["rows"]}
    assert rows["search"]["cost_usd"] == pytest.approx(371.75 + 744.0, abs=1e-9)
    assert rows["unattributed"]["cost_usd"] == pytest.approx(74.0, abs=1e-9)
    assert rows["research"]["cost_usd"] is None  # unpriced: unknown, never $0
    assert rows["research"]["unpriced_requests"] == 25 and rows["research"]["share"] is None
    total = 371.75 + 744.0 + 74.0
    assert doc["total"]["cost_usd"] == pytest.approx(total, abs=1e-9)
    assert rows["search"]["share"] == pytest.approx(1115.75 / total, abs=1e-6)
    assert rows["search"]["input_tokens"] == 744_000 and rows["search"]["output_tokens"] == 74_400
    assert doc["unattributed"]["cost_usd"] == pytest.approx(74.0, abs=1e-9)
    assert doc["unattributed"]["tokens"] == 144_500
    assert doc["unpriced"]["unpriced_requests"] == 25 and doc["unpriced"]["tokens"] == 7_500
    assert doc["total"]["tokens"] == 744_000 + 74_400 + 144_500 + 7_500
    assert doc["period"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "label": "2026-10"}


def test_next_month_gets_only_what_was_counted_after_the_boundary(run_cli, prom):
    doc = report_json(run_cli, prom, "--period", "2026-11", "--by", "model")
    rows = {r["model"]: r for r in doc["rows"]}
    # Samples at Nov 1 01:00 and 02:00 only: input 2 x 0.5, output 2 x 1, claude 2 x 0.25.
    assert rows["gpt-4o"]["cost_usd"] == pytest.approx(3.0, abs=1e-9)
    assert rows["claude-sonnet-4-5"]["cost_usd"] == pytest.approx(0.5, abs=1e-9)


def test_adjacent_periods_add_up_and_reset_window(run_cli, prom):
    """Split exactly at the reset: the halves sum to the month, and a short window across the reset is exact."""
    first = report_json(run_cli, prom, "--from", "2026-10-01", "--to", "2026-10-15T12:00:00Z", "--by", "team")
    second = report_json(run_cli, prom, "--from", "2026-10-15T12:00:00Z", "--to", "2026-11-01", "--by", "team")
    a = {r["team"]: r["cost_usd"] for r in first["rows"]}
    b = {r["team"]: r["cost_usd"] for r in second["rows"]}
    # The reset sample at 12:00 closes the first window: 347 x 0.5 + 0.25 input, 348 x 1 output.
    assert a["search"] == pytest.approx(173.5 + 0.25 + 348.0, abs=1e-9)
    assert b["search"] == pytest.approx(198.0 + 396.0, abs=1e-9)
    assert a["search"] + b["search"] == pytest.approx(371.75 + 744.0, abs=1e-9)
    # 10:30 .. 13:30 with the 10:00 sample as baseline: 11:00 +0.5, 12:00 reset 0.25, 13:00 +0.5; output 3 x 1.
    win = report_json(run_cli, prom, "--from", "2026-10-15T10:30:00Z", "--to", "2026-10-15T13:30:00Z", "--by", "team")
    assert {r["team"]: r["cost_usd"] for r in win["rows"]}["search"] == pytest.approx(1.25 + 3.0, abs=1e-9)


def test_chunk_size_does_not_change_figures(run_cli, prom):
    coarse = report_json(run_cli, prom, "--period", "2026-10", "--by", "team", "--chunk", "1d")
    fine = report_json(run_cli, prom, "--period", "2026-10", "--by", "team", "--chunk", "1h")
    assert coarse["rows"] == fine["rows"]


def test_increase_would_not_give_the_exact_figure(prom):
    """Why raw samples: PromQL increase() extrapolates the series born inside the month."""
    from inferops.processors.report import PrometheusClient

    res = PrometheusClient(prom.url).query('sum(increase(inferops_cost_usd_total{team="unattributed"}[31d]))',
                                           ts(2026, 11, 1))
    assert abs(float(res[0]["value"][1]) - 74.0) > 0.5


def test_table_and_csv_formats(run_cli, prom):
    status, out, err = run_cli("report", "--prometheus", prom.url, "--period", "2026-10", "--by", "team,model")
    assert status == 0, err
    assert "(unattributed)" in out and "(unpriced: cost unknown)" in out and "TOTAL" in out
    assert "1,189.7500" in out  # the month's total
    status, out, err = run_cli("report", "--prometheus", prom.url, "--period", "2026-10", "--by", "team,model",
                               "--format", "csv")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    by_kind = {(r["kind"], r["team"], r["model"]): r for r in rows}
    assert float(by_kind[("group", "search", "gpt-4o")]["cost_usd"]) == pytest.approx(1115.75)
    assert by_kind[("group", "research", "my-custom-model")]["cost_usd"] == ""
    assert by_kind[("unpriced", "", "")]["unpriced_requests"] == "25"
    assert {r["currency"] for r in rows} == {"USD"}


def test_bad_arguments_are_clear(run_cli, prom):
    status, _, err = run_cli("report", "--prometheus", prom.url, "--period", "2026-13")
    assert status == 2 and "YYYY-MM" in err
    status, _, err = run_cli("report", "--prometheus", prom.url, "--period", "2026-10", "--by", "colour")
    assert status == 2 and "unknown label 'colour'" in err
    status, _, err = run_cli("report", "--prometheus", "http://127.0.0.1:1", "--period", "2026-10")
    assert status == 1 and "cannot reach Prometheus" in err
