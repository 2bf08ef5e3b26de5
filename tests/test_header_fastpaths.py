"""The raw-list fast paths over httpx ``Headers`` answer exactly what the ``Headers`` API answers.

``pop_inferops_headers`` and ``header_value`` read ``Headers._list`` directly
(the ``Headers`` API decodes every name and value to learn their encoding on
each ``in`` / ``get``); these tests hold them to plain ``Headers`` code on
arbitrary header lists: duplicates, mixed case, non-ASCII values.
"""

from __future__ import annotations

import contextlib

import httpx
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferops.instrumentation.attribution import HEADER_PREFIX, header_value, pop_inferops_headers, set_headers

LIBS = [httpx, httpx2]

_names = st.sampled_from(["Content-Type", "content-encoding", "Content-Encoding", "baggage", "Baggage",
                          "X-Inferops-Team", "x-inferops-project", "X-INFEROPS-Feature_Name", "x-inferopsx",
                          "x-stainless-os", "Authorization", "X-Inferops-", "baggagex"])
_values = st.one_of(st.sampled_from(["gzip", "team=a", "", "core", "deflate, gzip"]),
                    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=8),
                    st.binary(max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b))
_header_lists = st.lists(st.tuples(_names, _values), max_size=12)


def _headers(lib, pairs):
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode("latin-1")) for k, v in pairs]
    return lib.Headers(raw)


def _reference_pop(headers, strip_baggage: bool) -> dict[str, str]:
    """The straightforward version, through the Headers API only."""
    found = {}
    if strip_baggage and "baggage" in headers:
        del headers["baggage"]
    for key in [k for k in headers.keys() if k.lower().startswith(HEADER_PREFIX)]:
        found[key.lower()[len(HEADER_PREFIX):].replace("_", "-")] = headers.get(key, "")
        del headers[key]
    return found


@contextlib.contextmanager
def _compiled(name: str, on: bool):
    """``attribution.<name>`` (a compiled helper) as built, or None (the Python twin) while the block runs.

    Not monkeypatch: hypothesis reruns a test body within one fixture scope."""
    from inferops.instrumentation import attribution

    saved = getattr(attribution, name)
    assert saved is not None, f"the compiled {name} is part of the build"
    setattr(attribution, name, saved if on else None)
    try:
        yield
    finally:
        setattr(attribution, name, saved)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("strip_baggage", [True, False])
@settings(max_examples=300, deadline=None)
@given(pairs=_header_lists)
def test_pop_inferops_headers_equals_the_headers_api(lib, strip_baggage, compiled, pairs):
    with _compiled("_tagged_headers", compiled):
        fast, slow = _headers(lib, pairs), _headers(lib, pairs)
        assert pop_inferops_headers(fast, strip_baggage) == _reference_pop(slow, strip_baggage)
        assert fast.raw == slow.raw  # the same headers left, in the same order


_raw_names = st.one_of(st.sampled_from([b"x-inferops-", b"x-inferops-team", b"baggage", b"baggagex", b"x-inferops",
                                        b"bagg", b"", b"content-type", b"xx-inferops-team"]), st.binary(max_size=14))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just(b"N"), _raw_names, st.just(b"v")),
                          st.tuples(st.just(b"N"), st.text(max_size=3), st.just(b"v")),
                          st.tuples(st.just(b"N"), _raw_names)), max_size=8))
def test_tagged_headers_answers_the_python_test(entries):
    from inferops.instrumentation.providers._chunkscan import tagged_headers

    if all(len(e) == 3 and type(e[1]) is bytes for e in entries):
        want = any(e[1].startswith(b"x-inferops-") or e[1] == b"baggage" for e in entries)
    else:
        want = None  # not a raw header list: the caller takes the Headers API
    assert tagged_headers(entries, b"x-inferops-", b"baggage") is want


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@settings(max_examples=300, deadline=None)
@given(pairs=_header_lists, name=_names)
def test_header_value_equals_headers_get(lib, compiled, pairs, name):
    with _compiled("_tagged_headers", compiled):
        headers = _headers(lib, pairs)
        assert header_value(headers, name.lower().encode()) == headers.get(name, "")


def test_header_value_of_a_plain_mapping():
    assert header_value({"content-encoding": "gzip"}, b"content-encoding") == "gzip"
    assert header_value({}, b"content-encoding") == ""


def test_baggage_kept_unless_asked_and_nothing_else_touched():
    h = httpx2.Headers({"baggage": "team=a", "X-Inferops-Team": "core", "accept": "x"})
    assert pop_inferops_headers(h) == {"team": "core"}
    assert h.raw == [(b"baggage", b"team=a"), (b"accept", b"x")]
    assert pop_inferops_headers(h, strip_baggage=True) == {}
    assert h.raw == [(b"accept", b"x")]



_writes = st.lists(st.tuples(st.sampled_from(["Content-Length", "content-length", "Accept-Encoding", "baggage",
                                              "X-Inferops-Team", "Content-Encoding", "X-New"]),
                             st.sampled_from(["0", "123", "identity", "gzip, br", ""])), min_size=1, max_size=3)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@settings(max_examples=300, deadline=None)
@given(pairs=_header_lists, writes=_writes)
def test_set_headers_equals_setitem_in_order(lib, compiled, pairs, writes):
    with _compiled("_set_entries", compiled):
        fast, slow = _headers(lib, pairs), _headers(lib, pairs)
        set_headers(fast, writes)
        for name, value in writes:
            slow[name] = value
        assert fast._list == slow._list  # raw names, lower-case names and values, in order


def test_set_headers_non_ascii_and_plain_mappings_go_through_setitem():
    h = httpx2.Headers({"a": "b"})
    set_headers(h, [("x-note", "caf\u00e9")])
    assert h["x-note"] == "caf\u00e9"
    d = {}
    set_headers(d, [("Content-Length", "3")])
    assert d == {"Content-Length": "3"}


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@settings(max_examples=200, deadline=None)
@given(pairs=_header_lists, writes=_writes)
def test_set_ascii_headers_equals_setitem_in_order(lib, compiled, pairs, writes):
    from inferops.instrumentation import attribution

    with _compiled("_set_entries", compiled):
        fast, slow = _headers(lib, pairs), _headers(lib, pairs)
        attribution.set_ascii_headers(fast, [(n.encode(), n.lower().encode(), v.encode()) for n, v in writes])
        for name, value in writes:
            slow[name] = value
        assert fast._list == slow._list
    d = {}
    attribution.set_ascii_headers(d, [(b"Content-Length", b"content-length", b"3")])
    assert d == {"Content-Length": "3"}
