"""The stream parsers' fragment fast path: same results, same bytes, however the stream is cut.

A fragment of whole events that only carries generated text is handed to the
parser's LazyText in one piece (OpenAI chat/completions, Anthropic). These
tests feed the same streams one event per fragment (the usual network read,
fast path taken), several events per fragment, cut at random offsets (the
general splitter) and byte by byte, and require identical summaries and,
where inferops filters the injected usage chunk, identical caller bytes.
"""

from __future__ import annotations

import json
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from inferops.instrumentation.providers import anthropic as anthropic_mod
from inferops.instrumentation.providers import openai as openai_mod
from inferops.instrumentation.providers.anthropic import AnthropicAdapter
from inferops.instrumentation.providers.openai import OpenAIAdapter
from test_adapters_common import feed_all, request

CHAT = "https://api.openai.com/v1/chat/completions"
MSGS = "https://api.anthropic.com/v1/messages"


def _oa_chunk(content=None, finish=None, usage=None, choices=True, tier="default", extra=None):
    c = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
         "service_tier": tier, "system_fingerprint": "fp_1",
         "choices": [{"index": 0, "delta": {"content": content} if content is not None else {},
                      "logprobs": None, "finish_reason": finish}] if choices else [], "usage": usage}
    if extra:
        c.update(extra)
    return b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"


def openai_events(n=30, *, tier_change_at=None, error_at=None, text=" w{i} \"usage\":{{1}} \u00e9"):
    usage = {"prompt_tokens": 40, "completion_tokens": n, "total_tokens": 40 + n,
             "prompt_tokens_details": {"cached_tokens": 8}}
    ev = [_oa_chunk("")]
    for i in range(n):
        tier = "priority" if tier_change_at is not None and i >= tier_change_at else "default"
        ev.append(_oa_chunk(text.format(i=i), tier=tier))
        if error_at == i:
            ev.append(b'data: {"error":{"type":"server_error","message":"x"}}\n\n')
    last = None if tier_change_at is not None else "default"  # the new tier is only in text chunks
    ev += [_oa_chunk(None, "stop", tier=last), _oa_chunk(None, None, usage, choices=False, tier=last),
           b"data: [DONE]\n\n"]
    return ev


