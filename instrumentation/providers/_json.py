"""``json.loads`` without its Python-level preamble, for the small objects providers send per event.

Why: ``json.loads(b'{"type":"message_stop"}')`` spends most of its time
outside the C decoder: ``detect_encoding`` (Python), ``bytes.decode``, the
``JSONDecoder.decode`` / ``raw_decode`` frames and two whitespace regex
matches. On a 40-byte stream event that is ~2 us, of which the C scanner
takes ~0.4 us. A stream carries a handful of such events that inferops
decodes itself (message_start, message_delta, the usage chunk...), and every
non-streamed response body is one.

:func:`loads` gives exactly what ``json.loads`` gives (the same value, or the
same exception type and message) for any ``bytes`` or ``str``: it takes the
fast path only for input that ``json.loads`` would decode as UTF-8 and that
starts with ``{`` (so ``json.loads`` would start its scan at offset 0 too), and
hands everything else, including every error but a decode that stops early,
to ``json.loads`` itself. ``tests/test_json_fast.py`` checks the equivalence
on arbitrary input.

Before that, a ``bytes`` body goes to orjson (a dependency): ~13k instructions
instead of ~30k for a 330-byte Anthropic message. orjson's value equals
``json.loads``' whenever it succeeds, except that it makes an integer beyond
64 bits a float; such an integer needs 19 or more digits in a row, so a body
with a run that long (the compiled ``digit_run``) skips orjson. Whatever orjson
rejects (NaN, a float overflow, a BOM, a lone surrogate escape, bad JSON) is
decided by the stdlib path, so errors stay ``json.loads``' errors.
"""

from __future__ import annotations

import json
from typing import Any

try:  # 2-3x faster than the stdlib scanner; used only where its answer is json.loads' answer (see loads)
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - a dependency; without it the stdlib path below does everything
    _orjson_loads = None
try:
    from ._chunkscan import digit_run as _digit_run
except ImportError:  # built without a C compiler: no orjson path (the digit check would cost what it saves)
    _digit_run = None
_ORJSON = _orjson_loads is not None and _digit_run is not None

#: The module's own scanner (the C one when ``_json`` is built): what ``json.loads`` ends up calling.
_scan_once = json.JSONDecoder().scan_once
_stdlib_loads = json.loads


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``, faster for a UTF-8 JSON object; same value or same exception otherwise."""
    if type(data) is bytes:
        # orjson first: its value is json.loads' value whenever it succeeds, except for an integer beyond 64
        # bits (orjson makes it a float), which needs a run of at least 19 digits: such bodies skip it. When
        # orjson fails (NaN, a float overflow, a BOM, a lone surrogate, bad JSON...), json.loads decides.
        if _ORJSON and not _digit_run(data, 19):
            try:
                return _orjson_loads(data)
            except Exception:
                pass
        # json.detect_encoding says UTF-8 whenever the first two bytes are not NUL (and no BOM, which
        # cannot start with "{"): only then is a strict UTF-8 decode what json.loads would do.
        if len(data) < 2 or data[0] != 123 or data[1] == 0:
            return _stdlib_loads(data)
        try:
            text = data.decode()
        except UnicodeDecodeError:  # json.loads decodes with "surrogatepass": let it decide
            return _stdlib_loads(data)
    elif type(data) is str:
        if not data or data[0] != "{":
            return _stdlib_loads(data)
        text = data
    else:
        return _stdlib_loads(data)
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration:  # json.loads turns this into "Expecting value"
        return _stdlib_loads(data)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _stdlib_loads(data)  # raises "Extra data" at the right offset
    return obj
