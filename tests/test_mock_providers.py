"""The mock provider server speaks the real wire formats: the real SDKs parse what it sends."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import anthropic
import httpx2
import openai
import pytest

from inferops.mock_providers import MockProviderServer, encode_event_stream_message


@pytest.fixture(scope="module")
def srv():
    with MockProviderServer() as server:
        yield server


@pytest.fixture
def oai(srv):
    return openai.OpenAI(base_url=f"{srv.base_url}/openai/v1", api_key="sk-test", max_retries=0)


@pytest.fixture
def ant(srv):
    return anthropic.Anthropic(base_url=f"{srv.base_url}/anthropic", api_key="sk-ant-test", max_retries=0)


MSG = [{"role": "user", "content": "Say hello to the mock server"}]  # 28 chars -> 7 + 3 = 10 tokens


def test_endpoints_cover_the_documented_mounts(srv):
    eps = srv.endpoints()
    assert eps[f"{srv.base_url}/openai/v1"] == "openai"
    assert eps[f"{srv.base_url}/anthropic"] == "anthropic"
    assert set(eps.values()) >= {"openai", "anthropic", "gcp.gemini", "gcp.vertex_ai", "azure.ai.openai",
                                 "aws.bedrock", "mistral_ai", "cohere"}
    assert srv.self_hosted_endpoints() == {f"{srv.base_url}/vllm/v1": "vllm", f"{srv.base_url}/ollama": "ollama"}
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.port > 0


def test_openai_chat_dated_model_and_deterministic_usage(srv, oai):
    srv.reset()
    r = oai.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=5,
                                    extra_headers={"x-mock-cached-tokens": "64"})
    assert r.model == "gpt-4o-2024-08-06"
    assert r.id.startswith("chatcmpl-")
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "w0 w1 w2 w3 w4"
    assert r.usage.prompt_tokens == 10 + 64  # cached included in prompt_tokens
    assert r.usage.prompt_tokens_details.cached_tokens == 64
    assert r.usage.completion_tokens == 5
    assert r.service_tier == "default"
    (req,) = srv.requests
    assert req.method == "POST" and req.path == "/openai/v1/chat/completions"
    assert req.json()["model"] == "gpt-4o"
    assert req.headers["authorization"] == "Bearer sk-test"


def test_openai_reasoning_tokens_are_inside_completion_tokens(oai):
    r = oai.chat.completions.create(model="o4-mini", messages=MSG, extra_headers={"x-mock-reasoning-tokens": "100"})
    assert r.model == "o4-mini-2025-04-16"
    assert r.usage.completion_tokens == 16 + 100
    assert r.usage.completion_tokens_details.reasoning_tokens == 100


def test_openai_stream_usage_chunk_only_with_include_usage(oai):
    plain = list(oai.chat.completions.create(model="gpt-4o", messages=MSG, stream=True,
                                             extra_headers={"x-mock-chunks": "4"}))
    assert all(c.usage is None and c.choices for c in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain) == " ".join(f"w{i}" for i in range(16))
    assert plain[-1].choices[0].finish_reason == "stop"
    assert len(plain) == 1 + 4 + 1  # role chunk, content chunks, finish chunk

    with_usage = list(oai.chat.completions.create(model="gpt-4o", messages=MSG, stream=True,
                                                  stream_options={"include_usage": True},
                                                  extra_headers={"x-mock-chunks": "4"}))
    assert len(with_usage) == len(plain) + 1
    last = with_usage[-1]
    assert last.choices == [] and last.usage.prompt_tokens == 10 and last.usage.completion_tokens == 16
    assert all(c.usage is None for c in with_usage[:-1])


def test_openai_stream_raw_wire_format(srv):
    body = {"model": "gpt-4o", "messages": MSG, "stream": True}
    r = httpx2.post(f"{srv.base_url}/openai/v1/chat/completions", json=body, headers={"x-mock-chunks": "2"})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.content.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    first = json.loads(events[0][len(b"data: "):])
    assert "usage" not in first  # no usage key at all without include_usage
    r2 = httpx2.post(f"{srv.base_url}/openai/v1/chat/completions",
                     json={**body, "stream_options": {"include_usage": True}}, headers={"x-mock-chunks": "2"})
    events2 = [e for e in r2.content.split(b"\n\n") if e]
    assert json.loads(events2[0][6:])["usage"] is None  # "usage": null on every other chunk
    assert json.loads(events2[-2][6:])["choices"] == []


def test_openai_responses_api_plain_and_stream(oai):
    r = oai.responses.create(model="gpt-4o", input="Say hello", extra_headers={"x-mock-cached-tokens": "5"})
    assert r.model == "gpt-4o-2024-08-06" and r.id.startswith("resp_") and r.status == "completed"
    assert r.output_text == " ".join(f"w{i}" for i in range(16))
    assert r.usage.input_tokens == 3 + 3 + 5 and r.usage.input_tokens_details.cached_tokens == 5
    with oai.responses.stream(model="o3", input="Say hello") as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.usage.output_tokens == 16 + 32 and final.usage.output_tokens_details.reasoning_tokens == 32


def test_openai_embeddings_base64_and_float(oai, srv):
    e = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])  # SDK asks base64
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    assert e.usage.prompt_tokens == e.usage.total_tokens > 0
    r = httpx2.post(f"{srv.base_url}/openai/v1/embeddings",
                    json={"model": "text-embedding-3-small", "input": "x", "encoding_format": "float"})
    assert isinstance(r.json()["data"][0]["embedding"][0], float)


def test_openai_legacy_completions_stream(oai):
    chunks = list(oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", max_tokens=3, stream=True,
                                         stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "w0 w1 w2"
    assert chunks[-1].usage.completion_tokens == 3


@pytest.mark.parametrize("status,exc", [(429, openai.RateLimitError), (401, openai.AuthenticationError),
                                        (500, openai.InternalServerError), (400, openai.BadRequestError)])
def test_openai_error_injection(oai, status, exc):
    with pytest.raises(exc) as info:
        oai.chat.completions.create(model="gpt-4o", messages=MSG, extra_headers={"x-mock-status": str(status)})
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body.get("type")


def test_openai_async_client(srv):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{srv.base_url}/openai/v1", api_key="k", max_retries=0)
        r = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        await client.close()
        return r, chunks

    r, chunks = asyncio.run(run())
    assert r.model == "gpt-4o-mini-2024-07-18"
    assert chunks[-1].usage.total_tokens == r.usage.total_tokens


def test_azure_openai_deployment(srv):
    client = openai.AzureOpenAI(azure_endpoint=f"{srv.base_url}/azure", api_key="k", api_version="2024-10-21",
                                max_retries=0)
    r = client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert r.model == "gpt-4o-2024-08-06"
    req = srv.requests[-1]
    assert req.path.startswith("/azure/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
    assert req.headers["api-key"] == "k"


def test_anthropic_messages_cache_arithmetic(ant):
    m = ant.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MSG,
                            extra_headers={"x-mock-cached-tokens": "100", "x-mock-cache-write-tokens": "7",
                                           "x-mock-cache-write-1h-tokens": "3"})
    assert m.model == "claude-haiku-4-5-20251001" and m.id.startswith("msg_")
    assert m.stop_reason == "max_tokens"
    u = m.usage
    assert u.input_tokens == 10  # excludes cache reads and writes, as the API does
    assert u.cache_read_input_tokens == 100 and u.cache_creation_input_tokens == 10
    assert u.cache_creation.ephemeral_5m_input_tokens == 7 and u.cache_creation.ephemeral_1h_input_tokens == 3
    assert u.service_tier == "standard"


def test_anthropic_stream_events_and_cumulative_usage(ant):
    with ant.messages.stream(model="claude-haiku-4-5", max_tokens=1000, messages=MSG,
                             extra_headers={"x-mock-chunks": "3"}) as stream:
        types = [ev.type for ev in stream]
        final = stream.get_final_message()
    assert types[0] == "message_start" and "message_delta" in types and types[-1] == "message_stop"
    assert types.count("content_block_delta") == 3
    assert final.content[0].text == " ".join(f"w{i}" for i in range(256))  # min(max_tokens, 256) words
    assert final.usage.output_tokens == 256 and final.usage.input_tokens == 10


def test_anthropic_error_injection(ant):
    with pytest.raises(anthropic.RateLimitError) as info:
        ant.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MSG,
                            extra_headers={"x-mock-status": "429"})
    assert info.value.body["error"]["type"] == "rate_limit_error"


def test_anthropic_async_stream(srv):
    async def run():
        client = anthropic.AsyncAnthropic(base_url=f"{srv.base_url}/anthropic", api_key="k", max_retries=0)
        async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=4, messages=MSG) as s:
            text = await s.get_final_text()
        await client.close()
        return text

    assert asyncio.run(run()) == "w0 w1 w2 w3"


def test_anthropic_vertex_raw_predict(srv):
    client = anthropic.AnthropicVertex(base_url=f"{srv.base_url}/vertex/v1", region="us-east5", project_id="proj",
                                       access_token="token", max_retries=0)
    m = client.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=3, messages=MSG)
    assert m.usage.output_tokens == 3
    assert srv.requests[-1].path.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")


def test_anthropic_bedrock_invoke_and_event_stream(srv):
    client = anthropic.AnthropicBedrock(base_url=f"{srv.base_url}/bedrock", aws_region="us-east-1",
                                        aws_access_key="AKIAEXAMPLE", aws_secret_key="secret", max_retries=0)
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    m = client.messages.create(model=model, max_tokens=6, messages=MSG)
    assert m.usage.output_tokens == 6
    with client.messages.stream(model=model, max_tokens=4, messages=MSG) as s:
        text = s.get_final_text()
    assert text == "w0 w1 w2 w3"  # botocore's event-stream decoder accepted our encoding


def test_bedrock_converse_stream_decodes_with_botocore(srv):
    from botocore.eventstream import EventStreamBuffer

    r = httpx2.post(f"{srv.base_url}/bedrock/model/amazon.nova-lite-v1:0/converse-stream",
                    json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
                    headers={"x-mock-cached-tokens": "9"})
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    buf = EventStreamBuffer()
    buf.add_data(r.content)
    msgs = list(buf)
    kinds = [m.headers[":event-type"] for m in msgs]
    assert kinds[0] == "messageStart" and kinds[-1] == "metadata"
    usage = json.loads(msgs[-1].payload)["usage"]
    assert usage["cacheReadInputTokens"] == 9 and usage["outputTokens"] == 16


def test_event_stream_encoder_known_vector():
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    buf.add_data(encode_event_stream_message({":event-type": "chunk"}, b'{"a":1}'))
    (msg,) = list(buf)
    assert msg.headers == {":event-type": "chunk"} and msg.payload == b'{"a":1}'


def test_gzip_for_non_streamed_bodies(srv):
    body = {"model": "gpt-4o", "messages": MSG}
    with httpx2.Client() as client:
        req = client.build_request("POST", f"{srv.base_url}/openai/v1/chat/completions", json=body,
                                   headers={"accept-encoding": "gzip"})
        r = client.send(req, stream=True)
        raw = b"".join(r.iter_raw())
        r.close()
    assert r.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["model"] == "gpt-4o-2024-08-06"
    r = httpx2.post(f"{srv.base_url}/openai/v1/chat/completions", json=body, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers


def test_gzip_stream_on_request(srv):
    body = {"model": "gpt-4o", "messages": MSG, "stream": True}
    with httpx2.Client() as client:
        req = client.build_request("POST", f"{srv.base_url}/openai/v1/chat/completions", json=body,
                                   headers={"accept-encoding": "gzip", "x-mock-gzip-stream": "1"})
        r = client.send(req, stream=True)
        raw = b"".join(r.iter_raw())
        r.close()
    assert r.headers["content-encoding"] == "gzip"
    assert zlib.decompress(raw, 31).endswith(b"data: [DONE]\n\n")


def test_stream_abort_cuts_the_connection(srv):
    body = {"model": "gpt-4o", "messages": MSG, "stream": True}
    got = b""
    with pytest.raises(httpx2.HTTPError):
        with httpx2.stream("POST", f"{srv.base_url}/openai/v1/chat/completions", json=body,
                           headers={"x-mock-stream-abort-after": "2"}) as r:
            for chunk in r.iter_bytes():
                got += chunk
    assert got.count(b"data: ") == 2 and b"[DONE]" not in got


def test_gemini_generate_and_sse(srv):
    url = f"{srv.base_url}/gemini/v1beta/models/gemini-2.5-flash"
    body = {"contents": [{"role": "user", "parts": [{"text": "Say hello to the mock server"}]}]}
    r = httpx2.post(f"{url}:generateContent", json=body, headers={"x-mock-cached-tokens": "4"})
    j = r.json()
    assert j["modelVersion"] == "gemini-2.5-flash" and j["candidates"][0]["finishReason"] == "STOP"
    u = j["usageMetadata"]
    assert u["promptTokenCount"] == 7 + 3 + 4 and u["cachedContentTokenCount"] == 4
    assert u["thoughtsTokenCount"] == 32 and u["candidatesTokenCount"] == 16
    s = httpx2.post(f"{url}:streamGenerateContent?alt=sse", json=body, headers={"x-mock-chunks": "3"})
    assert s.headers["content-type"].startswith("text/event-stream")
    events = [e for e in s.content.split(b"\r\n\r\n") if e]
    assert len(events) == 3 and all(e.startswith(b"data: ") for e in events)
    assert json.loads(events[-1][6:])["usageMetadata"]["candidatesTokenCount"] == 16
    arr = httpx2.post(f"{url}:streamGenerateContent", json=body, headers={"x-mock-chunks": "3"})
    assert len(json.loads(arr.content)) == 3


def test_gemini_stream_totals_include_thoughts_on_every_chunk(srv):
    """google-genai's GenerateContentResponseUsageMetadata.total_token_count is prompt + candidates + tool-use
    prompt + thoughts: running totals on streamed chunks keep that identity."""
    url = f"{srv.base_url}/gemini/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    s = httpx2.post(url, json={"contents": [{"parts": [{"text": "Say hello to the mock server"}]}]},
                    headers={"x-mock-chunks": "4"})
    metas = [json.loads(e[6:])["usageMetadata"] for e in s.content.split(b"\r\n\r\n") if e]
    assert len(metas) == 4 and [m["candidatesTokenCount"] for m in metas] == [4, 8, 12, 16]
    for m in metas:
        assert m["thoughtsTokenCount"] == 32
        assert m["totalTokenCount"] == m["promptTokenCount"] + m["candidatesTokenCount"] + 32


def test_vertex_express_mode_path(srv):
    """google-genai with ``vertexai=True, api_key=...`` calls ``v1beta1/publishers/google/models/{m}``."""
    url = f"{srv.base_url}/vertex/v1beta1/publishers/google/models/gemini-2.0-flash:generateContent"
    r = httpx2.post(url, json={"contents": [{"parts": [{"text": "Say hello to the mock server"}]}]})
    assert r.status_code == 200 and r.json()["usageMetadata"]["promptTokenCount"] == 10


def test_cohere_mistral_ollama_shapes(srv):
    b = srv.base_url
    c = httpx2.post(f"{b}/cohere/v2/chat", json={"model": "command-a-03-2025", "messages": MSG}).json()
    assert c["finish_reason"] == "COMPLETE" and c["usage"]["billed_units"]["output_tokens"] == 16
    e = httpx2.post(f"{b}/cohere/v2/embed", json={"model": "embed-v4.0", "texts": ["a"], "input_type": "search_query",
                                                  "embedding_types": ["float"]}).json()
    assert e["meta"]["billed_units"]["input_tokens"] > 0 and len(e["embeddings"]["float"]) == 1
    assert e["response_type"] == "embeddings_by_type"
    me = httpx2.post(f"{b}/mistral/v1/embeddings", json={"model": "mistral-embed", "input": ["a"]}).json()
    assert me["id"] and me["usage"]["completion_tokens"] == 0 and me["usage"]["prompt_tokens"] > 0
    oe = httpx2.post(f"{b}/openai/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["a"]}).json()
    assert "id" not in oe and "completion_tokens" not in oe["usage"]  # OpenAI's body has neither
    m = httpx2.post(f"{b}/mistral/v1/chat/completions",
                    json={"model": "mistral-large-latest", "messages": MSG, "stream": True}).content
    chunks = [json.loads(x[6:]) for x in m.split(b"\n\n") if x and x != b"data: [DONE]"]
    assert chunks[-1]["usage"]["completion_tokens"] == 16 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    o = httpx2.post(f"{b}/ollama/api/chat", json={"model": "llama3.2", "messages": MSG}).content
    lines = [json.loads(x) for x in o.splitlines() if x]
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 16 and lines[-1]["prompt_eval_count"] == 10


@pytest.mark.parametrize("path,field", [("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "error"),
                                        ("/bedrock/model/amazon.nova-lite-v1:0/converse", "message"),
                                        ("/cohere/v2/chat", "message"), ("/ollama/api/chat", "error")])
def test_error_bodies_per_provider(srv, path, field):
    r = httpx2.post(srv.base_url + path, json={"model": "m"}, headers={"x-mock-status": "429"})
    assert r.status_code == 429 and field in r.json()


def test_unknown_path_is_404_and_requests_are_recorded(srv):
    srv.reset()
    r = httpx2.post(f"{srv.base_url}/openai/v1/nope", json={})
    assert r.status_code == 404
    assert [q.path for q in srv.requests] == ["/openai/v1/nope"]
    srv.reset()
    assert srv.requests == []
