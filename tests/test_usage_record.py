"""``provider_usage`` (the adapters' positional constructor) builds the record the keyword form builds."""

from __future__ import annotations

import dataclasses

from inferops.processors.usage import UsageRecord, provider_usage


def test_provider_usage_fills_each_field_by_name():
    # Distinct values, so a positional argument in the wrong place cannot go unnoticed.
    got = provider_usage("prov", "mod", "op", 11, 12, 13, 14, 15, 16, 17, 18, "tier-x", True)
    want = UsageRecord(provider="prov", model="mod", operation="op", input_tokens=11, output_tokens=12,
                       cache_read_tokens=13, cache_write_5m_tokens=14, cache_write_1h_tokens=15,
                       reasoning_tokens=16, audio_input_tokens=17, audio_output_tokens=18, service_tier="tier-x",
                       self_hosted=True)
    assert got == want
    # every field not passed keeps its declared default
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(UsageRecord)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    for name in ("image_input_tokens", "image_output_tokens", "requests", "timestamp", "usage_source", "notes"):
        assert getattr(got, name) == defaults[name], name
    assert got.notes is not provider_usage("p", "m", "o", 0, 0, 0, 0, 0, 0, 0, 0, "t", False).notes  # own list


def test_lazy_text_response_fills_each_field_by_name():
    from inferops.instrumentation.providers._common import LazyText, LazyTextResponse
    from inferops.instrumentation.providers.base import ParsedResponse

    lazy = LazyText(lambda raw: [raw.decode()])
    lazy.add_raw(b"hello")
    got = LazyTextResponse(lazy, response_model="mod", response_id="rid", finish_reasons=["stop"], error_type="err")
    want = ParsedResponse(response_model="mod", response_id="rid", finish_reasons=["stop"], output_text="hello",
                          error_type="err")
    assert [getattr(got, f.name) for f in dataclasses.fields(ParsedResponse)] == \
        [getattr(want, f.name) for f in dataclasses.fields(ParsedResponse)]
    a, b = LazyTextResponse(None), LazyTextResponse(None)
    assert a.finish_reasons == [] and a.finish_reasons is not b.finish_reasons and a.output_text == ""


def test_new_request_info_fills_each_field_by_name():
    from inferops.instrumentation.providers.base import RequestInfo, new_request_info

    got = new_request_info("prov", "op", "mod", True, True, "u", "tier-x", "host", 8443, b"{}", "kind-x")
    want = RequestInfo(provider="prov", operation="op", request_model="mod", stream=True, self_hosted=True, user="u",
                       service_tier="tier-x", server_address="host", server_port=8443, raw_body=b"{}", kind="kind-x")
    assert [getattr(got, f.name) for f in dataclasses.fields(RequestInfo)] == \
        [getattr(want, f.name) for f in dataclasses.fields(RequestInfo)]
    assert got.attributes is not new_request_info("p", "o", "", False, False, "", "", "", None, None).attributes
