"""The demo's traffic mix: several teams, projects, features and models, through the real SDKs.

Every call goes through the client library an application would use (``openai``
and ``anthropic`` SDKs, which send through ``httpx2``; Gemini has no SDK here,
so plain ``httpx2`` and ``httpx`` POSTs in its REST format), inside
``inferops.attribute(team=..., project=..., feature=...)``, so the
instrumentation sees exactly what it sees in production. Token counts come from
the mock's documented rules: input ~ prompt characters / 4, output and cache
figures from ``x-mock-*`` request headers (see :mod:`inferops.mock_providers`).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

#: API families the mix uses.
OPENAI_CHAT = "openai-chat"
OPENAI_EMBEDDINGS = "openai-embeddings"
ANTHROPIC_MESSAGES = "anthropic-messages"
GEMINI_HTTPX2 = "gemini-httpx2"
GEMINI_HTTPX = "gemini-httpx"
SELF_HOSTED_CHAT = "vllm-chat"


@dataclass(frozen=True)
class Workload:
    """One kind of call some team makes, and how often (``weight``) relative to the others."""

    team: str
    project: str
    feature: str
    api: str
    model: str
    weight: float
    stream: bool = False
    prompt_chars: tuple[int, int] = (400, 2400)
    output_tokens: tuple[int, int] = (40, 300)
    #: x-mock-* headers: prompt-cache reads/writes, reasoning tokens.
    headers: dict[str, str] = field(default_factory=dict)
    #: Share of calls answered 429 (the SDKs raise; inferops counts an error).
    error_rate: float = 0.0


WORKLOADS: tuple[Workload, ...] = (
    Workload("search", "web-search", "answer-synthesis", OPENAI_CHAT, "gpt-4o", 3.0, stream=True,
             prompt_chars=(3000, 9000), output_tokens=(150, 400)),
    Workload("search", "web-search", "query-rewrite", OPENAI_CHAT, "gpt-4o-mini", 3.0,
             prompt_chars=(200, 800), output_tokens=(10, 40)),
    Workload("search", "web-search", "embeddings", OPENAI_EMBEDDINGS, "text-embedding-3-small", 2.0,
             prompt_chars=(2000, 8000), output_tokens=(0, 0)),
    Workload("support", "helpdesk", "ticket-summary", ANTHROPIC_MESSAGES, "claude-sonnet-4-5", 2.0,
             prompt_chars=(2000, 6000), output_tokens=(120, 300), headers={"x-mock-cached-tokens": "3000"},
             error_rate=0.03),
    Workload("support", "helpdesk", "reply-draft", ANTHROPIC_MESSAGES, "claude-haiku-4-5", 2.0, stream=True,
             prompt_chars=(800, 2400), output_tokens=(80, 250)),
    Workload("research", "experiments", "deep-analysis", OPENAI_CHAT, "o3", 1.0,
             prompt_chars=(4000, 12000), output_tokens=(200, 500), headers={"x-mock-reasoning-tokens": "800"}),
    Workload("research", "experiments", "long-context", GEMINI_HTTPX2, "gemini-2.5-pro", 1.0, stream=True,
             prompt_chars=(20000, 60000), output_tokens=(200, 500)),
    Workload("marketing", "content", "copywriting", GEMINI_HTTPX, "gemini-2.5-flash", 1.5,
             prompt_chars=(600, 2000), output_tokens=(150, 400)),
    Workload("platform", "internal-tools", "code-review", SELF_HOSTED_CHAT, "llama-3.1-8b-instruct", 1.5,
             prompt_chars=(2000, 8000), output_tokens=(100, 300)),
)

_WORDS = ("invoice", "latency", "customer", "refund", "cluster", "query", "summary", "ticket", "model",
          "budget", "report", "deploy", "index", "search", "vector", "policy", "review", "draft")


def prompt_text(rng: random.Random, chars: int) -> str:
    """Some words of about ``chars`` characters (the mock counts ~4 characters per token)."""
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


@dataclass
class TrafficStats:
    """What the traffic generator did (the spend itself is read from the metrics)."""

    calls: int = 0
    errors: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str = "") -> None:
        with self.lock:
            self.calls += 1
            if error:
                self.errors += 1
                self.last_error = error


class Clients:
    """The SDK and HTTP clients the mix uses, all pointed at the mock provider server."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        import anthropic
        import httpx
        import httpx2
        import openai

        self.base_url = base_url
        self.openai = openai.OpenAI(base_url=f"{base_url}/openai/v1", api_key="sk-demo", max_retries=0,
                                    timeout=timeout)
        self.vllm = openai.OpenAI(base_url=f"{base_url}/vllm/v1", api_key="none", max_retries=0, timeout=timeout)
        self.anthropic = anthropic.Anthropic(base_url=f"{base_url}/anthropic", api_key="sk-ant-demo",
                                             max_retries=0, timeout=timeout)
        self.httpx2 = httpx2.Client(timeout=timeout)
        self.httpx = httpx.Client(timeout=timeout)

    def close(self) -> None:
        for client in (self.openai, self.vllm, self.anthropic, self.httpx2, self.httpx):
            try:
                client.close()
            except Exception:
                pass


