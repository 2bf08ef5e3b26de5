"""Faults with the real `inferops serve` process: downstream outage, queue full, SIGTERM under load."""

from __future__ import annotations

import threading
import time

from inferops.processors.serve.testing import OtlpReceiver, ServeProcess, get, make_request, make_span, post

SPAN = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}


def _batch(n: int):
    spans = [make_span(SPAN) for _ in range(n)]
    return [s.span_id.hex() for s in spans], make_request(spans).SerializeToString()


def _wait(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_downstream_outage_every_accepted_span_arrives_exactly_once():
    receiver = OtlpReceiver()
    # A small queue so the outage fills it: the service must then refuse (503 + Retry-After), not drop.
    proc = ServeProcess(env={"INFEROPS_SERVE_QUEUE_BYTES": str(48 * 1024)}, downstream=receiver.url)
    try:
        accepted: list[str] = []
        for _ in range(3):  # before the outage
            ids, body = _batch(20)
            assert post(proc.traces_url, body)[0] == 200
            accepted += ids
        assert _wait(lambda: receiver.total() == len(accepted))
        receiver.stop()  # downstream down: connection refused
        refused_ids: list[str] = []
        refusals = 0
        for _ in range(60):  # during the outage, until the queue is full
            ids, body = _batch(20)
            status, headers, _ = post(proc.traces_url, body)
            if status == 200:
                accepted += ids
            else:
                assert status == 503 and int(headers["Retry-After"]) > 0
                refused_ids += ids
                refusals += 1
                if refusals >= 3:
                    break
        assert refusals >= 3, "the queue bound was never reached"
        assert get(proc.base + "/readyz")[0] == 503  # over the high-water mark
        assert get(proc.base + "/healthz")[0] == 200
        receiver.start()  # back, same port
        assert _wait(lambda: receiver.total() >= len(accepted))
        time.sleep(0.3)  # nothing more may arrive
        assert receiver.counts == {sid: 1 for sid in accepted}
        assert not set(refused_ids) & set(receiver.counts)
        assert _wait(lambda: get(proc.base + "/readyz")[0] == 200)
        text = get(proc.base + "/metrics")[1].decode()
        assert 'inferops_serve_forward_retries_total{reason="connection_error"}' in text
        assert 'inferops_serve_requests_refused_total{reason="queue_full"}' in text
        assert "inferops_serve_spans_dropped_total" not in text
        assert proc.terminate() == 0
    finally:
        proc.close()
        receiver.stop()


def test_sigterm_under_load_never_loses_an_acknowledged_span():
    receiver = OtlpReceiver()
    proc = ServeProcess(downstream=receiver.url)
    acked: list[str] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            ids, body = _batch(50)
            try:
                status, headers, _ = post(proc.traces_url, body, timeout=5)
            except OSError:  # the listener is gone: not acknowledged
                status = -1
            with lock:
                outcomes[str(status)] = outcomes.get(str(status), 0) + 1
                if status == 200:
                    acked.extend(ids)
                elif status == 503:
                    assert headers.get("Retry-After")
            if status not in (200, 503):
                time.sleep(0.02)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        assert _wait(lambda: len(acked) >= 1000)
        assert proc.terminate() == 0  # SIGTERM: refuse new requests, flush, exit 0
        stop.set()
        for t in threads:
            t.join(10)
        with lock:
            expected = list(acked)
        assert _wait(lambda: receiver.total() >= len(expected), 5)
        assert {sid: n for sid, n in receiver.counts.items() if sid in set(expected)} == {sid: 1 for sid in expected}
        assert sum(receiver.counts.values()) == len(receiver.counts)  # nothing delivered twice
        logs = proc.logs()
        assert any(r.get("msg") == "stopped" and r.get("spans_lost") == 0 for r in logs)
    finally:
        stop.set()
        proc.close()
        receiver.stop()
