"""Runs the demo: servers up, traffic for a bounded time, live spend, alerts, clean shutdown, summary.

Shutdown is the same on every path (time up, Ctrl-C, SIGTERM, an error while
starting): traffic stops, Prometheus and Alertmanager are terminated by pid,
every port is closed, and the chargeback summary is printed from the counters.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import urlsplit

from . import artifacts, spend, stack
from .traffic import TrafficGenerator

LOCALHOST = "127.0.0.1"


class DemoError(Exception):
    """An expected failure (port taken, binary missing...): the CLI prints the message and exits 1."""


@dataclass
class DemoOptions:
    duration: float = 60.0
    concurrency: int = 4
    bind: str = LOCALHOST
    metrics_port: int = 9464
    mock_port: int = 8787
    #: None: run Prometheus/Alertmanager when both are on PATH; True: require them; False: skip.
    prometheus: bool | None = None
    prometheus_port: int = 9490
    alertmanager_port: int = 9493
    #: None: a receiver runs (on this default) only with the local Prometheus/Alertmanager.
    webhook_port: int | None = None
    out: Path = Path("inferops-demo-out")
    otlp_endpoint: str = ""
    service_name: str = "inferops-demo"
    refresh: float = 0.0  # 0: 1 s on a terminal, 5 s otherwise
    alert_wait: float = 30.0
    mock_latency: float = 0.12
    seed: int = 7


DEFAULT_WEBHOOK_PORT = 9495


class _Console:
    """Terminal output: a redrawn block on a TTY, plain periodic lines otherwise; one lock for all threads."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self._block_lines = 0

    def line(self, text: str) -> None:
        with self.lock:
            self._block_lines = 0  # a plain line ends the redrawn block
            print(text, file=self.stream, flush=True)

    def block(self, text: str) -> None:
        with self.lock:
            if self.tty and self._block_lines:
                self.stream.write(f"\x1b[{self._block_lines}F\x1b[J")
            print(text, file=self.stream, flush=True)
            self._block_lines = text.count("\n") + 1


def _traces_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DemoError(f"--otlp-endpoint: expected an http:// or https:// URL, got {endpoint!r}")
    return endpoint if parts.path.strip("/") else endpoint.rstrip("/") + "/v1/traces"


def _want_stack(opts: DemoOptions) -> tuple[bool, str, str]:
    prom, am = stack.prometheus_binary(), stack.alertmanager_binary()
    if opts.prometheus is False:
        return False, "", ""
    if prom and am:
        return True, prom, am
    if opts.prometheus:
        missing = " and ".join(n for n, b in (("prometheus", prom), ("prometheus-alertmanager", am)) if not b)
        raise DemoError(f"--with-prometheus: {missing} not found on PATH (Debian/Ubuntu: apt-get install "
                        "prometheus prometheus-alertmanager)")
    return False, "", ""