def _openai_chat(client, w: Workload, prompt: str, max_tokens: int, headers: dict[str, str]) -> None:
    messages = [{"role": "system", "content": f"You help the {w.team} team with {w.feature}."},
                {"role": "user", "content": prompt}]
    if w.stream:
        stream = client.chat.completions.create(model=w.model, messages=messages, max_completion_tokens=max_tokens,
                                                stream=True, extra_headers=headers)
        for _ in stream:
            pass
    else:
        client.chat.completions.create(model=w.model, messages=messages, max_completion_tokens=max_tokens,
                                       extra_headers=headers)


def _gemini(post: Callable[..., Any], stream_post: Callable[..., Any], base_url: str, w: Workload, prompt: str,
            max_tokens: int, headers: dict[str, str]) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"maxOutputTokens": max_tokens}}
    hdrs = {"x-goog-api-key": "demo-key", "content-type": "application/json", **headers}
    url = f"{base_url}/gemini/v1beta/models/{w.model}"
    if w.stream:
        with stream_post("POST", f"{url}:streamGenerateContent", params={"alt": "sse"}, content=json.dumps(body),
                         headers=hdrs) as resp:
            resp.raise_for_status()
            for _ in resp.iter_lines():
                pass
    else:
        post(f"{url}:generateContent", content=json.dumps(body), headers=hdrs).raise_for_status()


def call(clients: Clients, w: Workload, rng: random.Random) -> None:
    """Make one call of workload ``w`` (raises what the client raises)."""
    prompt = prompt_text(rng, rng.randint(*w.prompt_chars))
    max_tokens = max(1, rng.randint(*w.output_tokens)) if w.output_tokens[1] else 1
    headers = dict(w.headers)
    if w.output_tokens[1]:
        headers["x-mock-output-tokens"] = str(max_tokens)
    if w.error_rate and rng.random() < w.error_rate:
        headers["x-mock-status"] = "429"
    if w.api == OPENAI_CHAT:
        _openai_chat(clients.openai, w, prompt, max_tokens, headers)
    elif w.api == SELF_HOSTED_CHAT:
        _openai_chat(clients.vllm, w, prompt, max_tokens, headers)
    elif w.api == OPENAI_EMBEDDINGS:
        chunks = [prompt[i:i + 1000] for i in range(0, len(prompt), 1000)]
        clients.openai.embeddings.create(model=w.model, input=chunks, extra_headers=headers)
    elif w.api == ANTHROPIC_MESSAGES:
        kwargs = dict(model=w.model, max_tokens=max_tokens, extra_headers=headers,
                      system=f"You help the {w.team} team with {w.feature}.",
                      messages=[{"role": "user", "content": prompt}])
        if w.stream:
            with clients.anthropic.messages.stream(**kwargs) as stream:
                for _ in stream.text_stream:
                    pass
        else:
            clients.anthropic.messages.create(**kwargs)
    elif w.api == GEMINI_HTTPX2:
        _gemini(clients.httpx2.post, clients.httpx2.stream, clients.base_url, w, prompt, max_tokens, headers)
    elif w.api == GEMINI_HTTPX:
        _gemini(clients.httpx.post, clients.httpx.stream, clients.base_url, w, prompt, max_tokens, headers)
    else:  # pragma: no cover - WORKLOADS only uses the APIs above
        raise ValueError(f"unknown api {w.api!r}")


class TrafficGenerator:
    """``concurrency`` worker threads making weighted-random calls until :meth:`stop`."""

    def __init__(self, base_url: str, *, concurrency: int = 4, seed: int = 7, think_s: float = 0.05,
                 workloads: tuple[Workload, ...] = WORKLOADS) -> None:
        self.clients = Clients(base_url)
        self.workloads = workloads
        self.concurrency = concurrency
        self.seed = seed
        self.think_s = think_s
        self.stats = TrafficStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.concurrency):
            t = threading.Thread(target=self._worker, args=(random.Random(self.seed * 1000 + i),),
                                 name=f"inferops-demo-traffic-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _worker(self, rng: random.Random) -> None:
        import inferops

        weights = [w.weight for w in self.workloads]
        while not self._stop.is_set():
            w = rng.choices(self.workloads, weights)[0]
            error = ""
            try:
                with inferops.attribute(team=w.team, project=w.project, feature=w.feature):
                    call(self.clients, w, rng)
            except Exception as exc:  # 429s on purpose, or the mock going away at shutdown
                error = f"{type(exc).__name__}: {exc}"[:200]
            self.stats.add(error)
            self._stop.wait(rng.uniform(0, 2 * self.think_s))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers (each finishes its call in flight) and close the clients; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.clients.close()
