"""Run a server binary on 127.0.0.1 until it answers, then always stop it by its own pid.

Tests, the demo and benchmarks start real servers (Prometheus, Alertmanager);
they all need the same things, written once here: a free port, a log file, a
readiness wait that ends with a clear error carrying the server's own log tail
when the server exits or never answers, and a stop that terminates (then kills)
only the process it started, even when the caller fails half-way.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A server exited or did not answer in time; the message ends with the tail of its own log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it; another process may take it later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fetch: Callable[[], T], *, until: Callable[[T], Any] = bool, timeout: float,
             interval: float = 0.5, what: str = "", ignore: tuple[type[BaseException], ...] = (),
             context: Callable[[], str] | None = None) -> T:
    """Call ``fetch`` every ``interval`` s until ``until(value)`` holds; return that value.

    The deadline only turns a hang into a clear failure: on timeout a :class:`TimeoutError` names
    ``what``, the last value and the last ignored error (plus ``context()``, e.g. a server's log
    tail). Exceptions of the ``ignore`` types are retried; any other exception propagates at once,
    so a wrong answer is never waited out.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if until(last):
                return last
        except ignore as exc:
            last_exc = exc
        time.sleep(interval)
    message = f"timed out after {timeout:g}s waiting for {what or 'a condition'}; last value: {last!r}"
    if last_exc is not None:
        message += f" (last error: {last_exc!r})"
    if context is not None:
        message += f"\n{context()}"
    raise TimeoutError(message)


class ServerProcess:
    """One server binary: started in its own session, ready once ``ready_url`` answers 200.

    Its own session means a Ctrl-C in the terminal reaches only the caller, which then stops the
    server through :meth:`stop` (by pid). stdout and stderr both go to ``log``.
    """

    def __init__(self, name: str, args: Sequence[str], log: Path, ready_url: str) -> None:
        self.name, self.args, self.log, self.ready_url = name, list(args), log, ready_url
        self.proc: subprocess.Popen[bytes] | None = None
        #: pid of the last start (kept after :meth:`stop`, so callers can check it is gone)
        self.pid: int | None = None

    def start(self, timeout: float = 30.0, stop: threading.Event | None = None) -> None:
        """Start and wait until ready. Raises :class:`ServerStartError` (the process stopped first)
        if it exits or is not ready within ``timeout`` s; returns early, still running, if ``stop``
        is set meanwhile (the caller is shutting down and stops it next)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(self.args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if self.proc.poll() is not None:
                self._fail(f"{self.name} exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        if stop and stop.is_set():
            return
        self._fail(f"{self.name} was not ready after {timeout:g}s at {self.ready_url}")

    def _fail(self, what: str) -> None:
        self.stop()
        raise ServerStartError(f"{what}:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        """The last ``n`` characters of the server's own log ("" if there is none)."""
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate this process (kill it after ``timeout`` s); safe to call more than once."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
