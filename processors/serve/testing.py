"""Test and benchmark helpers for ``inferops serve``: span builders, a local OTLP receiver, a process runner.

:class:`OtlpReceiver` is a minimal OTLP/HTTP traces receiver speaking the
real wire format (protobuf in, ``ExportTraceServiceResponse`` out), standing
in for Tempo or a Collector; it can be taken down (its port then refuses
connections) and brought back on the same port, or told to answer a status.
:class:`ServeProcess` runs the real ``inferops serve`` command on a free port.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .extract import attributes_of
from .otlp import PROTOBUF


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def make_span(attrs: Mapping[str, Any], *, name: str = "chat", trace_id: bytes | None = None,
              span_id: bytes | None = None, start_ns: int | None = None, duration_ns: int = 800_000_000) -> Span:
    start = start_ns if start_ns is not None else time.time_ns() - duration_ns
    return Span(trace_id=trace_id or os.urandom(16), span_id=span_id or os.urandom(8), name=name,
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + duration_ns,
                attributes=key_values(attrs))


def make_request(spans: Iterable[Span | Mapping[str, Any]], *, resource: Mapping[str, Any] | None = None,
                 scope: str = "test") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_values(resource or {"service.name": "test-app"}))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    for s in spans:
        ss.spans.append(s if isinstance(s, Span) else make_span(s))
    return req


def spans_of(req: ExportTraceServiceRequest) -> list[tuple[Span, dict[str, Any]]]:
    return [(s, attributes_of(s.attributes)) for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


def post(url: str, body: bytes, *, content_type: str = PROTOBUF, headers: Mapping[str, str] | None = None,
         gzip_body: bool = False, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """POST and return (status, headers, body) for any status."""
    hdrs = {"Content-Type": content_type, **(headers or {})}
    if gzip_body:
        body = gzip.compress(body)
        hdrs["Content-Encoding"] = "gzip"
    req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class OtlpReceiver:
    """A local OTLP/HTTP traces receiver (protobuf) that records every span it is sent."""

    def __init__(self, port: int = 0):
        self.lock = threading.Lock()
        #: span_id (hex) -> times received
        self.counts: Counter[str] = Counter()
        #: span_id (hex) -> attributes of the last copy received
        self.attrs: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.status = 200
        self.retry_after: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._conns: set = set()
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver._conns.add(self.connection)

            def finish(self) -> None:
                with receiver.lock:
                    receiver._conns.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                status = receiver.status
                if status == 200:
                    req = ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    with receiver.lock:
                        receiver.requests += 1
                        for span, attrs in spans_of(req):
                            sid = span.span_id.hex()
                            receiver.counts[sid] += 1
                            receiver.attrs[sid] = attrs
                    out = ExportTraceServiceResponse().SerializeToString()
                else:
                    out = b""
                self.send_response(status)
                self.send_header("Content-Type", PROTOBUF)
                self.send_header("Content-Length", str(len(out)))
                if receiver.retry_after and status != 200:
                    self.send_header("Retry-After", receiver.retry_after)
                self.end_headers()
                self.wfile.write(out)

        return Handler

    def start(self) -> None:
        srv = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        srv.daemon_threads = True
        self._server = srv
        self.port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Take the receiver down: its port refuses connections until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:  # also cut kept-alive connections: the port must look dead
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._conns.clear()

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


class ServeProcess:
    """The real ``inferops serve`` in a subprocess on a free port (stderr logs in a temp file)."""

    def __init__(self, env: Mapping[str, str] | None = None, downstream: str = "", args: Iterable[str] = ()):
        self.log_path = Path(tempfile.mkstemp(prefix="inferops-serve-", suffix=".log")[1])
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("INFEROPS_")}
        full_env.update(env or {})
        cmd = [sys.executable, "-m", "inferops.cli", "serve", "--port", "0"]
        if downstream:
            cmd += ["--downstream", downstream]
        cmd += list(args)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=self._log)
        self.port = self._wait_port()

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def _wait_port(self, timeout: float = 20.0) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for rec in self.logs():
                if rec.get("msg") == "listening":
                    return int(rec["port"])
            if self.proc.poll() is not None:
                raise RuntimeError(f"inferops serve exited {self.proc.returncode}: {self.log_path.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"inferops serve did not start: {self.log_path.read_text()}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.base + "/v1/traces"

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        try:
            self.log_path.unlink()
        except OSError:
            pass
