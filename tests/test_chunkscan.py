"""The compiled stream chunk test (``_chunkscan``) gives exactly the Python reference's answers.

``openai_plain`` must equal ``openai._plain_events_py`` and ``anthropic_deltas``
must equal ``anthropic._delta_events_py`` on every input: real stream
fragments, fragments built from the tokens the tests look for (so counts tie,
overlap and differ by one), and arbitrary bytes. The parsers' own behaviour
with either implementation is covered by tests/test_stream_fragment_fastpath.py.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from inferops.instrumentation.providers import anthropic as anthropic_mod
from inferops.instrumentation.providers import openai as openai_mod



def test_extension_is_built_in_this_install():
    # pip install builds it (setup.py ext_modules); the parsers must be using it, not the fallback.
    from inferops.instrumentation.providers import _chunkscan as compiled

    assert openai_mod._plain_events is compiled.openai_plain
    assert anthropic_mod._delta_events is compiled.anthropic_deltas


def _compiled():
    from inferops.instrumentation.providers import _chunkscan as compiled

    return compiled


TIER = b'"service_tier":"default"'

# Pieces that make the counts interesting: every token the test counts, its ``null`` form, near misses,
# line ends, and the quote that lets a key overlap itself.
OPENAI_TOKENS = [b'"usage"', b'"usage":null', b'"usage":{"prompt_tokens":1}', b'"finish_reason"',
                 b'"finish_reason":null', b'"finish_reason":"stop"', b'"service_tier"', b'"service_tier":null',
                 TIER, b'"service_tier":"flex"', b'"error"', b"[DONE]", b"\n\n", b"\n", b"\r", b"\r\n", b'"',
                 b"data: ", b'{"id":"c","choices":[{"delta":{"content":"hi"}}]}', b"usage", b":null", b'\\"usage\\"']
ANTHROPIC_LINE = anthropic_mod._DELTA_LINE
ANTHROPIC_TOKENS = [ANTHROPIC_LINE, b"event: content_block_delta\n", b',"index":0,"delta":{"type":"text_delta",'
                    b'"text":"x"}}', b"\n\n", b"\n", b"\r", b"amazon-bedrock", b"amazon-bedrock-invocationMetrics",
                    b'data: {"type":"message_delta"}', b"data: ", b'"', b"d", *anthropic_mod._QUIET_LINES,
                    b"event: ping\n", b"}\n\n", b'data: {"type":"error"}']


def _openai_chunk(text: str, tier: bool = True) -> bytes:
    obj = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
           "usage": None}
    if tier:
        obj["service_tier"] = "default"
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _anthropic_delta(text: str) -> bytes:
    data = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
    return b"event: content_block_delta\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


@pytest.mark.parametrize("fragment, tier_form, events", [
    (_openai_chunk(" hi"), TIER, 1),
    (_openai_chunk(" a") + _openai_chunk(' "usage":{"x"} \r'), TIER, 2),  # escaped in the text: still plain
    (_openai_chunk(" a", tier=False), b"", 1),
    (_openai_chunk(" a"), b"", -1),                        # a tier not read yet: decode it
    (_openai_chunk(" a").replace(b'"finish_reason":null', b'"finish_reason":"stop"'), TIER, -1),
    (_openai_chunk(" a").replace(b'"usage":null', b'"usage":{"total_tokens":3}'), TIER, -1),
    (_openai_chunk(" a")[:-1], TIER, -1),                  # not a whole event
    (_openai_chunk(" a").replace(b"\n\n", b"\r\n\r\n"), TIER, -1),
    (b"data: [DONE]\n\n", TIER, -1),
    (b'data: {"error":{"message":"x"}}\n\n', TIER, -1),
    (b"", TIER, -1),
])
def test_openai_known_fragments(fragment, tier_form, events):
    assert openai_mod._plain_events_py(fragment, tier_form) == events
    assert _compiled().openai_plain(fragment, tier_form) == events


@pytest.mark.parametrize("fragment, events", [
    (_anthropic_delta(" hi"), 1),
    (_anthropic_delta(""), 1),
    (_anthropic_delta(" a\n").replace(b"\\n", b"\n"), 1),        # a raw LF in the data: still one blank line
    (_anthropic_delta(" a") + b"\n\n", -1),                       # an empty event after it
    (_anthropic_delta(" a")[:-2] + ANTHROPIC_LINE + b"\n\n", -1),  # a second delta line in the same data
    (_anthropic_delta(" amazon-bedrock"), -1),
    (_anthropic_delta(" a") + _anthropic_delta(" amazon-bedrock"), -1),
    (_anthropic_delta(" zoo") + _anthropic_delta(" b") + _anthropic_delta(" c"), 3),
    (_anthropic_delta(" a") + _anthropic_delta(" b") + _anthropic_delta('"quoted" \\n'), 3),
    (_anthropic_delta(" a") + b'event: message_delta\ndata: {"type":"message_delta"}\n\n', -1),
    (_anthropic_delta(" a")[:-2], -1),
    (_anthropic_delta(" a").replace(b"\n", b"\r\n"), -1),
    (_anthropic_delta(" a").replace(b'"index":0', b'"index":0,"amazon-bedrock-invocationMetrics":{}'), -1),
    (b"", -1),
    # Quiet events (counted, nothing read) ride along with the deltas; anything else does not.
    (_anthropic_delta(" a") + b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n', 2),
    (b'event: message_stop\ndata: {"type":"message_stop"}\n\n', 1),
    (b'event: ping\ndata: {"type": "ping"}\n\n' + _anthropic_delta(" b") + b'event: ping\ndata: {"type":"ping"}\n\n', 3),
    (b'event: message_stop\ndata: {"type":"message_stop","amazon-bedrock-invocationMetrics":{}}\n\n', -1),
    (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n', -1),
    (b'event: content_block_start\ndata: {"type":"content_block_start","index":1}\n\n', -1),
])
def test_anthropic_known_fragments(fragment, events):
    assert anthropic_mod._delta_events_py(fragment, ANTHROPIC_LINE) == events
    assert _compiled().anthropic_deltas(fragment, ANTHROPIC_LINE) == events


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(OPENAI_TOKENS) | st.binary(max_size=6), max_size=24),
       st.sampled_from([TIER, b"", b'"service_tier":"flex"', b'"']))
def test_openai_same_answer_on_token_soup(parts, tier_form):
    data = b"".join(parts)
    assert _compiled().openai_plain(data, tier_form) == openai_mod._plain_events_py(data, tier_form)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(ANTHROPIC_TOKENS) | st.binary(max_size=6), max_size=24),
       st.sampled_from([ANTHROPIC_LINE, b"", b"d", b"\n\n"]))
def test_anthropic_same_answer_on_token_soup(parts, line):
    data = b"".join(parts)
    assert _compiled().anthropic_deltas(data, line) == anthropic_mod._delta_events_py(data, line)


@settings(max_examples=800, deadline=None)
@given(st.sampled_from([ANTHROPIC_LINE, b"d", b"\n\n", b"data: ", b"data: x\n", b"data: \r", b"data: {",
                        ANTHROPIC_LINE + b'"x', b"a\n"]),
       st.lists(st.lists(st.sampled_from(ANTHROPIC_TOKENS) | st.binary(max_size=4), max_size=5), min_size=1,
                max_size=4),
       st.sampled_from([b"", b"\n\n", b"event: ping\n", b"x"]))
def test_anthropic_delta_event_reads_same_answer(line, payloads, tail):
    """The compiled test's shortcut for reads made of delta events only, and everything near it."""
    data = b"".join(b"event: content_block_delta\n" + line + b"".join(p) + b"\n\n" for p in payloads) + tail
    assert _compiled().anthropic_deltas(data, line) == anthropic_mod._delta_events_py(data, line)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.binary(max_size=8))
