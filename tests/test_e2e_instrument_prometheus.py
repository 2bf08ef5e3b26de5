"""End to end: an app under ``opentelemetry-instrument`` with OTEL_METRICS_EXPORTER=inferops_prometheus,
scraped by a real Prometheus 2.42 with exemplar storage; exemplar trace ids are the exported spans' ids."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from inferops.mock_providers import MockProviderServer
from inferops.names import Metrics

pytestmark = pytest.mark.e2e

PROMETHEUS = shutil.which("prometheus")

APP = textwrap.dedent("""
    import os, sys, time
    import openai
    client = openai.OpenAI(base_url=os.environ["MOCK_BASE"] + "/openai/v1", api_key="sk-e2e", max_retries=0)
    import inferops
    for i in range(3):
        with inferops.attribute(team="search", feature=f"f{i}"):
            client.chat.completions.create(model="gpt-4o", max_tokens=5,
                                           messages=[{"role": "user", "content": f"call {i}"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", max_tokens=5, stream=True,
                                            messages=[{"role": "user", "content": "streamed"}])
    for _ in stream:
        pass
    print("CALLS-DONE", flush=True)
    stop = os.environ["STOP_FILE"]
    deadline = time.time() + 90
    while not os.path.exists(stop) and time.time() < deadline:
        time.sleep(0.1)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _spans_from_console(text: str) -> list[dict]:
    """The console span exporter prints one JSON object per span."""
    dec = json.JSONDecoder()
    spans, i = [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return spans
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict) and "context" in obj:
            spans.append(obj)
        i = end


def test_exemplars_reach_prometheus_with_the_span_trace_ids(tmp_path: Path):
    assert PROMETHEUS, "prometheus 2.42 is required (Debian package; .ci/run installs it)"
    bindir = Path(sys.executable).parent
    otel_instrument = bindir / "opentelemetry-instrument"
    assert otel_instrument.exists()
    metrics_port, prom_port = _free_port(), _free_port()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "prometheus.yml").write_text(textwrap.dedent(f"""
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: app
            static_configs:
              - targets: ["127.0.0.1:{metrics_port}"]
    """))
    stop_file = tmp_path / "stop"
    with MockProviderServer(host="127.0.0.1", port=0) as srv:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFEROPS_"))},
            "MOCK_BASE": srv.base_url,
            "STOP_FILE": str(stop_file),
            "OTEL_SERVICE_NAME": "e2e-app",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "inferops_prometheus",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "INFEROPS_PROVIDER_ENDPOINTS": f"{srv.base_url}/openai/v1=openai",
        }
        app_out = open(tmp_path / "app.out", "w")
        app = subprocess.Popen([str(otel_instrument), sys.executable, str(tmp_path / "app.py")],
                               stdout=app_out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
             "--enable-feature=exemplar-storage"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "w"))
        try:
            exemplars = _wait_for_exemplars(prom_port, app, tmp_path)
        finally:
            stop_file.write_text("stop")
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
            prom.terminate()
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
            app_out.close()
    out = (tmp_path / "app.out").read_text()
    assert "CALLS-DONE" in out, out[-3000:]
    spans = _spans_from_console(out)
    genai = {s["context"]["trace_id"].removeprefix("0x") for s in spans
             if s.get("attributes", {}).get("gen_ai.provider.name") == "openai"}
    assert len(genai) == 4, [s["name"] for s in spans]
    ex_trace_ids = {e["labels"]["trace_id"] for e in exemplars}
    assert ex_trace_ids, exemplars
    assert ex_trace_ids <= genai
    assert len(ex_trace_ids) == 4  # every call's cost samples carry its own trace


def _wait_for_exemplars(prom_port: int, app: subprocess.Popen, tmp_path: Path) -> list[dict]:
    deadline = time.time() + 60
    query = urllib.parse.quote(Metrics.COST.prom_name)
    last: object = None
    while time.time() < deadline:
        if app.poll() is not None:
            raise AssertionError("app exited early:\n" + (tmp_path / "app.out").read_text()[-3000:])
        try:
            now = time.time()
            data = _get(f"http://127.0.0.1:{prom_port}/api/v1/query_exemplars?query={query}"
                        f"&start={now - 600}&end={now + 60}")
            last = data
            results = data.get("data") or []
            exemplars = [e for series in results for e in series.get("exemplars", [])]
            traces = {e["labels"].get("trace_id") for e in exemplars}
            if len(traces) >= 4:
                return exemplars
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"no exemplars in Prometheus after 60 s; last answer: {last}; prometheus log: "
                         + (tmp_path / "prom.log").read_text()[-2000:])