class Demo:
    """One run of the demo; :meth:`run` returns the exit status."""

    def __init__(self, opts: DemoOptions, out: TextIO = sys.stdout) -> None:
        self.opts = opts
        self.console = _Console(out)
        self.stop = threading.Event()
        self.stopped_by = ""
        self.alerts: list[str] = []
        self._cleanup: list[tuple[str, Callable[[], Any]]] = []
        self.reader: Any = None
        self.traffic: TrafficGenerator | None = None
        self.started = time.monotonic()
        self.with_stack = False

    # ------------------------------------------------------------------ lifecycle
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stopped_by = signal.Signals(signum).name
        self.stop.set()

    def run(self) -> int:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            try:
                self._start()
                if not self.stop.is_set():
                    self._loop()
            finally:
                if self.traffic is not None:
                    self.traffic.stop()  # first, so the summary and the call count agree
                lines = self._snapshot()
                self._shutdown()
            self._summary(lines)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _later(self, what: str, fn: Callable[[], Any]) -> None:
        self._cleanup.append((what, fn))

    def _shutdown(self) -> None:
        for what, fn in reversed(self._cleanup):
            try:
                fn()
            except Exception as exc:  # keep going: every other resource must still be released
                self.console.line(f"inferops demo: stopping {what} failed: {exc}")
        self._cleanup.clear()

    # ------------------------------------------------------------------ start
    def _start(self) -> None:
        o = self.opts
        with_stack, prom_bin, am_bin = _want_stack(o)
        webhook_port = o.webhook_port if o.webhook_port is not None else (DEFAULT_WEBHOOK_PORT if with_stack else None)
        try:
            stack.check_port(o.bind, o.metrics_port, "--metrics-port")
            stack.check_port(LOCALHOST, o.mock_port, "--mock-port")
            if webhook_port is not None:
                stack.check_port(o.bind, webhook_port, "--webhook-port")
            prom_port = stack.check_port(LOCALHOST, o.prometheus_port, "--prometheus-port") if with_stack else 0
            am_port = stack.check_port(LOCALHOST, o.alertmanager_port, "--alertmanager-port") if with_stack else 0
        except stack.PortInUse as exc:
            raise DemoError(str(exc)) from None
        traces_url = _traces_url(o.otlp_endpoint) if o.otlp_endpoint else ""

        receiver = None
        if webhook_port is not None:
            receiver = stack.AlertReceiver(o.bind, webhook_port, self._on_alert)
            self._later("the alert receiver", receiver.stop)
        webhook_url = f"http://{LOCALHOST}:{receiver.port if receiver else DEFAULT_WEBHOOK_PORT}/inferops-demo"

        out = o.out
        budgets_file, prices_file, routing_file = artifacts.write_inputs(out, webhook_url)
        artifacts.write_dashboards(out)
        alert_files = artifacts.write_alerts(out, budgets_file)

        from inferops.mock_providers import MockProviderServer

        mock = MockProviderServer(host=LOCALHOST, port=o.mock_port, latency_s=o.mock_latency,
                                  chunk_delay_s=0.004).start()
        self._later("the mock providers", mock.stop)
        metrics_port = self._instrument(mock, prices_file, routing_file, traces_url)
        metrics_url = f"http://{o.bind}:{metrics_port}/metrics"

        self.console.line(f"inferops demo: mock providers (OpenAI, Anthropic, Gemini wire formats) at {mock.base_url}")
        self.console.line(f"inferops demo: metrics (OpenMetrics with exemplars) at {metrics_url}")
        if traces_url:
            self.console.line(f"inferops demo: traces via OTLP/HTTP to {traces_url}")
        if receiver:
            self.console.line(f"inferops demo: alert webhook receiver at http://{o.bind}:{receiver.port}/")

        if with_stack:
            workdir = Path(tempfile.mkdtemp(prefix="inferops-demo-"))
            self._later("the temporary data folder", lambda: _rmtree(workdir))
            target = f"{LOCALHOST if o.bind in ('0.0.0.0', '::') else o.bind}:{metrics_port}"
            prom_cfg = out / "prometheus.yml"
            rules_path = alert_files["prometheus-rules.yaml"].resolve()
            prom_cfg.write_text(stack.prometheus_config(target, f"{LOCALHOST}:{am_port}", [str(rules_path)]))
            am = stack.start_alertmanager(am_bin, alert_files["alertmanager.yml"].resolve(), workdir / "am",
                                          am_port, workdir / "alertmanager.log", self.stop)
            self._later("Alertmanager", am.stop)
            prom = stack.start_prometheus(prom_bin, prom_cfg.resolve(), workdir / "prom", prom_port,
                                          workdir / "prometheus.log", self.stop)
            self._later("Prometheus", prom.stop)
            self.console.line(f"inferops demo: Prometheus at http://{LOCALHOST}:{prom_port} (rules: {rules_path}), "
                              f"Alertmanager at http://{LOCALHOST}:{am_port}; demo budgets: search $0.10/day, "
                              "support $0.25/day")
            self.with_stack = True
        else:
            self.with_stack = False
            why = "--no-prometheus" if o.prometheus is False else "prometheus/prometheus-alertmanager not on PATH"
            self.console.line(f"inferops demo: no local Prometheus/Alertmanager ({why}); budget alerts skipped")

        self.traffic = TrafficGenerator(mock.base_url, concurrency=o.concurrency, seed=o.seed)
        self.traffic.start()
        self._later("the traffic", self.traffic.stop)
        self.started = time.monotonic()
        end = f"for {o.duration:g}s" if o.duration > 0 else "until Ctrl-C"
        self.console.line(f"inferops demo: traffic of 5 teams over OpenAI, Anthropic, Gemini and a self-hosted "
                          f"model, {o.concurrency} workers, {end}")

    def _instrument(self, mock, prices_file: Path, routing_file: Path, traces_url: str) -> int:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        from inferops.instrumentation import InferopsInstrumentor
        from inferops.instrumentation.prometheus_reader import InferopsPrometheusMetricReader
        from inferops.settings import load_settings

        o = self.opts
        settings = dataclasses.replace(
            load_settings(), enabled=True, prices_file=str(prices_file.resolve()),
            routing_file=str(routing_file.resolve()),
            provider_endpoints=mock.endpoints(), self_hosted=mock.self_hosted_endpoints(),
            enforcement_alertmanager_url="")
        resource = Resource.create({"service.name": o.service_name, "deployment.environment.name": "demo"})
        tracer_provider = TracerProvider(resource=resource)
        if traces_url:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url),
                                                                  schedule_delay_millis=1000))
        try:
            reader = InferopsPrometheusMetricReader(host=o.bind, port=o.metrics_port)
        except OSError as exc:
            raise DemoError(f"port {o.metrics_port} on {o.bind} is not available ({exc.strerror or exc}); it is "
                            "set by --metrics-port: pass --metrics-port with another port, or 0") from None
        # The live table reads its own reader: every collection hands out (and resets) the SDK's exemplars
        # per reader, so reading the scraped one would take exemplars away from Prometheus.
        from inferops.processors.exposition import OpenMetricsReader

        self.reader = OpenMetricsReader(disable_target_info=True)
        meter_provider = MeterProvider(metric_readers=[reader, self.reader], resource=resource)
        self._later("the metrics endpoint", lambda: meter_provider.shutdown(timeout_millis=5000))
        self._later("the tracer provider", lambda: tracer_provider.shutdown())
        instrumentor = InferopsInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, settings=settings)
        self._later("the instrumentation", instrumentor.uninstrument)
        return reader.address[1]

    # ------------------------------------------------------------------ run
    def _on_alert(self, alert: dict[str, Any]) -> None:
        line = stack.describe_alert(alert)
        self.alerts.append(line)
        if not self.console.tty:
            self.console.line(line)

    def _snapshot(self) -> dict:
        if self.reader is None:
            return {}
        try:
            return spend.snapshot(self.reader.families())
        except Exception:
            return {}

    def _display(self, final: bool = False) -> None:
        o = self.opts
        elapsed = time.monotonic() - self.started
        stats = self.traffic.stats if self.traffic else None
        calls, errors = (stats.calls, stats.errors) if stats else (0, 0)
        lines = self._snapshot()
        if self.console.tty:
            text = spend.live_table(lines, elapsed, calls, errors, o.duration)
            if self.alerts:
                text += "\n" + "\n".join(self.alerts[-8:])
            self.console.block(text)
        else:
            self.console.line(spend.progress_line(lines, elapsed, calls, o.duration))

    def _loop(self) -> None:
        o = self.opts
        refresh = o.refresh or (1.0 if self.console.tty else 5.0)
        waiting_announced = False
        while not self.stop.is_set():
            elapsed = time.monotonic() - self.started
            if o.duration > 0 and elapsed >= o.duration:
                if not (self.with_stack and not self.alerts and elapsed < o.duration + o.alert_wait):
                    break
                if not waiting_announced:
                    self.console.line(f"inferops demo: time is up; waiting up to {o.alert_wait:g}s more for the "
                                      "first budget alert")
                    waiting_announced = True
            next_stop = refresh
            if o.duration > 0 and elapsed < o.duration:
                next_stop = min(refresh, o.duration - elapsed)
            if self.stop.wait(max(0.05, next_stop if not waiting_announced else 0.25)):
                break
            self._display()
        if self.stopped_by:
            self.console.line(f"inferops demo: {self.stopped_by} received, stopping")

    # ------------------------------------------------------------------ end
    def _summary(self, lines: dict) -> None:
        o = self.opts
        stats = self.traffic.stats if self.traffic else None
        elapsed = time.monotonic() - self.started
        self.console.line("")
        self.console.line(f"inferops demo: stopped after {elapsed:.1f}s"
                          + (f" ({self.stopped_by})" if self.stopped_by else "")
                          + (f"; {stats.calls} calls, {stats.errors} errors (the mock answers a few 429s on purpose)" if stats else ""))
        self.console.line("")
        self.console.line(spend.chargeback(lines))
        try:
            self.console.line(spend.routing_line(self.reader.families()))
        except Exception:  # the summary must print even if the metrics are gone
            pass
        if self.with_stack:
            self.console.line("")
            if self.alerts:
                self.console.line(f"Budget alerts received by the webhook ({len(self.alerts)}):")
                for a in self.alerts:
                    self.console.line("  " + a)
            else:
                self.console.line("No budget alert arrived before the demo stopped (run longer: --duration).")
        self.console.line("")
        self.console.line(artifacts.import_instructions(o.out))


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
