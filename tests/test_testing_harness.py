"""inferops.testing: the one harness that runs real Prometheus / Alertmanager for the tests and the demo."""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from inferops.testing import (
    AlertmanagerServer,
    PrometheusAPIError,
    PrometheusServer,
    ServerStartError,
    WebhookReceiver,
    free_port,
    prometheus_config,
    wait_for,
)

pytestmark = pytest.mark.e2e

RULES = """\
groups:
  - name: harness
    rules:
      - record: harness:two
        expr: vector(2)
      - alert: HarnessAlways
        expr: vector(1)
        labels: {severity: info}
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:  # a zombie waiting for its parent counts as gone
        return fh.read().split(") ")[1].startswith("Z")


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_prometheus_server_rules_queries_alerts_and_clean_stop(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = prometheus_config(jobs={"self": [f"127.0.0.1:{port}"]}, rule_files=[tmp_path / "rules.yml"])
    server = PrometheusServer(config, port=port, exemplars=True, log_level="warn")
    with server as prom:
        assert prom.running and prom.url == f"http://127.0.0.1:{port}"
        two = prom.wait_for(lambda: prom.query("harness:two"), timeout=30, what="the recording rule")
        assert [r["value"][1] for r in two] == ["2"]
        firing = prom.wait_for(prom.alerts, until=lambda alerts: any(a["state"] == "firing" for a in alerts),
                               timeout=30, what="HarnessAlways firing")
        assert [a["labels"]["alertname"] for a in firing] == ["HarnessAlways"]
        up = prom.wait_for(lambda: prom.query('up{job="self"} == 1'), timeout=30, what="the self scrape")
        now = time.time()
        assert prom.query_range('up{job="self"}', now - 30, now, 1)[0]["metric"]["job"] == "self"
        assert up and prom.query_exemplars("up", now - 30, now) == []  # exemplar storage on: a valid answer
        with pytest.raises(PrometheusAPIError, match="parse error"):
            prom.query("sum(")
        raw = prom.get("/api/v1/query", query="sum(")
        assert raw["status"] == "error" and raw["http"] == 400 and raw["errorType"] == "bad_data"
        workdir, pid = prom.workdir, prom.process.pid
        assert (workdir / "prometheus.yml").exists() and (workdir / "data").is_dir()
    assert not server.running and _gone(pid) and _refused(port)
    assert not workdir.exists()  # the temporary workdir made by the harness is removed


def test_a_server_that_fails_to_start_is_reported_with_its_own_log(tmp_path):
    server = PrometheusServer("global: [not, a, mapping\n", workdir=tmp_path)
    with pytest.raises(ServerStartError) as info:
        server.start()
    message = str(info.value)
    assert re.match(r"prometheus exited with status [1-9]\d*:\n", message), message
    assert "Error loading config" in message  # Prometheus' own words, from its log
    assert not server.running and _gone(server.process.pid)
    assert tmp_path.exists()  # a workdir given by the caller is the caller's


def test_backfilled_samples_are_served(tmp_path):
    t0 = 1_790_000_000
    history = (f"# TYPE h counter\nh_total{{a=\"1\"}} 1.0 {t0}\nh_total{{a=\"1\"}} 4.0 {t0 + 60}\n# EOF\n")
    with PrometheusServer(workdir=tmp_path, backfill=history, retention="100y") as prom:
        [series] = prom.query("h_total[61s]", at=t0 + 60)
        assert [(float(t), float(v)) for t, v in series["values"]] == [(t0, 1.0), (t0 + 60, 4.0)]


def test_alertmanager_delivers_to_the_webhook_receiver(tmp_path):
    with WebhookReceiver() as hook:
        config = {"route": {"receiver": "hook", "group_wait": "0s", "group_by": ["alertname"]},
                  "receivers": [{"name": "hook", "webhook_configs": [{"url": f"{hook.url}/team-a"}]}]}
        with AlertmanagerServer(config, workdir=tmp_path, log_level="warn") as am:
            am.post_alerts([{"labels": {"alertname": "HarnessTest", "team": "a"},
                             "annotations": {"summary": "from the harness test"}}])
            assert [a["labels"]["alertname"] for a in am.alerts()] == ["HarnessTest"]
            [got] = am.wait_for(lambda: hook.alerts("/team-a"), timeout=30, what="the webhook call")
    assert got["status"] == "firing" and got["labels"] == {"alertname": "HarnessTest", "team": "a"}
    assert got["annotations"]["summary"] == "from the harness test"
    assert hook.alerts("/team-b") == []


def test_wait_for_says_what_it_waited_for_and_does_not_wait_out_errors():
    with pytest.raises(TimeoutError, match=r"waiting for three series; last value: \[1, 2\]"):
        wait_for(lambda: [1, 2], until=lambda r: len(r) >= 3, timeout=0.2, interval=0.05, what="three series")
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("status")

    with pytest.raises(KeyError):
        wait_for(broken, timeout=5, interval=0.05)
    assert len(calls) == 1  # not retried: only the `ignore` types are
    with pytest.raises(TimeoutError, match="last error: KeyError"):
        wait_for(broken, timeout=0.2, interval=0.05, ignore=(KeyError,))
