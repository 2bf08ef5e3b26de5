"""deploy/collector/otelcol-config.yaml uses only keys of OpenTelemetry Collector contrib v0.162.0.

Allowed keys per component, from that release's READMEs (otlpreceiver, batchprocessor,
otlphttpexporter with confighttp client settings and exporterhelper's retry_on_failure /
sending_queue) and the service's pipeline schema.
"""

from __future__ import annotations

import yaml

RELEASE = "v0.162.0"
RECEIVER_OTLP = {"protocols": {"grpc": {"endpoint", "transport", "max_recv_msg_size_mib", "max_concurrent_streams",
                                        "read_buffer_size", "write_buffer_size", "keepalive", "tls", "auth",
                                        "include_metadata"},
                               "http": {"endpoint", "traces_url_path", "metrics_url_path", "logs_url_path", "tls",
                                        "cors", "auth", "max_request_body_size", "include_metadata",
                                        "response_headers"}}}
PROCESSOR_BATCH = {"send_batch_size", "send_batch_max_size", "timeout", "metadata_keys",
                   "metadata_cardinality_limit"}
EXPORTER_OTLPHTTP = {"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint", "tls", "timeout",
                     "read_buffer_size", "write_buffer_size", "encoding", "compression", "headers", "auth",
                     "proxy_url", "retry_on_failure", "sending_queue", "max_idle_conns", "idle_conn_timeout"}
RETRY = {"enabled", "initial_interval", "randomization_factor", "multiplier", "max_interval", "max_elapsed_time"}
QUEUE = {"enabled", "num_consumers", "queue_size", "storage", "sizer", "blocking", "wait_for_result", "batch"}


def test_collector_config_keys(repo_root):
    text = (repo_root / "deploy" / "collector" / "otelcol-config.yaml").read_text()
    assert RELEASE in text and RELEASE in (repo_root / "deploy" / "collector" / "README.md").read_text()
    cfg = yaml.safe_load(text)
    assert set(cfg) == {"receivers", "processors", "exporters", "service"}
    otlp = cfg["receivers"]["otlp"]
    assert set(otlp) <= set(RECEIVER_OTLP)
    for proto, conf in otlp["protocols"].items():
        assert set(conf) <= RECEIVER_OTLP["protocols"][proto], proto
    assert set(cfg["processors"]["batch"]) <= PROCESSOR_BATCH
    [(name, exp)] = cfg["exporters"].items()
    assert name.split("/")[0] == "otlphttp"
    assert set(exp) <= EXPORTER_OTLPHTTP
    assert set(exp["retry_on_failure"]) <= RETRY and set(exp["sending_queue"]) <= QUEUE
    assert exp["traces_endpoint"].endswith("/v1/traces") and exp["encoding"] in ("proto", "json")
    assert exp["compression"] in ("gzip", "none", "zstd", "snappy", "deflate", "lz4", "zlib")
    pipeline = cfg["service"]["pipelines"]["traces"]
    assert pipeline == {"receivers": ["otlp"], "processors": ["batch"], "exporters": [name]}
