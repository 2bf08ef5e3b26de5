"""OTLP/HTTP wire formats for traces: protobuf and OTLP/JSON, requests, responses, errors.

OTLP/JSON is *not* plain proto3 JSON: trace and span ids are hex strings
(proto3 JSON would base64 them), and keys are lowerCamelCase. We therefore
convert the ids between hex and the bytes protobuf wants before handing the
document to ``json_format`` (which accepts lowerCamelCase and, as the spec
asks of receivers, ignores unknown fields). Hex digits are valid base64, so
skipping the conversion would silently corrupt every id: it is done for every
id field (span, parent, links).

Error bodies are ``google.rpc.Status`` (code, message), encoded like the
request: the OTLP/HTTP spec's failure response. googleapis-common-protos is
not a dependency, so the message type is declared here in a private pool
(only fields 1 and 2; ``details`` is optional and omitted).
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class RequestError(Exception):
    """Bad input from the sender: ``status`` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str, reason: str):
        super().__init__(message)
        self.status = status
        self.reason = reason


def _status_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="inferops/google_rpc_status.proto",
                                             package="google.rpc", syntax="proto3")
    msg = fdp.message_type.add(name="Status")
    msg.field.add(name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="code")
    msg.field.add(name="message", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="message")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


#: ``google.rpc.Status`` (fields code and message).
Status = _status_class()

#: HTTP status -> google.rpc.Code, for error bodies.
_RPC_CODE = {400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (identity, gzip, deflate), never producing more than ``limit`` bytes.

    The cap is enforced while inflating, so a small gzip bomb costs at most
    ``limit`` bytes of memory before it is refused with 413.
    """
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise RequestError(413, f"request body of {len(body)} bytes exceeds the limit of {limit} bytes",
                               "too_large")
        return body
    if enc == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r}; expected gzip, deflate or identity",
                           "unsupported_media_type")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise RequestError(413, f"decompressed request body exceeds the limit of {limit} bytes",
                               "too_large")
        out += d.flush()
    except zlib.error as exc:
        raise RequestError(400, f"body is not valid {enc} data: {exc}", "bad_request") from None
    if len(out) > limit:
        raise RequestError(413, f"decompressed request body exceeds the limit of {limit} bytes", "too_large")
    if not d.eof:
        raise RequestError(400, f"truncated {enc} body", "bad_request")
    return out


# -- requests ------------------------------------------------------------------------------


def decode_request(body: bytes, mtype: str) -> ExportTraceServiceRequest:
    """Decode an export request (protobuf or OTLP/JSON); :class:`RequestError` (400) when invalid."""
    req = ExportTraceServiceRequest()
    if mtype == PROTOBUF:
        try:
            req.ParseFromString(body)
        except DecodeError as exc:
            raise RequestError(400, f"body is not a valid protobuf ExportTraceServiceRequest: {exc}",
                               "bad_request") from None
        return req
    if mtype == JSON:
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestError(400, f"body is not valid JSON: {exc}", "bad_request") from None
        if not isinstance(doc, dict):
            raise RequestError(400, f"expected a JSON object (ExportTraceServiceRequest), got {type(doc).__name__}",
                               "bad_request")
        _ids_hex_to_b64(doc)
        try:
            json_format.ParseDict(doc, req, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise RequestError(400, f"JSON is not a valid OTLP ExportTraceServiceRequest: {exc}",
                               "bad_request") from None
        return req
    raise RequestError(415, f"unsupported Content-Type {mtype!r}; expected {PROTOBUF} or {JSON}",
                       "unsupported_media_type")


_ID_FIELDS = (("traceId", "trace_id", 16), ("spanId", "span_id", 8), ("parentSpanId", "parent_span_id", 8))


def _convert_ids(obj: dict, where: str) -> None:
    for camel, snake, size in _ID_FIELDS:
        for key in (camel, snake):
            if key not in obj:
                continue
            value = obj[key]
            if not isinstance(value, str):
                raise RequestError(400, f"{where}.{key}: expected a hex string, got {type(value).__name__}",
                                   "bad_request")
            if value == "":
                continue
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise RequestError(400, f"{where}.{key}: expected {size * 2} hex digits, got {value[:40]!r}",
                                   "bad_request") from None
            if len(raw) != size:
                raise RequestError(400, f"{where}.{key}: expected {size * 2} hex digits, got {len(value)}",
                                   "bad_request")
            obj[key] = base64.b64encode(raw).decode("ascii")


def _list(obj: dict, *keys: str) -> list:
    for k in keys:
        v = obj.get(k)
        if v is not None:
            return v if isinstance(v, list) else []
    return []


def _ids_hex_to_b64(doc: dict) -> None:
    for i, rs in enumerate(_list(doc, "resourceSpans", "resource_spans")):
        if not isinstance(rs, dict):
            continue
        for j, ss in enumerate(_list(rs, "scopeSpans", "scope_spans")):
            if not isinstance(ss, dict):
                continue
            for k, span in enumerate(_list(ss, "spans")):
                if not isinstance(span, dict):
                    continue
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                _convert_ids(span, where)
                for n, link in enumerate(_list(span, "links")):
                    if isinstance(link, dict):
                        _convert_ids(link, f"{where}.links[{n}]")


def to_otlp_json(req: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON for a request (hex ids), e.g. for tests and logs."""
    doc = json_format.MessageToDict(req)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for camel, _, _ in _ID_FIELDS:
                    if camel in span:
                        span[camel] = base64.b64decode(span[camel]).hex()
                for link in span.get("links", []):
                    for camel, _, _ in _ID_FIELDS:
                        if camel in link:
                            link[camel] = base64.b64decode(link[camel]).hex()
    return json.dumps(doc).encode()


# -- responses -------------------------------------------------------------------------------


def encode_response(mtype: str, rejected_spans: int = 0, error_message: str = "") -> bytes:
    """``ExportTraceServiceResponse`` (with ``partial_success`` when spans were rejected)."""
    resp = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        resp.partial_success.rejected_spans = rejected_spans
        resp.partial_success.error_message = error_message
    if mtype == JSON:
        return json_format.MessageToJson(resp, indent=None).encode()
    return resp.SerializeToString()


def encode_status(mtype: str, http_status: int, message: str) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` error body in the request's encoding, and its content type."""
    st = Status(code=_RPC_CODE.get(http_status, 2), message=message)
    if mtype == JSON:
        return json.dumps({"code": st.code, "message": message}).encode(), JSON
    return st.SerializeToString(), PROTOBUF


def decode_status(body: bytes, mtype: str) -> tuple[int, str]:
    """(code, message) of a ``google.rpc.Status`` body (tests and downstream error logs)."""
    if mtype == JSON:
        doc = json.loads(body)
        return int(doc.get("code", 0)), str(doc.get("message", ""))
    st = Status()
    st.ParseFromString(body)
    return st.code, st.message


@dataclass(frozen=True, slots=True)
class Encoded:
    """One enriched request ready for the forwarding queue."""

    body: bytes
    spans: int


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


__all__ = [
    "PROTOBUF", "JSON", "RequestError", "Status", "media_type", "decompress", "decode_request",
    "to_otlp_json", "encode_response", "encode_status", "decode_status", "Encoded", "gzip_bytes",
]
