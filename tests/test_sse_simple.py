"""``SSEStream.feed``'s compiled split (``_chunkscan.sse_simple``) gives what the Python splitter gives.

A fragment of whole simple events (one ``data:`` line, or ``event:`` plus one
``data:`` line) is split in C; everything else goes to ``_feed_lf`` /
``_feed_any``. Fed the same fragments, a stream with the compiled split and
one without must call ``on_event`` with the same names and data in the same
order, hand back the same bytes (filter mode drops the same events), and hold
back the same partial event.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferops.instrumentation.providers import _common
from inferops.instrumentation.providers._common import SSEStream

compiled = pytest.importorskip("inferops.instrumentation.providers._chunkscan")

PIECES = [b"data: ", b"data:", b"event: ", b"event:", b"message_delta", b"ping", b'{"type":"ping"}',
          b'{"usage":{"x":1}}', b"boom", b"\n", b"\n\n", b"\r", b"\r\n", b": comment", b"id: 7", b"retry: 1",
          b" ", b"\xff", b"\xc3\xa9", b"x"]


def _run(fragments: list[bytes], filtering: bool, splitter, monkeypatch) -> tuple:
    """Feed ``fragments`` to an SSEStream whose compiled split is ``splitter`` (None: the Python splitter only):
    the events seen, the bytes handed back per fragment, the flushed tail and ``broken``."""
    seen: list[tuple[str, bytes]] = []

    def on_event(name: str, data: bytes) -> bool:
        seen.append((name, data))
        if b"boom" in data:
            raise RuntimeError("a parser that fails on one event")
        return b"usage" in data or name == "ping"  # dropped in filter mode

    monkeypatch.setattr(_common, "_sse_simple", splitter)
    stream = SSEStream(on_event, filtering=filtering)
    out = [stream.feed(f) for f in fragments]
    tail = stream.flush()
    return seen, out, tail, stream.broken


def _same_both_ways(blob: bytes, cuts: list[int], filtering: bool) -> None:
    """``blob`` cut at ``cuts`` gives the same with the compiled split as with the Python splitter alone."""
    cuts = sorted(cuts)
    fragments = [blob[a:b] for a, b in zip([0] + cuts, cuts + [len(blob)])]
    with pytest.MonkeyPatch.context() as mp:
        assert _run(fragments, filtering, compiled.sse_simple, mp) == _run(fragments, filtering, None, mp)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=4), max_size=30), st.data(), st.booleans())
def test_same_events_and_bytes_as_the_python_splitter(parts, data, filtering):
    blob = b"".join(parts)
    _same_both_ways(blob, data.draw(st.lists(st.integers(min_value=0, max_value=len(blob)), max_size=5)), filtering)


_text = st.lists(st.sampled_from([b"x", b" ", b"\xff", b"\xc3\xa9", b"usage", b"boom", b"ping", b":", b"{}"]),
                 max_size=5).map(b"".join)
_simple = st.one_of(
    st.tuples(st.sampled_from([b"data:", b"data: "]), _text).map(lambda t: t[0] + t[1] + b"\n\n"),
    st.tuples(st.sampled_from([b"event:", b"event: "]), _text, st.sampled_from([b"data:", b"data: "]), _text)
    .map(lambda t: t[0] + t[1] + b"\n" + t[2] + t[3] + b"\n\n"))
_irregular = st.sampled_from([b": comment\n\n", b"id: 1\ndata: x\n\n", b"data: a\ndata: b\n\n", b"\n\n",
                              b"event: e\n\n", b"data: crlf\r\n\r\n", b"data: partial"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_simple, _simple, _simple, _irregular), max_size=8), st.data(), st.booleans())
def test_streams_of_mostly_simple_events_match_the_python_splitter(events, data, filtering):
    blob = b"".join(events)
    _same_both_ways(blob, data.draw(st.lists(st.integers(min_value=0, max_value=len(blob)), max_size=3)), filtering)


@pytest.mark.parametrize("filtering", [False, True])
def test_real_shapes_take_the_compiled_split_and_match(filtering, monkeypatch):
    anthropic = (b'event: message_start\ndata: {"type":"message_start"}\n\n'
                 b'event: ping\ndata: {"type": "ping"}\n\n')
    openai = b'data: {"choices":[]}\n\ndata: {"usage":{"x":1}}\n\ndata: [DONE]\n\n'
    calls = []
    real = compiled.sse_simple
    for fragment in (anthropic, openai):
        with_c = _run([fragment], filtering, lambda d: calls.append(d) or real(d), monkeypatch)
        assert with_c == _run([fragment], filtering, None, monkeypatch)
    assert calls == [anthropic, openai]
    first = anthropic.index(b"\n\n") + 2
    assert real(anthropic) == [("message_start", b'{"type":"message_start"}', first),
                               ("ping", b'{"type": "ping"}', len(anthropic))]


@pytest.mark.parametrize("fragment", [
    b"", b"\n\n", b"data: x\n", b"data: x\n\n\n", b"data: x\r\n\r\n", b": c\n\n", b"id: 1\ndata: x\n\n",
    b"data: a\ndata: b\n\n", b"event: x\n\n", b"event: a\nevent: b\ndata: c\n\n", b"data: x\n\n\n\ndata: y\n\n",
])
def test_other_shapes_are_left_to_the_python_splitter(fragment):
    assert compiled.sse_simple(fragment) is None


def test_wrong_argument_type_raises_type_error():
    with pytest.raises(TypeError):
        compiled.sse_simple("data: x\n\n")
