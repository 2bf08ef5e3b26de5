"""Token estimates (tiktoken) for calls whose provider reported no usage.

Used only when usage is missing (a stream without a usage event, a server
that ignores ``stream_options``, an interrupted stream). The usage is then
marked ``estimated``. tiktoken downloads its encodings on first use; here it
must work offline too: the encodings are looked up in ``TIKTOKEN_CACHE_DIR``
(or ``settings.tiktoken_cache_dir``, which sets it). When the encoding file is
not there, the request path never waits for a download: a background thread
tries to load it (which downloads where the network allows), and until it is
available the estimate is ``ceil(utf-8 bytes / 4)``, with one warning logged
that names the missing file and folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from typing import Any

_log = logging.getLogger(__name__)

_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")


def encoding_name_for(model: str) -> str:
    """o200k_base for current OpenAI models, cl100k_base otherwise (an approximation for others)."""
    m = (model or "").lower().rsplit("/", 1)[-1]
    return "o200k_base" if m.startswith(_O200K_PREFIXES) else "cl100k_base"


def cache_dir() -> str:
    """The folder tiktoken reads cached encodings from (its own rule)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def cache_file(name: str) -> str:
    """Path tiktoken expects the encoding ``name`` at (sha1 of its download URL)."""
    return os.path.join(cache_dir(), hashlib.sha1(_URLS[name].encode()).hexdigest())


class TokenEstimator:
    """Counts tokens of text; thread-safe; never raises."""

    def __init__(self, tiktoken_cache_dir: str = ""):
        if tiktoken_cache_dir and "TIKTOKEN_CACHE_DIR" not in os.environ:
            os.environ["TIKTOKEN_CACHE_DIR"] = tiktoken_cache_dir
        self._encodings: dict[str, Any] = {}
        self._loading: set[str] = set()
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def _load(self, name: str) -> None:
        try:
            import tiktoken

            enc = tiktoken.get_encoding(name)
            self._encodings[name] = enc
        except Exception as exc:
            self._warn(name, f"loading it failed ({type(exc).__name__})")

    def _warn(self, name: str, why: str) -> None:
        if name in self._warned:
            return
        self._warned.add(name)
        _log.warning(
            "inferops: tiktoken encoding %s is not available (%s); token estimates use utf-8 bytes/4. "
            "Put %s.tiktoken as %s (set INFEROPS_TIKTOKEN_CACHE_DIR or TIKTOKEN_CACHE_DIR), "
            "or allow tiktoken to download it.", name, why, name, cache_file(name))

    def encoding(self, name: str):
        """The encoding when loaded; otherwise start loading it (never blocks on the network)."""
        enc = self._encodings.get(name)
        if enc is not None:
            return enc
        with self._lock:
            if name in self._loading:
                return self._encodings.get(name)
            self._loading.add(name)
        if os.path.exists(cache_file(name)):
            self._load(name)  # local file: load now (a few hundred ms, once)
        else:
            self._warn(name, f"not in {cache_dir()}")
            threading.Thread(target=self._load, args=(name,), name="inferops-tiktoken", daemon=True).start()
        return self._encodings.get(name)

    def count(self, text: str, model: str = "") -> int:
        if not text:
            return 0
        try:
            enc = self.encoding(encoding_name_for(model))
            if enc is not None:
                return len(enc.encode(text, disallowed_special=()))
        except Exception:
            _log.debug("inferops: tiktoken failed; using bytes/4", exc_info=True)
        return (len(text.encode("utf-8", "replace")) + 3) // 4


def request_text(body: Any, limit: int = 1_000_000) -> tuple[str, int]:
    """All prompt text of a request body, and the number of messages (for the per-message overhead)."""
    if not isinstance(body, dict):
        return "", 0
    parts: list[str] = []
    n_messages = 0
    for key in ("messages", "input", "prompt", "contents", "system", "instructions"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, list) and key in ("messages", "contents", "input"):
            n_messages += len(value)
        _strings(value, parts, 0)
    text = "\n".join(parts)
    return text[:limit], n_messages


_SKIP_KEYS = {"role", "type", "id", "tool_call_id", "name", "mime_type", "mimeType", "cache_control"}


def _strings(value: Any, out: list[str], depth: int) -> None:
    if depth > 12:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _SKIP_KEYS and k not in ("image_url", "data", "source", "inline_data", "inlineData"):
                _strings(v, out, depth + 1)
