"""Until the first content is timed, a streamed chunk reaches the caller before it is parsed (Call.hold).

What must hold: the time to first chunk is the chunk's arrival, not its
parse; a held chunk is parsed however the stream ends (next read, end,
close, collection, error); in filter mode (the injected usage chunk) a chunk is
handed over first only when the filter would pass it unchanged, so the
caller's bytes are the same either way.
"""

from __future__ import annotations

import gc
import json
import time

import httpx2
import pytest

from inferops.instrumentation.testing import instrumented
from inferops.names import Attr, GenAI

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


def _oa(**kw) -> bytes:
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
         "choices": [{"index": 0, "delta": {}, "finish_reason": None}], "usage": None}
    c.update(kw)
    return b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"


OA_USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
OA_EVENTS = [
    _oa(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
    _oa(choices=[{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]),
    _oa(choices=[{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]),
    _oa(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    _oa(choices=[], usage=OA_USAGE),  # the usage-only chunk inferops asks for
    b"data: [DONE]\n\n",
]


def _an(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


AN_EVENTS = [
    _an("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0}}}),
    _an("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
    _an("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": "Hello"}}),
    _an("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _an("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": 2}}),
    _an("message_stop", {"type": "message_stop"}),
]


class Reads(httpx2.SyncByteStream):
    """The answer arriving in these network reads."""

    def __init__(self, reads: list[bytes]):
        self.reads = reads

    def __iter__(self):
        yield from self.reads


def _client(reads: list[bytes], sent: list | None = None) -> httpx2.Client:
    def handler(request):
        if sent is not None:
            sent.append(json.loads(request.content))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Reads(reads))

    return httpx2.Client(transport=httpx2.MockTransport(handler))


OA_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
AN_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}],
           "stream": True}
AN_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_time_to_first_chunk_is_the_arrival_not_the_parse(provider):
    url, body, events, headers = ((OPENAI_URL, OA_BODY, OA_EVENTS, {}) if provider == "openai"
                                  else (ANTHROPIC_URL, AN_BODY, AN_EVENTS, AN_HEADERS))
    with instrumented() as cap:
        with _client(events) as client, client.stream("POST", url, json=body, headers=headers) as resp:
            got = []
            for chunk in resp.iter_raw():
                got.append(chunk)
                time.sleep(0.05)  # the caller works on each chunk before asking for the next
        [span] = cap.spans()
    expected = events[:4] + events[5:] if provider == "openai" else events  # the injected usage chunk hidden
    assert got == expected
    # The first content is event 1 (openai; event 0 is the role) or 2 (anthropic; message_start and an empty
    # block come first): it arrives after that many of the caller's 50 ms pauses, and is parsed one pause
    # later. Timed at arrival:
    k = 1 if provider == "openai" else 2
    assert 0.05 * k <= span.attributes[GenAI.RESPONSE_TIME_TO_FIRST_CHUNK] < 0.05 * k + 0.04
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 2
    assert GenAI.ERROR_TYPE not in span.attributes


def test_closed_right_after_the_first_chunk_still_parses_it():
    """message_start (model, id, input usage) was handed over, then the caller closed: it is parsed on close."""
    with instrumented() as cap:
        with _client(AN_EVENTS) as client, client.stream("POST", ANTHROPIC_URL, json=AN_BODY,
                                                         headers=AN_HEADERS) as resp:
            first = next(resp.iter_raw())
        [span] = cap.spans()
    assert first == AN_EVENTS[0]
    a = span.attributes
    assert a[GenAI.RESPONSE_MODEL] == "claude-sonnet-4-5-20250929" and a[GenAI.RESPONSE_ID] == "msg_1"
    assert a[GenAI.USAGE_INPUT_TOKENS] == 25


def test_abandoned_right_after_the_first_chunk_still_parses_it():
    with instrumented() as cap:
        client = _client(AN_EVENTS)
        resp = client.send(client.build_request("POST", ANTHROPIC_URL, json=AN_BODY, headers=AN_HEADERS),
                           stream=True)
        it = iter(resp.stream)  # the stream object itself, as a caller that reads it directly
        assert next(it) == AN_EVENTS[0]
        del it, resp  # neither read on nor closed
        gc.collect()
        spans = cap.spans()
        client.close()
    [span] = spans
    assert span.attributes[GenAI.RESPONSE_ID] == "msg_1"
    assert span.attributes[GenAI.USAGE_INPUT_TOKENS] == 25


def test_an_error_thrown_in_at_a_held_chunk_parses_it_first():
    with instrumented() as cap:
        with _client(AN_EVENTS) as client:
            resp = client.send(client.build_request("POST", ANTHROPIC_URL, json=AN_BODY, headers=AN_HEADERS),
                               stream=True)
            it = iter(resp.stream)
            assert next(it) == AN_EVENTS[0]
            with pytest.raises(KeyboardInterrupt):
                it.throw(KeyboardInterrupt())
            spans = cap.spans()
            resp.close()
    [span] = spans
    assert span.attributes[GenAI.ERROR_TYPE] == "KeyboardInterrupt"
    assert span.attributes[GenAI.USAGE_INPUT_TOKENS] == 25


def test_an_error_after_a_held_chunk_parses_it_first():
    class Cut(httpx2.SyncByteStream):
        def __iter__(self):
            yield AN_EVENTS[0]
            raise httpx2.ReadError("connection reset")

    def handler(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Cut())

    with instrumented() as cap:
        with httpx2.Client(transport=httpx2.MockTransport(handler)) as client:
            with pytest.raises(httpx2.ReadError):
                with client.stream("POST", ANTHROPIC_URL, json=AN_BODY, headers=AN_HEADERS) as resp:
                    for _ in resp.iter_raw():
                        pass
        [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == "ReadError"
    assert span.attributes[GenAI.USAGE_INPUT_TOKENS] == 25


@pytest.mark.parametrize("reads", [
    pytest.param([b"".join(OA_EVENTS)], id="whole answer in the first read"),
    pytest.param([b"".join(OA_EVENTS)[:50], b"".join(OA_EVENTS)[50:]], id="first read ends mid-event"),
    pytest.param([OA_EVENTS[0] + OA_EVENTS[1][:-1], OA_EVENTS[1][-1:] + b"".join(OA_EVENTS[2:])],
                 id="first read ends between the two newlines"),
    pytest.param([OA_EVENTS[0], OA_EVENTS[1], b"".join(OA_EVENTS[2:])], id="one event per read, then the rest"),
    pytest.param([OA_EVENTS[0], b"".join(OA_EVENTS[1:5]), OA_EVENTS[5]], id="content and usage in one read"),
])
def test_filter_mode_hands_over_first_only_what_the_filter_passes(reads):
    """Injected include_usage: whatever the reads, the caller gets the stream without the usage chunk."""
    sent = []
    with instrumented() as cap:
        with _client(reads, sent) as client, client.stream("POST", OPENAI_URL, json=OA_BODY) as resp:
            got = b"".join(resp.iter_raw())
        [span] = cap.spans()
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert got == b"".join(OA_EVENTS[:4] + OA_EVENTS[5:])
    assert span.attributes[GenAI.USAGE_INPUT_TOKENS] == 9 and span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 2
    assert span.attributes[Attr.USAGE_SOURCE] == "provider"


def test_filter_mode_usage_spelled_with_a_space_is_still_hidden():
    """A server writing ``"usage": {...}`` (with a space) in the first read: not taken early, filtered."""
    spaced = [e.replace(b'"usage":', b'"usage": ') for e in OA_EVENTS]
    with instrumented() as cap:
        with _client([b"".join(spaced)]) as client, client.stream("POST", OPENAI_URL, json=OA_BODY) as resp:
            got = b"".join(resp.iter_raw())
        [span] = cap.spans()
    assert got == b"".join(spaced[:4] + spaced[5:])
    assert span.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 2


def test_anthropic_closed_after_message_start_is_not_complete():
    """message_start carries usage (the input tokens): that is not the end of the answer."""
    with instrumented() as cap:
        with _client(AN_EVENTS) as client, client.stream("POST", ANTHROPIC_URL, json=AN_BODY,
                                                         headers=AN_HEADERS) as resp:
            it = resp.iter_raw()
            next(it), next(it), next(it)  # message_start, content_block_start, the first delta
        [span] = cap.spans()
    a = span.attributes
    assert a[GenAI.ERROR_TYPE] == "stream_closed"
    assert a[GenAI.USAGE_INPUT_TOKENS] == 25  # what was received is still recorded and priced
    assert GenAI.RESPONSE_FINISH_REASONS not in a


def test_anthropic_closed_after_message_delta_is_complete():
    with instrumented() as cap:
        with _client(AN_EVENTS) as client, client.stream("POST", ANTHROPIC_URL, json=AN_BODY,
                                                         headers=AN_HEADERS) as resp:
            for i, _ in enumerate(resp.iter_raw()):
                if i == 4:  # message_delta (stop reason, output usage) read; message_stop not
                    break
        [span] = cap.spans()
    assert GenAI.ERROR_TYPE not in span.attributes
    assert span.attributes[GenAI.RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_responses_stream_closed_in_progress_has_no_finish_reason():
    def ev(typ, status):
        resp = {"id": "resp_1", "object": "response", "model": "gpt-4o-2024-08-06", "status": status,
                "output": [], "usage": None}
        return f"event: {typ}\ndata: {json.dumps({'type': typ, 'response': resp})}\n\n".encode()

    reads = [ev("response.created", "in_progress"), ev("response.in_progress", "in_progress"),
             b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n']
    body = {"model": "gpt-4o", "input": "hi", "stream": True}
    with instrumented() as cap:
        with _client(reads) as client, client.stream("POST", "https://api.openai.com/v1/responses",
                                                     json=body) as resp:
            it = resp.iter_raw()
            next(it), next(it)
        [span] = cap.spans()
    assert span.attributes[GenAI.ERROR_TYPE] == "stream_closed"
    assert GenAI.RESPONSE_FINISH_REASONS not in span.attributes


def test_stream_parser_made_at_the_first_chunk_and_failing_there_passes_everything_through(monkeypatch):
    """The parser is made when the first chunk is parsed; an adapter that fails to make one costs the call its
    parsing (counted), never the caller's bytes, and the filter is off from then on."""
    from inferops.instrumentation.providers.openai import OpenAIAdapter
    from inferops.names import Metrics

    made = []

    def broken(self, info, headers):
        made.append(1)
        raise RuntimeError("no parser")

    monkeypatch.setattr(OpenAIAdapter, "stream_parser", broken)
    with instrumented() as cap:
        with _client([b"".join(OA_EVENTS)]) as client, client.stream("POST", OPENAI_URL, json=OA_BODY) as resp:
            assert made == []  # not in front of the first chunk
            got = b"".join(resp.iter_raw())
        [span] = cap.spans()
        errors = cap.samples(Metrics.PARSE_ERRORS.prom_name)
    assert made == [1]
    assert got == b"".join(OA_EVENTS)  # nothing filtered without a parser (as when a parser fails mid-stream)
    assert GenAI.USAGE_INPUT_TOKENS not in span.attributes  # nothing parsed, nothing made up
    assert any(labels.get("reason") == "adapter.stream_parser" for labels, _ in errors)


def test_stream_that_ends_before_its_first_chunk_is_recorded():
    with instrumented() as cap:
        with _client([]) as client, client.stream("POST", ANTHROPIC_URL, json=AN_BODY, headers=AN_HEADERS) as resp:
            assert resp.read() == b""
        [span] = cap.spans()
    assert span.attributes[Attr.PARSE_ERROR] == "no events"