def test_same_answer_on_arbitrary_bytes(data, needle):
    compiled = _compiled()
    assert compiled.openai_plain(data, needle) == openai_mod._plain_events_py(data, needle)
    assert compiled.anthropic_deltas(data, needle) == anthropic_mod._delta_events_py(data, needle)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=8), st.booleans())
def test_real_fragments_agree_and_count_events(texts, tier):
    # A text that is exactly a watched key ("usage", ...) puts that key, quoted, into the bytes: the byte test
    # then declines (-1, the chunk is decoded instead), which is right but not what this test counts.
    assume(not {"usage", "finish_reason", "service_tier", "error"} & set(texts))
    compiled = _compiled()
    oa = b"".join(_openai_chunk(t, tier) for t in texts)
    tier_form = TIER if tier else b""
    assert compiled.openai_plain(oa, tier_form) == openai_mod._plain_events_py(oa, tier_form) == len(texts)
    an = b"".join(_anthropic_delta(t) for t in texts)
    assert compiled.anthropic_deltas(an, ANTHROPIC_LINE) == anthropic_mod._delta_events_py(an, ANTHROPIC_LINE) \
        == len(texts)
    end = an + b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    assert compiled.anthropic_deltas(end, ANTHROPIC_LINE) == anthropic_mod._delta_events_py(end, ANTHROPIC_LINE) \
        == len(texts) + 1


def test_wrong_argument_types_raise_type_error():
    # The parsers only pass bytes; anything else is a TypeError (caught by the tee), never a crash.
    compiled = _compiled()
    with pytest.raises(TypeError):
        compiled.openai_plain("text", TIER)
    with pytest.raises(TypeError):
        compiled.anthropic_deltas(b"x")
