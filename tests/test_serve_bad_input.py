"""Bad input to the real `inferops serve` process: a clear 4xx, no crash, nothing forwarded."""

from __future__ import annotations

import gzip
import json

import pytest

from inferops.processors.serve.otlp import JSON, PROTOBUF, decode_status
from inferops.processors.serve.testing import OtlpReceiver, ServeProcess, get, make_request, make_span, post
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 64 * 1024
SPAN = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}


@pytest.fixture(scope="module")
def serve():
    receiver = OtlpReceiver()
    proc = ServeProcess(env={"INFEROPS_SERVE_TOKEN": TOKEN, "INFEROPS_SERVE_MAX_BODY_BYTES": str(LIMIT)},
                        downstream=receiver.url)
    yield proc, receiver
    proc.close()
    receiver.stop()


def _refused(proc, body, *, status, says, content_type=PROTOBUF, headers=AUTH, gzip_body=False):
    got, hdrs, out = post(proc.traces_url, body, content_type=content_type, headers=headers, gzip_body=gzip_body)
    assert got == status, out
    mtype = JSON if hdrs.get("Content-Type", "").startswith(JSON) else PROTOBUF
    _, message = decode_status(out, mtype)
    assert says in message, message
    return hdrs, message


def test_bad_inputs_are_refused_clearly(serve):
    proc, receiver = serve
    good = make_request([SPAN]).SerializeToString()
    # garbage protobuf: a length prefix pointing past the end
    _refused(proc, b"\x0a\xff\xff\xff\x0f\x0a\x03abc", status=400, says="not a valid protobuf")
    # invalid JSON, and JSON whose trace id is not hex (named by its path)
    _refused(proc, b"{not json", status=400, says="not valid JSON", content_type=JSON)
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz" * 16, "spanId": "00" * 8}]}]}]}
    _, msg = _refused(proc, json.dumps(bad_id).encode(), status=400, says="resourceSpans[0].scopeSpans[0].spans[0].traceId",
                      content_type=JSON)
    # wrong content type
    _refused(proc, good, status=415, says="expected application/x-protobuf or application/json",
             content_type="text/plain")
    # oversized, plain and as a gzip bomb (20 MB of zeros in ~20 KB)
    _refused(proc, b"\x00" * (LIMIT + 1), status=413, says="exceeds the limit")
    bomb = gzip.compress(b"\x00" * (20 * 1024 * 1024))
    assert len(bomb) < LIMIT
    _refused(proc, bomb, status=413, says="decompressed request body exceeds",
             headers={**AUTH, "Content-Encoding": "gzip"})
    # corrupt gzip
    _refused(proc, b"\x1f\x8b not gzip", status=400, says="not valid gzip", headers={**AUTH, "Content-Encoding": "gzip"})
    # missing and wrong bearer token
    hdrs, _ = _refused(proc, good, status=401, says="bearer token", headers={})
    assert hdrs.get("WWW-Authenticate", "").startswith("Bearer")
    _refused(proc, good, status=401, says="bearer token", headers={"Authorization": "Bearer nope"})
    # an unknown path
    assert post(proc.base + "/v1/metrics", good, headers=AUTH)[0] == 404
    # ... nothing forwarded, nothing crashed
    assert proc.proc.poll() is None
    assert get(proc.base + "/healthz")[0] == 200
    assert receiver.total() == 0
    # the service still works: a good request with one invalid span is partially accepted
    ok = make_span(SPAN)
    invalid = make_span(SPAN, trace_id=b"\x01\x02\x03")
    status, _, body = post(proc.traces_url, make_request([ok, invalid]).SerializeToString(), headers=AUTH)
    assert status == 200
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(body)
    assert resp.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes" in resp.partial_success.error_message
    status, metrics = get(proc.base + "/metrics", {"Accept": "application/openmetrics-text"})
    assert status == 200
    text = metrics.decode()
    for reason in ("bad_request", "unsupported_media_type", "too_large", "unauthorized"):
        assert f'inferops_serve_requests_refused_total{{reason="{reason}"}}' in text
    assert 'inferops_serve_spans_dropped_total{reason="invalid_span"} 1.0' in text
    assert proc.terminate() == 0
    assert dict(receiver.counts) == {ok.span_id.hex(): 1}