def _an(typ, data):
    return b"event: " + typ.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def anthropic_events(n=30, *, ping_at=None):
    ev = [_an("message_start", {"type": "message_start", "message": {
        "id": "msg_9", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None,
        "usage": {"input_tokens": 30, "cache_read_input_tokens": 100, "output_tokens": 1}}}),
        _an("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}})]
    for i in range(n):
        ev.append(_an("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta",
                                                        "text": f" w{i} \"type\":\"message_delta\""}}))
        if ping_at == i:
            ev.append(_an("ping", {"type": "ping"}))
    ev += [_an("content_block_stop", {"type": "content_block_stop", "index": 0}),
           _an("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                                 "usage": {"output_tokens": n}}),
           _an("message_stop", {"type": "message_stop"})]
    return ev


def summary(res):
    u = res.usage
    return (None if u is None else (u.input_tokens, u.cache_read_tokens, u.output_tokens, u.service_tier),
            res.response_model, res.response_id, tuple(res.finish_reasons), res.error_type, res.parse_error,
            res.output_text)


def run(parser, fragments):
    out = b"".join(parser.feed(f) for f in fragments) + parser.flush()
    return out, summary(parser.finish())


def groups(events, sizes):
    out, i = [], 0
    while i < len(events):
        k = sizes[len(out) % len(sizes)]
        out.append(b"".join(events[i:i + k]))
        i += k
    return out


def openai_parser(inject: bool):
    a = OpenAIAdapter()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if not inject:
        body["stream_options"] = {"include_usage": True}
    info = request(a, CHAT, body)
    assert info.injected_stream_usage == inject
    return a.stream_parser(info, {})


def anthropic_parser():
    a = AnthropicAdapter()
    info = request(a, MSGS, {"model": "claude-sonnet-4-5", "max_tokens": 9, "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]})
    return a.stream_parser(info, {})


OPENAI_CASES = {
    "plain": {},
    "tier changes mid-stream": {"tier_change_at": 10},
    "error after content": {"error_at": 12},
}


@pytest.mark.parametrize("inject", [False, True])
@pytest.mark.parametrize("case", sorted(OPENAI_CASES))
def test_openai_same_summary_and_bytes_however_cut(case, inject):
    events = openai_events(**OPENAI_CASES[case])
    data = b"".join(events)
    ref_out, ref = run(openai_parser(inject), [data[i:i + 1] for i in range(len(data))])
    for fragments in (events, groups(events, [3]), groups(events, [1, 4, 2, 7])):
        out, got = run(openai_parser(inject), fragments)
        assert got == ref
        assert out == ref_out
    usage_chunk = events[-2]
    if inject:  # the injected usage-only chunk is hidden, everything else passes unchanged
        assert ref_out == data.replace(usage_chunk, b"")
    else:
        assert ref_out == data
    if case == "tier changes mid-stream":
        assert ref[0][3] == "priority"
    if case == "error after content":
        assert ref[4] == "server_error"
    assert ref[0][:3] == (40, 8, 30) and ref[3] == ("stop",)
    assert ref[6] == "".join(f" w{i} \"usage\":{{1}} \u00e9" for i in range(30))


def test_openai_fast_path_decodes_no_text_only_fragment(monkeypatch):
    """The fast path is taken: text-only fragments are never JSON-decoded (unless the text is read)."""
    decoded = []
    real = openai_mod.json_loads
    monkeypatch.setattr(openai_mod, "json_loads", lambda b: decoded.append(b) or real(b))
    events = openai_events(40)
    parser = openai_parser(True)
    for f in events:
        parser.feed(f)
    res = parser.finish()
    assert res.usage is not None and res.usage.output_tokens == 40
    # first chunk (role), first content chunk (model + content seen), finish chunk, usage chunk
    assert len(decoded) <= 4
    assert res.output_text.startswith(" w0 ")  # reading the text decodes the kept fragments
    assert len(decoded) > 40


def test_openai_groq_usage_in_x_groq_is_not_skipped():
    events = openai_events(10)
    groq_usage = {"x_groq": {"id": "req_1", "usage": {"prompt_tokens": 12, "completion_tokens": 10,
                                                         "total_tokens": 22}}}
    events[-3] = _oa_chunk(None, "stop", extra=groq_usage)  # Groq: usage in x_groq of the last chunk
    del events[-2]
    for fragments in (events, groups(events, [4])):
        _, got = run(openai_parser(False), fragments)
        assert got[0][:3] == (12, 0, 10) and got[3] == ("stop",)


@pytest.mark.parametrize("ping", [None, 5])
def test_anthropic_same_summary_however_cut(ping):
    events = anthropic_events(ping_at=ping)
    data = b"".join(events)
    ref_out, ref = run(anthropic_parser(), [data[i:i + 1] for i in range(len(data))])
    assert ref_out == data
    assert ref[0][:3] == (130, 100, 30) and ref[3] == ("max_tokens",)
    assert ref[6] == "".join(f" w{i} \"type\":\"message_delta\"" for i in range(30))
    for fragments in (events, groups(events, [3]), groups(events, [1, 5, 2])):
        out, got = run(anthropic_parser(), fragments)
        assert got == ref and out == data


def test_anthropic_fast_path_decodes_no_delta_fragment(monkeypatch):
    decoded = []
    real = anthropic_mod.json_loads
    monkeypatch.setattr(anthropic_mod, "json_loads", lambda b: decoded.append(b) or real(b))
    parser = anthropic_parser()
    for f in groups(anthropic_events(40), [2]):
        parser.feed(f)
    res = parser.finish()
    assert res.usage is not None and res.usage.output_tokens == 40
    # message_start, content_block_start + first delta, the tail fragments: never the 40 deltas one by one
    assert len(decoded) <= 6


def test_crlf_stream_takes_the_general_path_with_the_same_result():
    events = openai_events(8)
    crlf = [e.replace(b"\n", b"\r\n") for e in events]
    _, ref = run(openai_parser(False), events)
    _, got = run(openai_parser(False), crlf)
    assert got == ref


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8), st.booleans(),
       st.randoms(use_true_random=False))
def test_random_groupings_agree(sizes, inject, rnd):
    events = openai_events(12, tier_change_at=rnd.choice([None, 3, 9]))
    data = b"".join(events)
    ref_out, ref = run(openai_parser(inject), [data])
    out, got = run(openai_parser(inject), groups(events, sizes))
    assert (out, got) == (ref_out, ref)
    a_events = anthropic_events(12, ping_at=rnd.choice([None, 4]))
    a_ref = run(anthropic_parser(), [b"".join(a_events)])
    assert run(anthropic_parser(), groups(a_events, sizes)) == a_ref


# -- the compiled absorber: what the tee offers each chunk to, made by parser.steady() ------------------------


def run_like_the_tee(parser, fragments):
    """Drive a parser as runtime.Call and streams._SyncTee do: once content was seen, each fragment is offered to
    ``parser.steady()``'s absorber first (remade after every fragment the parser is fed). Returns the caller's
    bytes, the summary and how many fragments the absorber took."""
    out, absorb, taken = [], None, 0
    for f in fragments:
        if absorb is not None and absorb(f):
            out.append(f)
            taken += 1
            continue
        out.append(parser.feed(f))
        absorb = parser.steady() if parser.first_content_seen() else None
    out.append(parser.flush())
    return b"".join(out), summary(parser.finish()), taken


def _cases():
    for inject in (False, True):
        for case in sorted(OPENAI_CASES):
            yield f"openai-{case}-{inject}", (lambda inject=inject: openai_parser(inject)), \
                openai_events(**OPENAI_CASES[case])
    for ping in (None, 5):
        yield f"anthropic-ping{ping}", anthropic_parser, anthropic_events(ping_at=ping)
    # A server that sends no usage: the parse error then depends on the events counted (absorbed ones included).
    yield "openai-no-usage", (lambda: openai_parser(False)), [e for e in openai_events() if b'"usage":{' not in e]
    yield "anthropic-no-usage", anthropic_parser, [
        e for e in anthropic_events() if not e.startswith((b"event: message_start", b"event: message_delta"))]


CASES = {name: (make, events) for name, make, events in _cases()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_compiled_absorber_gives_the_feed_only_result(name):
    from inferops.instrumentation.providers import _common

    assert _common._Absorber is not None  # built in this install
    make, events = CASES[name]
    ref_parser = make()
    ref_out, ref = run(ref_parser, events)
    for fragments in (events, groups(events, [3]), groups(events, [1, 4, 2, 7])):
        parser = make()
        out, got, taken = run_like_the_tee(parser, fragments)
        assert got == ref and out == ref_out
        assert _events_of(parser) == _events_of(ref_parser)  # the absorbed events are counted too
        if fragments is events:
            assert taken >= 20  # one text event per read: nearly all of them taken without a Python frame


def _events_of(parser) -> int:
    return parser.state.events if hasattr(parser, "state") else parser._events


@pytest.mark.parametrize("name", sorted(CASES))
def test_without_the_extension_steady_is_the_python_absorb(name, monkeypatch):
    from inferops.instrumentation.providers import _common

    make, events = CASES[name]
    compiled = run_like_the_tee(make(), events)
    monkeypatch.setattr(_common, "_Absorber", None)
    parser = make()
    for f in events[:3]:
        parser.feed(f)
    assert parser.steady() is None or parser.steady().__func__.__name__ == "absorb"
    python = run_like_the_tee(make(), events)
    assert python[:2] == compiled[:2] and python[2] == compiled[2]


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=5), st.sampled_from(sorted(CASES)))
def test_the_compiled_absorber_any_grouping(sizes, name):
    make, events = CASES[name]
    ref_out, ref = run(make(), events)
    out, got, _ = run_like_the_tee(make(), groups(events, sizes))
    assert got == ref and out == ref_out


