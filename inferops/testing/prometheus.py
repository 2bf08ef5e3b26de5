"""Real Prometheus (2.42) and Alertmanager (0.25) on 127.0.0.1, for tests and the demo.

inferops' end-to-end tests and ``inferops demo`` run the real binaries (Debian
packages ``prometheus`` and ``prometheus-alertmanager``) rather than fakes, so
that rules, queries and routing are checked by the software that will run them.
:class:`PrometheusServer` and :class:`AlertmanagerServer` do it the same way
everywhere: a config (a dict, YAML text or a file), a free port (or a given
one), a data folder (a temporary one removed on exit unless a workdir is
given), a readiness wait that fails with the server's own log tail, small
helpers for the HTTP API, and a stop by pid that runs even when the test fails::

    with PrometheusServer(prometheus_config(jobs={"app": ["127.0.0.1:9464"]}), exemplars=True) as prom:
        prom.wait_for(lambda: prom.query("up == 1"), timeout=30, what="the app scraped")
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping, Self, Sequence, TypeVar

import yaml

from .process import ServerProcess, ServerStartError, free_port, wait_for

T = TypeVar("T")

#: A config as a dict (written as YAML), YAML text, or an existing file (used in place).
ConfigSource = Mapping[str, Any] | str | Path


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def prometheus_config(*, jobs: Mapping[str, Sequence[str]] | None = None, rule_files: Sequence[str | Path] = (),
                      alertmanagers: Sequence[str] = (), interval: str = "1s",
                      evaluation_interval: str | None = None) -> dict[str, Any]:
    """A prometheus.yml as a dict: scrape every ``interval`` and evaluate rules every
    ``evaluation_interval`` (default: the same; 1 s keeps tests short), ``jobs`` (job name ->
    ``host:port`` targets), ``rule_files`` and ``alertmanagers`` (``host:port``)."""
    cfg: dict[str, Any] = {"global": {"scrape_interval": interval,
                                      "evaluation_interval": evaluation_interval or interval}}
    if rule_files:
        cfg["rule_files"] = [str(path) for path in rule_files]
    if alertmanagers:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if jobs:
        cfg["scrape_configs"] = [{"job_name": job, "static_configs": [{"targets": list(targets)}]}
                                 for job, targets in jobs.items()]
    return cfg


class PrometheusAPIError(RuntimeError):
    """The HTTP API answered with an error (bad query, ...); the message has Prometheus' own words."""


