"""Who is spending: ``inferops.attribute(...)`` and the per-call resolution of attribution.

``attribute(team=..., feature=...)`` puts the values into W3C baggage, so they
follow the request across services (the OTel propagators carry baggage), and
the instrumentation reads them back for every LLM call made inside. Sources,
most specific first:

1. ``X-Inferops-<Field>`` headers on the request (set per request or as a
   client's ``default_headers``); inferops removes them before the request
   leaves.
2. Baggage (``attribute()`` here or upstream); which baggage key fills which
   field is ``settings.baggage_keys``.
3. Resource attributes (``settings.resource_keys``, and ``service.name``).
4. For ``user`` only: the id the app sent to the provider (OpenAI ``user``,
   Anthropic ``metadata.user_id``).

A field listed in ``settings.required_tags`` that is still empty marks the
call ``unattributed``.
"""

from __future__ import annotations

import functools
import inspect
import operator
from contextlib import ContextDecorator
from typing import Any, Mapping

from opentelemetry import baggage, context

#: Attribution fields callers can set.
FIELDS: tuple[str, ...] = ("team", "project", "feature", "user", "environment")
HEADER_PREFIX = "x-inferops-"
_PREFIX_BYTES = HEADER_PREFIX.encode()
_PREFIX_LEN = len(_PREFIX_BYTES)
_second = operator.itemgetter(1)
try:  # compiled passes over the raw header list (see pop_inferops_headers, set_headers)
    from .providers._chunkscan import set_entries as _set_entries
    from .providers._chunkscan import tagged_headers as _tagged_headers
except ImportError:  # built without a C compiler
    _set_entries = _tagged_headers = None

_settings_cache: list = []


def _baggage_keys() -> Mapping[str, str]:
    """field -> baggage key, from the settings (defaults when the settings cannot load)."""
    if not _settings_cache:
        try:
            from inferops.settings import load_settings

            keys = dict(load_settings().baggage_keys)
        except Exception:  # a bad setting must not break attribute(); instrument() reports it
            from inferops.settings import DEFAULT_BAGGAGE_KEYS

            keys = dict(DEFAULT_BAGGAGE_KEYS)
        _settings_cache.append(keys)
    return _settings_cache[0]


def set_baggage_keys(keys: Mapping[str, str]) -> None:
    """Used by the instrumentor so attribute() and the reader agree on the mapping."""
    _settings_cache.clear()
    _settings_cache.append(dict(keys))


class attribute(ContextDecorator):  # noqa: N801 - reads as a function: inferops.attribute(...)
    """Attribute LLM spend inside this block (or decorated function) to a team, feature, user...

    ``with inferops.attribute(team="search", feature="autocomplete"): ...`` or
    ``@inferops.attribute(team="search")``. Values are W3C baggage, so they
    reach downstream services too; inferops strips the ``baggage`` header from
    requests to LLM providers (``strip_baggage``). Extra keyword arguments are
    set as baggage entries of the same name. Works with async functions.
    """

    def __init__(self, team: str | None = None, project: str | None = None, feature: str | None = None,
                 user: str | None = None, environment: str | None = None, **more: Any):
        self._values = {"team": team, "project": project, "feature": feature, "user": user,
                        "environment": environment}
        self._more = more
        self._tokens: list[object] = []

    def _context(self):
        ctx = context.get_current()
        keys = _baggage_keys()
        for name, value in self._values.items():
            if value is not None:
                ctx = baggage.set_baggage(keys.get(name, name), str(value), context=ctx)
        for name, value in self._more.items():
            if value is not None:
                ctx = baggage.set_baggage(name, str(value), context=ctx)
        return ctx

    def __enter__(self) -> "attribute":
        self._tokens.append(context.attach(self._context()))
        return self

    def __exit__(self, *exc) -> bool:
        context.detach(self._tokens.pop())
        return False

    def __call__(self, func):
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def wrapper(*args, **kwargs):
                with self._recreate_cm():
                    return await func(*args, **kwargs)
            return wrapper
        return super().__call__(func)


class Resolver:
    """Resolves the :class:`Attribution` of one call; built once per instrument()."""

    def __init__(self, settings, resource_attributes: Mapping[str, Any] | None):
        from inferops.processors.recorder import Attribution

        self._attribution = Attribution
        self.baggage_keys = {f: k for f, k in settings.baggage_keys.items() if f in FIELDS}
        self.required = tuple(settings.required_tags)
        res = dict(resource_attributes or {})
        self.defaults: dict[str, str] = {}
        for fld, key in settings.resource_keys.items():
            value = res.get(key)
            if value not in (None, ""):
                self.defaults[fld] = str(value)
        self.service_name = str(res.get("service.name", "") or "")
        #: Attribution is frozen: equal ones are shared, which also lets a metrics batch group calls by identity.
        self._memo: dict[tuple, Any] = {}
        #: What a call with no X-Inferops-* header, no baggage and no user in the body resolves to.
        self.plain = self._make(dict(self.defaults))

    def resolve(self, headers: Mapping[str, str], body_user: str = "", context=None):
        """The call's attribution from its headers, the baggage of ``context`` (default: the current one),
        the body's user and the resource defaults."""
        bag = baggage.get_all(context)
        if not headers and not bag and not body_user:
            return self.plain
        values: dict[str, str] = {}
        for fld, value in headers.items():
            if value and fld in FIELDS:
                values[fld] = value
        if bag:
            for fld, key in self.baggage_keys.items():
                if fld not in values:
                    value = bag.get(key)
                    if value:
                        values[fld] = str(value)
        for fld, value in self.defaults.items():
            values.setdefault(fld, value)
        if "user" not in values and body_user:
            values["user"] = body_user
        return self._make(values)

    def _make(self, values: Mapping[str, str]):
        unattributed = any(not values.get(f) for f in self.required)
        key = (values.get("team", ""), values.get("project", ""), values.get("feature", ""), values.get("user", ""),
               values.get("environment", ""), unattributed)
        who = self._memo.get(key)
        if who is None:
            if len(self._memo) >= 4096:  # bounded: user ids may be many
                self._memo.clear()
            who = self._memo[key] = self._attribution(
                team=key[0], project=key[1], feature=key[2], user=key[3], environment=key[4],
                service_name=self.service_name, unattributed=unattributed)
        return who


