"""`inferops demo` as a user runs it: a subprocess on free ports, with and without Prometheus/Alertmanager.

Asserts on what it prints (live spend, chargeback summary, the budget alert arriving), on what it
serves (OpenMetrics with exemplars, OTLP spans) and writes (dashboards, rules, Alertmanager config),
and that it leaves no child process and no bound port behind, whether the time runs out or it gets
SIGINT/SIGTERM.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from inferops.names import Metrics

TEAMS = ("search", "support", "research", "marketing", "platform")
HAS_STACK = bool(shutil.which("prometheus") and shutil.which("prometheus-alertmanager"))


#: The `inferops` command (main() in-process, as the console script runs it).
INFEROPS = [sys.executable, "-c", "import sys; from inferops.cli import main; sys.exit(main(sys.argv[1:]))"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFEROPS_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Demo:
    """`inferops demo ...` with stdout collected line by line."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.out_dir = tmp / "out"
        cmd = [*INFEROPS, "demo", "--out", str(self.out_dir), "--metrics-port", "0",
               "--mock-port", "0", "--prometheus-port", "0", "--alertmanager-port", "0", "--refresh", "1", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                                     cwd=tmp)
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text)
            if m:
                return m
            if self.proc.poll() is not None:
                self._thread.join(5)
                m = re.search(pattern, self.text)
                if m:
                    return m
                raise AssertionError(f"demo exited ({self.proc.returncode}) before {pattern!r}:\n{self.text}")
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} after {timeout}s:\n{self.text}")

    def finish(self, timeout: float = 90.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._thread.join(5)
        return rc


def _leftovers(marker: str) -> list[str]:
    """Command lines of live processes mentioning ``marker`` (the test's temp folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(cmdline)
    return found


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` (SO_REUSEADDR, as servers bind: TIME_WAIT of closed scrapes is fine)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _chargeback(text: str) -> dict[str, float]:
    """Team subtotals (USD) from the chargeback summary."""
    assert "Chargeback summary" in text, text
    summary = text.split("Chargeback summary", 1)[1]
    return {m.group(1): float(m.group(2).replace(",", ""))
            for m in re.finditer(r"subtotal (\S+)\s+\d+\s+\$([0-9.,]+)", summary)}


def _check_files(out: Path) -> None:
    dashboards = sorted((out / "dashboards").glob("*.json"))
    assert dashboards, list(out.iterdir())
    for path in dashboards:
        assert json.loads(path.read_text())["panels"], path
    rules = yaml.safe_load((out / "alerts" / "prometheus-rules.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert "InferopsBudgetExhausted" in alerts
    am = yaml.safe_load((out / "alerts" / "alertmanager.yml").read_text())
    assert am["route"]["routes"] and am["receivers"]
    json.loads((out / "alerts" / "grafana-alert-rules.json").read_text())
    for rel in ("grafana/provisioning/datasources/inferops.yaml", "grafana/provisioning/dashboards/inferops.yaml",
                "budgets.yaml", "prices.yaml", "routing.yaml"):
        assert yaml.safe_load((out / rel).read_text()), rel
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "promtool and amtool come with the Debian prometheus packages (.ci/run)"
    subprocess.run([promtool, "check", "rules", str(out / "alerts" / "prometheus-rules.yaml")], check=True,
                   capture_output=True)
    subprocess.run([amtool, "check-config", str(out / "alerts" / "alertmanager.yml")], check=True,
                   capture_output=True)


class _OtlpSink:
    """An OTLP/HTTP traces endpoint that decodes what it receives (stands in for the Collector)."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        sink = self
        self.spans: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest.FromString(body)
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            attrs = {kv.key: kv.value.WhichOneof("value") and getattr(kv.value, kv.value.WhichOneof("value"))
                                     for kv in span.attributes}
                            sink.spans.append({"path": self.path, "name": span.name, "attrs": attrs})
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_demo_without_prometheus_serves_exemplars_sends_otlp_and_prints_the_chargeback(tmp_path: Path):
    sink = _OtlpSink()
    try:
        demo = Demo(tmp_path, "--duration", "6", "--no-prometheus", "--otlp-endpoint", sink.url)
        port = int(demo.wait_for(r"metrics \(OpenMetrics with exemplars\) at http://127\.0\.0\.1:(\d+)/metrics")
                   .group(1))
        demo.wait_for(r"\[\s*[0-9.]+/6s\] calls=[1-9]")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            metrics = resp.read().decode()
        rc = demo.finish()
    finally:
        sink.close()
    text = demo.text
    assert rc == 0, text
    cost_lines = [ln for ln in metrics.splitlines() if ln.startswith(Metrics.COST.prom_name + "{")]
    assert cost_lines and any(re.search(r' # \{[^}]*trace_id="[0-9a-f]{32}"', ln) for ln in cost_lines), cost_lines
    assert "budget alerts skipped" in text
    subtotals = _chargeback(text)
    assert set(subtotals) == set(TEAMS), text
    assert all(v > 0 for v in subtotals.values()), subtotals
    total = float(re.search(r"TOTAL\s+\d+\s+\$([0-9.,]+)\s+100\.0%", text).group(1).replace(",", ""))
    assert abs(total - sum(subtotals.values())) < 0.0002 * len(TEAMS) + 1e-9
    for model in ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gemini-2.5-pro", "llama-3.1-8b-instruct"):
        assert model in text
    assert "no price" not in text  # the demo's price overrides price the self-hosted model
    # The demo's routing policy: a rewrite rule and a dry-run rule, both summarised.
    m = re.search(r"rewritten calls saved \$([0-9.,]+); dry-run rules would have saved \$([0-9.,]+)", text)
    assert m, text
    assert float(m.group(1)) + float(m.group(2)) > 0, m.group(0)
    _check_files(demo.out_dir)
    assert not (demo.out_dir / "prometheus.yml").exists()
    # Spans reached the OTLP endpoint with the GenAI and attribution attributes.
    genai = [s for s in sink.spans if "gen_ai.provider.name" in s["attrs"]]
    assert {s["path"] for s in sink.spans} == {"/v1/traces"}
    assert {s["attrs"]["gen_ai.provider.name"] for s in genai} >= {"openai", "anthropic", "gcp.gemini"}
    assert {s["attrs"].get("inferops.team") for s in genai} >= {"search", "support", "research"}
    assert _port_free(port)
    assert not _leftovers(str(tmp_path))


@pytest.mark.e2e
def test_demo_with_prometheus_shows_the_budget_alert_arriving(tmp_path: Path):
    assert HAS_STACK, "prometheus and prometheus-alertmanager are required (Debian packages; .ci/run installs them)"
    demo = Demo(tmp_path, "--duration", "8", "--alert-wait", "40", "--webhook-port", "0")
    rc = demo.finish()
    text = demo.text
    assert rc == 0, text
    assert re.search(r"Prometheus at http://127\.0\.0\.1:\d+ .*Alertmanager at http://127\.0\.0\.1:\d+", text)
    alerts = re.findall(r"ALERT received: (Inferops\w+) .*team=(\w+).*budget=([\w-]+).*\$[0-9.]+", text)
    assert alerts, text
    assert {team for _, team, _ in alerts} <= {"search", "support"}
    assert "Budget alerts received by the webhook" in text
    assert all(v > 0 for v in _chargeback(text).values())
    _check_files(demo.out_dir)
    prom = yaml.safe_load((demo.out_dir / "prometheus.yml").read_text())
    assert prom["rule_files"] == [str((demo.out_dir / "alerts" / "prometheus-rules.yaml").resolve())]
    subprocess.run([shutil.which("promtool"), "check", "config", str(demo.out_dir / "prometheus.yml")], check=True,
                   capture_output=True)
    assert not _leftovers(str(tmp_path))


@pytest.mark.e2e
def test_sigint_stops_prometheus_alertmanager_and_still_prints_the_summary(tmp_path: Path):
    assert HAS_STACK, "prometheus and prometheus-alertmanager are required (Debian packages; .ci/run installs them)"
    demo = Demo(tmp_path, "--duration", "120", "--webhook-port", "0")
    m = demo.wait_for(r"Prometheus at http://127\.0\.0\.1:(\d+) .*Alertmanager at http://127\.0\.0\.1:(\d+)")
    ports = [int(m.group(1)), int(m.group(2))]
    ports.append(int(demo.wait_for(r"metrics \(OpenMetrics with exemplars\) at http://127\.0\.0\.1:(\d+)").group(1)))
    ports.append(int(demo.wait_for(r"alert webhook receiver at http://127\.0\.0\.1:(\d+)").group(1)))
    demo.wait_for(r"calls=[1-9]")
    assert len(_leftovers(str(tmp_path))) >= 3  # the demo, Prometheus, Alertmanager
    demo.proc.send_signal(signal.SIGINT)
    rc = demo.finish(60)
    text = demo.text
    assert rc == 0, text
    assert "SIGINT received, stopping" in text and "(SIGINT)" in text
    assert all(v > 0 for v in _chargeback(text).values()), text
    assert "Traceback" not in text
    assert not _leftovers(str(tmp_path))
    assert all(_port_free(p) for p in ports), ports


def test_sigterm_stops_the_demo_cleanly(tmp_path: Path):
    demo = Demo(tmp_path, "--duration", "0", "--no-prometheus")
    demo.wait_for(r"calls=[1-9]")
    demo.proc.send_signal(signal.SIGTERM)
    rc = demo.finish(60)
    assert rc == 0, demo.text
    assert "SIGTERM received, stopping" in demo.text and "TOTAL" in demo.text
    assert not _leftovers(str(tmp_path))


def test_a_taken_port_names_the_port_and_the_flag(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag in ("--metrics-port", "--mock-port"):
            proc = subprocess.run(
                [*INFEROPS, "demo", "--out", str(tmp_path / "out"), "--no-prometheus",
                 "--metrics-port", "0", "--mock-port", "0", flag, str(port)],
                capture_output=True, text=True, env=_env(), timeout=60)
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert f"port {port} on 127.0.0.1 is not available" in proc.stderr
            assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert not _leftovers(str(tmp_path))


def test_with_prometheus_but_no_binaries_is_a_clear_error(tmp_path: Path):
    env = _env()
    env["PATH"] = str(tmp_path)  # no prometheus here
    proc = subprocess.run([*INFEROPS, "demo", "--out", str(tmp_path / "out"),
                           "--with-prometheus", "--metrics-port", "0", "--mock-port", "0"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "--with-prometheus: prometheus and prometheus-alertmanager not found on PATH" in proc.stderr