class _Server:
    """What Prometheus and Alertmanager share: files, port, process, HTTP helpers, context manager.

    ``config``: see :data:`ConfigSource`; ``workdir``: where the config, ``data`` and ``<name>.log``
    go (default: a temporary folder, removed on stop); ``data_dir`` / ``log`` override those two
    paths; ``port`` 0 picks a free one (known at once as :attr:`port` / :attr:`url`); ``binary``
    defaults to the one on PATH; ``ready_timeout`` bounds the readiness wait.
    """

    name = ""
    package = ""

    def __init__(self, config: ConfigSource, *, workdir: Path | None = None, data_dir: Path | None = None,
                 port: int = 0, log: Path | None = None, log_level: str | None = None, binary: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.config = config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self._workdir, self._data_dir, self._log = workdir, data_dir, log
        self._owns_workdir = workdir is None
        self._log_level = log_level
        self._binary = binary
        self.process: ServerProcess | None = None

    # -- files ------------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"inferops-{self.name}-"))
        return self._workdir

    @property
    def data_dir(self) -> Path:
        return self._data_dir or self.workdir / "data"

    @property
    def log(self) -> Path:
        return self._log or self.workdir / f"{self.name}.log"

    def _config_file(self) -> Path:
        if isinstance(self.config, Path):
            return self.config
        path = self.workdir / f"{self.name}.yml"
        text = self.config if isinstance(self.config, str) else yaml.safe_dump(dict(self.config), sort_keys=False)
        path.write_text(text)
        return path

    def _default_binary(self) -> str | None:
        raise NotImplementedError

    def _args(self, binary: str, config_file: Path) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Anything to do in the data folder before the server starts."""

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, stop: threading.Event | None = None) -> Self:
        """Start and wait until ready (see :meth:`ServerProcess.start`); on failure nothing is left behind."""
        binary = self._binary or self._default_binary()
        if not binary:
            raise ServerStartError(f"{self.name} is required (Debian package {self.package})")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._prepare()
            args = self._args(binary, self._config_file())
            if self._log_level:
                args.append(f"--log.level={self._log_level}")
            self.process = ServerProcess(self.name, args, self.log, f"{self.url}/-/ready")
            self.process.start(self.ready_timeout, stop)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server by its pid; remove the workdir if it was a temporary one made here."""
        if self.process is not None:
            self.process.stop()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def log_tail(self, n: int = 2000) -> str:
        return self.process.log_tail(n) if self.process else ""

    # -- HTTP -------------------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` (a list value repeats the parameter) and return the decoded JSON, also for an
        HTTP error status: then ``status`` is ``"error"`` and ``http`` the status code."""
        items = [(key, str(one)) for key, value in params.items()
                 for one in (value if isinstance(value, (list, tuple)) else [value])]
        url = f"{self.url}{path}?{urllib.parse.urlencode(items)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {"error": body.decode(errors="replace")}
            return (payload if isinstance(payload, dict) else {"data": payload}) | {"status": "error",
                                                                                     "http": exc.code}

    def post(self, path: str, payload: Any) -> Any:
        """POST ``payload`` as JSON; an HTTP error status raises :class:`urllib.error.HTTPError`."""
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def wait_for(self, fetch: Callable[[], T], *, until: Callable[[T], Any] = bool, timeout: float = 60.0,
                 interval: float = 0.5, what: str = "", ignore: tuple[type[BaseException], ...] = ()) -> T:
        """:func:`inferops.testing.process.wait_for`, with this server's log tail in the timeout message;
        fails at once, with that tail, if the server has exited meanwhile."""
        def checked() -> T:
            if not self.running:
                raise RuntimeError(f"{self.name} is not running; its log ends with:\n{self.log_tail()}")
            return fetch()

        return wait_for(checked, until=until, timeout=timeout, interval=interval, what=what, ignore=ignore,
                        context=lambda: f"{self.name} log ends with:\n{self.log_tail()}")


class PrometheusServer(_Server):
    """Prometheus on 127.0.0.1 with its own TSDB folder.

    ``exemplars`` turns on exemplar storage; ``retention`` sets ``--storage.tsdb.retention.time``
    (back-dated data needs a long one); ``backfill`` is OpenMetrics text (timestamped samples,
    ``# EOF``) written into the TSDB with ``promtool tsdb create-blocks-from openmetrics`` before
    Prometheus starts; ``extra_args`` are more flags (e.g. ``--query.lookback-delta=1m``).
    """

    name = "prometheus"
    package = "prometheus"

    def __init__(self, config: ConfigSource | None = None, *, workdir: Path | None = None,
                 data_dir: Path | None = None, port: int = 0, log: Path | None = None,
                 exemplars: bool = False, retention: str | None = None, backfill: str | None = None,
                 log_level: str | None = None, extra_args: Sequence[str] = (), binary: str | None = None,
                 ready_timeout: float = 30.0) -> None:
        super().__init__(prometheus_config() if config is None else config, workdir=workdir, data_dir=data_dir,
                         port=port, log=log, log_level=log_level, binary=binary, ready_timeout=ready_timeout)
        self.exemplars, self.retention, self.backfill = exemplars, retention, backfill
        self.extra_args = list(extra_args)

    def _default_binary(self) -> str | None:
        return prometheus_binary()

    def _prepare(self) -> None:
        if self.backfill is None:
            return
        promtool = shutil.which("promtool")
        if not promtool:
            raise ServerStartError("promtool is required to backfill (Debian package prometheus)")
        source = self.workdir / "history.om"
        source.write_text(self.backfill)
        # --max-block-duration (hidden flag): a few large blocks instead of one per 2 h, much faster.
        res = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
                              "--max-block-duration=744h", str(source), str(self.data_dir)],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise ServerStartError(f"promtool failed: {res.stderr or res.stdout}")

    def _args(self, binary: str, config_file: Path) -> list[str]:
        args = [binary, f"--config.file={config_file}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        if self.exemplars:
            args.append("--enable-feature=exemplar-storage")
        if self.retention:
            args.append(f"--storage.tsdb.retention.time={self.retention}")
        return args + self.extra_args

    # -- API --------------------------------------------------------------------------------
    def api(self, path: str, **params: Any) -> Any:
        """The ``data`` of a successful API answer; any other answer raises :class:`PrometheusAPIError`."""
        res = self.get(path, **params)
        if not isinstance(res, dict) or res.get("status") != "success":
            raise PrometheusAPIError(f"{path} {params}: {res}")
        return res["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (at ``at``, a Unix time, or now): the result list."""
        return self.api("/api/v1/query", query=expr, **({} if at is None else {"time": f"{at:.3f}"}))["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self.api("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                        step=step)["result"]

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Series with their exemplars (needs ``exemplars=True``)."""
        return self.api("/api/v1/query_exemplars", query=expr, start=f"{start:.3f}", end=f"{end:.3f}")

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts of the rules now pending or firing."""
        return self.api("/api/v1/alerts")["alerts"]


class AlertmanagerServer(_Server):
    """Alertmanager on 127.0.0.1, clustering off, with its own data folder."""

    name = "alertmanager"
    package = "prometheus-alertmanager"

    def _default_binary(self) -> str | None:
        return alertmanager_binary()

    def _args(self, binary: str, config_file: Path) -> list[str]:
        return [binary, f"--config.file={config_file}", f"--storage.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST alerts to ``/api/v2/alerts`` as Prometheus does."""
        self.post("/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (``/api/v2/alerts``)."""
        res = self.get("/api/v2/alerts")
        if not isinstance(res, list):
            raise RuntimeError(f"/api/v2/alerts: {res}")
        return res