def _raw_entries(headers) -> list | None:
    """The raw header list of an httpx / httpx2 ``Headers``, ``[(name, lower-case name, value)]`` as bytes;
    None for any other mapping (the helpers below then use its public API)."""
    entries = getattr(headers, "_list", None)
    if type(entries) is list and (not entries or (type(entries[0]) is tuple and len(entries[0]) == 3)):
        return entries
    return None


def pop_inferops_headers(headers, strip_baggage: bool = False) -> dict[str, str]:
    """Remove every ``X-Inferops-*`` header (and with ``strip_baggage`` the ``baggage`` header) from an httpx
    ``Headers``; return field -> value of the ``X-Inferops-*`` ones.

    One pass over the raw header list decides the common case (neither kind present), without the
    ``Headers`` API: its ``in`` alone decodes every header name and value to find out their encoding.
    """
    found: dict[str, str] = {}
    entries = _raw_entries(headers)
    if entries is not None:
        if _tagged_headers is not None:  # compiled: a compare or two per header
            if _tagged_headers(entries, _PREFIX_BYTES, b"baggage") is False:
                return found  # the common case: no X-Inferops-* header and no baggage (None: not bytes)
        else:
            try:  # every lower-case name in one string: two substring tests in C instead of a loop in Python
                names = b"\n".join(map(_second, entries))
            except TypeError:
                names = _PREFIX_BYTES  # not bytes: take the long way below
            if _PREFIX_BYTES not in names and b"baggage" not in names:
                return found  # the common case: no X-Inferops-* header and no baggage
    else:
        raw = getattr(headers, "raw", None)  # [(name bytes, value bytes)], no decoding
        if isinstance(raw, list):
            for name, _ in raw:
                if name[:_PREFIX_LEN].lower() == _PREFIX_BYTES or name.lower() == b"baggage":
                    break
            else:
                return found
    if strip_baggage and "baggage" in headers:
        del headers["baggage"]
    for key in [k for k in headers.keys() if k.lower().startswith(HEADER_PREFIX)]:
        found[key.lower()[len(HEADER_PREFIX):].replace("_", "-")] = headers.get(key, "")
        del headers[key]
    return found


def header_value(headers, lower_name: bytes) -> str:
    """``headers.get(name, "")`` of an httpx ``Headers`` (``lower_name``: the lower-case name as bytes).

    For ASCII values read straight from the raw header list: ``Headers.get`` first decodes every header name
    and value to learn their encoding, for a header that is usually not there. Other values, and other
    mappings, go through ``get`` itself, so the answer is always the same.
    """
    entries = _raw_entries(headers)
    if entries is not None:
        if _tagged_headers is not None and _tagged_headers(entries, lower_name, lower_name) is False:
            return ""  # compiled: no header of that name (the usual answer for Content-Encoding)
        values = [v for _, k, v in entries if k == lower_name]
        if not values:
            return ""
        if all(type(v) is bytes and v.isascii() for v in values):
            return ", ".join(v.decode("ascii") for v in values)
    return headers.get(lower_name.decode("ascii"), "")


def set_ascii_headers(headers, items: list[tuple[bytes, bytes, bytes]]) -> None:
    """:func:`set_headers` for pairs the caller built as ASCII bytes: ``(name, lower-case name, value)``.

    inferops' own writes (``Content-Length``, ``Accept-Encoding``) skip the per-pair checks and encodes:
    straight to the compiled writer when the headers are httpx's."""
    entries = _raw_entries(headers)
    if entries is not None and _set_entries is not None:
        _set_entries(entries, items)
        return
    set_headers(headers, [(name.decode("ascii"), value.decode("ascii")) for name, _, value in items])


def set_headers(headers, items: list[tuple[str, str]]) -> None:
    """``headers[name] = value`` for each pair, in order, on an httpx ``Headers``.

    Same result as ``Headers.__setitem__`` (the first entry of a name replaced in place, later duplicates
    removed, else appended), written on the raw list by the compiled ``set_entries`` (without the
    extension: list searches over the lower-case names) instead of an encode, a lower and a Python loop
    over every header per write. Non-ASCII pairs and other mappings go through ``__setitem__`` itself.
    """
    entries = _raw_entries(headers)
    triples = []
    if entries is not None:
        for name, value in items:
            if not (name.isascii() and value.isascii()):
                entries = None
                break
            raw = name.encode("ascii")
            triples.append((raw, raw.lower(), value.encode("ascii")))
    if entries is None:
        for name, value in items:
            headers[name] = value
        return
    if _set_entries is not None:  # compiled: the same writes without a Python list search per header
        _set_entries(entries, triples)
        return
    keys = list(map(_second, entries))
    for entry in triples:
        lower = entry[1]
        if lower not in keys:
            entries.append(entry)
            keys.append(lower)
            continue
        first = keys.index(lower)
        entries[first] = entry
        if keys.count(lower) > 1:
            entries[first + 1:] = [e for e in entries[first + 1:] if e[1] != lower]
            keys = list(map(_second, entries))
