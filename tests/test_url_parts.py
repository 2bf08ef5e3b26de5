"""``runtime._url_parts`` reads httpx's parsed URL directly and answers what the URL's properties answer."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferops.instrumentation.patch import _parse_result
from inferops.instrumentation.runtime import _url_parts

LIBS = [httpx, httpx2]

_hosts = st.sampled_from(["api.openai.com", "API.Anthropic.COM", "127.0.0.1", "[::1]", "xn--fiqs8s.icom.museum",
                          "中国.icom.museum", "bücher.example", "a-xn--b.test", "localhost"])
_ports = st.sampled_from(["", ":443", ":80", ":8443", ":1"])
_segments = st.lists(st.sampled_from(["v1", "chat", "completions", "pa%20th", "%2F", "ü", "a b", "x%", "models",
                                      "gemini-2.5-pro:streamGenerateContent", ""]), max_size=4)
_queries = st.sampled_from(["", "?", "?alt=sse", "?key=AIza%20x&alt=sse", "?q=ü", "?api-version=2024-10-21",
                            "?a=%E4%B8%96"])


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@settings(max_examples=400, deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTPS"]), host=_hosts, port=_ports, segments=_segments,
       query=_queries)
def test_url_parts_equal_the_url_properties(lib, scheme, host, port, segments, query):
    try:
        url = lib.URL(f"{scheme}://{host}{port}/" + "/".join(segments) + query)
    except Exception:  # not a URL this library accepts: nothing to compare
        return
    where, q = _url_parts(url, _parse_result(lib))
    assert where == (url.scheme, url.host, url.port, url.path)
    if q is not None:
        assert q == url.query.decode("ascii")


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_plain_urls_take_the_parsed_reference(lib):
    cls = _parse_result(lib)
    assert cls is not None, "this library's URLs keep a parsed reference: the fast path must be on"
    url = lib.URL("https://api.openai.com/v1/chat/completions?x=1")
    assert _url_parts(url, cls) == (("https", "api.openai.com", None, "/v1/chat/completions"), "x=1")
    # escapes, IDNA and other URL types go through the properties (query None: the caller reads url.query)
    assert _url_parts(lib.URL("https://h.test/pa%20th"), cls) == (("https", "h.test", None, "/pa th"), None)
    assert _url_parts(lib.URL("https://xn--fiqs8s.icom.museum/"), cls)[1] is None
    assert _url_parts(url, None)[1] is None