def test_queued_bytes_stay_bounded_when_the_absorber_runs_out_of_room(monkeypatch):
    from inferops.instrumentation.providers import _common

    monkeypatch.setattr(_common, "LAZY_RESOLVE_BYTES", 700)  # a few events' worth
    events = anthropic_events(60)
    ref_out, ref = run(anthropic_parser(), events)
    parser = anthropic_parser()
    absorb, peak = None, 0
    for f in events:
        if absorb is None or not absorb(f):
            parser.feed(f)
            absorb = parser.steady() if parser.first_content_seen() else None
        text = parser.state.text
        peak = max(peak, sum(len(x[0]) if type(x) is tuple else len(x) for x in text._pending if type(x) is not str))
    assert summary(parser.finish()) == ref
    assert peak <= 2 * 700 + max(len(e) for e in events)


def test_a_full_text_sink_is_not_grown_by_the_absorber(monkeypatch):
    from inferops.instrumentation.providers import _common

    monkeypatch.setattr(_common, "MAX_TEXT_CHARS", 40)
    events = openai_events(30)
    ref_out, ref = run(openai_parser(True), events)
    out, got, taken = run_like_the_tee(openai_parser(True), events)
    assert got == ref and out == ref_out and taken >= 20
    assert len(got[6]) <= 40


def test_absorber_arguments_are_checked():
    from inferops.instrumentation.providers._chunkscan import Absorber

    with pytest.raises(ValueError):
        Absorber(2, b"x", [], [0, 0], 10)
    with pytest.raises(ValueError):
        Absorber(0, b"x", [], [0], 10)
    with pytest.raises(TypeError):
        Absorber(0, "x", [], [0, 0], 10)
    pending, tally = [], [0, 0]
    a = Absorber(1, anthropic_mod._DELTA_LINE, pending, tally, 10_000)
    delta = anthropic_events(1)[2]
    assert a(delta) is True and pending == [(delta,)] and tally == [1, len(delta)]
    assert a(bytearray(delta)) is False and a(b"event: ping\ndata: {}\n\n") is False
    assert tally == [1, len(delta)]
    with pytest.raises(TypeError):
        a()


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([b"event: message_start", b"event:x", b"event:  y", b"event: \xff",
                                          b"data: {}", b"data:{\"a\":1}", b"data:", b"data:  z", b"datax: 1",
                                          b"id: 3", b": comment", b"retry: 5", b"event: a b"]),
                         min_size=1, max_size=3), min_size=1, max_size=6))
def test_sse_lf_fast_paths_equal_the_general_field_parser(blocks):
    """The one-line and two-line (event + data) shapes inlined in SSEStream._feed_lf give sse_fields' answer."""
    from inferops.instrumentation.providers._common import SSEStream, sse_fields

    raw = [b"\n".join(lines) for lines in blocks]
    got: list = []
    SSEStream(lambda name, data: got.append((name, data)) or False).feed(b"".join(r + b"\n\n" for r in raw))
    assert got == [sse_fields(r) for r in raw]
