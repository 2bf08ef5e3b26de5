"""Patching ``Client.send`` / ``AsyncClient.send`` of httpx and httpx2.

``send`` is called once per attempt (SDK retries call it again) with the
final request, and it runs *outside* the transport, so the GenAI span started
here is the parent of the HTTP span opentelemetry-instrumentation-httpx
creates in the transport. Requests to other hosts cost one router lookup.

aiohttp (google-genai's async transport) is hooked at ``ClientSession._request``
by :mod:`.aiohttp_hooks`, with the same runtime.

The original functions are kept and put back by :func:`unpatch_all`.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from inferops.errors import BudgetExceededError

from .streams import tee_classes

LIBRARIES: tuple[str, ...] = ("httpx", "httpx2")


@dataclass(frozen=True)
class Hooks:
    """Per-library classes the runtime needs."""

    sync_tee: type
    async_tee: type
    byte_stream: type
    #: The library's parsed-URL class (``URL._uri_reference``), whose fields ``Runtime.begin`` reads directly
    #: instead of the URL's properties; None: the properties only.
    parse_result: type | None = None


class _State:
    runtime: Any = None
    #: (class, attribute name, original function)
    originals: list[tuple[type, str, Callable]] = []


STATE = _State()


def _sync_send(orig: Callable, hooks: Hooks) -> Callable:
    @functools.wraps(orig)
    def send(self, request, *args, **kwargs):
        rt = STATE.runtime
        if rt is None:
            return orig(self, request, *args, **kwargs)
        call = rt.begin(request, hooks)  # raises only BudgetExceededError
        if call is None:
            return orig(self, request, *args, **kwargs)
        token = call.enter()
        try:
            response = orig(self, request, *args, **kwargs)
        except BaseException as exc:
            call.exit(token)
            call.transport_error(exc)
            raise
        call.exit(token)
        call.response(response, bool(kwargs.get("stream", False)), False)
        return response

    send.__inferops_original__ = orig
    return send


def _async_send(orig: Callable, hooks: Hooks) -> Callable:
    @functools.wraps(orig)
    async def send(self, request, *args, **kwargs):
        rt = STATE.runtime
        if rt is None:
            return await orig(self, request, *args, **kwargs)
        call = rt.begin(request, hooks)
        if call is None:
            return await orig(self, request, *args, **kwargs)
        token = call.enter()
        try:
            response = await orig(self, request, *args, **kwargs)
        except BaseException as exc:
            call.exit(token)
            call.transport_error(exc)
            raise
        call.exit(token)
        call.response(response, bool(kwargs.get("stream", False)), True)
        return response

    send.__inferops_original__ = orig
    return send


def _parse_result(lib) -> type | None:
    """``lib``'s ``ParseResult`` when its URLs keep one with the fields ``Runtime.begin`` reads, else None."""
    try:
        ref = lib.URL("https://h.test:8443/p?q=1")._uri_reference
        cls = type(ref)
        if (ref.scheme, ref.host, ref.port, ref.path, ref.query) == ("https", "h.test", 8443, "/p", "q=1"):
            return cls
    except Exception:
        pass
    return None


def patch_all(runtime) -> list[str]:
    """Install the runtime and patch every importable library; returns the names patched."""
    STATE.runtime = runtime
    patched = []
    for name in LIBRARIES:
        try:
            lib = importlib.import_module(name)
        except ImportError:
            continue
        sync_tee, async_tee = tee_classes(lib)
        hooks = Hooks(sync_tee, async_tee, lib._content.ByteStream, _parse_result(lib))
        for cls, make in ((lib.Client, _sync_send), (lib.AsyncClient, _async_send)):
            current = cls.__dict__.get("send")
            if current is None or hasattr(current, "__inferops_original__"):
                continue
            cls.send = make(current, hooks)
            STATE.originals.append((cls, "send", current))
        patched.append(name)
    from . import aiohttp_hooks

    if aiohttp_hooks.patch(STATE):
        patched.append("aiohttp")
    return patched


def unpatch_all() -> None:
    """Put the original ``send`` functions back and drop the runtime."""
    while STATE.originals:
        cls, attr, orig = STATE.originals.pop()
        setattr(cls, attr, orig)
    STATE.runtime = None


__all__ = ["Hooks", "LIBRARIES", "patch_all", "unpatch_all", "BudgetExceededError"]
