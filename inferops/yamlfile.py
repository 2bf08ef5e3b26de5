"""YAML loading that remembers where every value came from.

Every user-facing YAML file (settings, price overrides, budgets, routing
policy) must give errors that name the file, the line and the field. PyYAML
drops positions after parsing, so this loader builds plain ``dict``/``list``
subclasses that carry the line of each key and item. Code that validates a
file raises :class:`ConfigError` via :func:`fail`, which formats
``file:line: field: problem (got X, expected Y)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A user-supplied file or setting is invalid. The message names where and what."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None, field: str = ""):
        self.source = source
        self.line = line
        self.field = field
        self.detail = message
        where = source
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = ": ".join(p for p in (where, field) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class LineDict(dict):
    """A mapping that knows the 1-based line of each key (``line_of``)."""

    source: str = ""
    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list that knows the 1-based line of each item (``line_of``)."""

    source: str = ""
    line: int = 0

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps node positions and rejects duplicate keys."""

    source_name = ""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.source = loader.source_name
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConfigError(f"expected a plain key, got {describe(key)}", source=loader.source_name,
                              line=key_node.start_mark.line + 1) from None
        if key in out:
            raise ConfigError(
                f"duplicate key {key!r} (first on line {out.key_lines[key]})",
                source=loader.source_name, line=key_node.start_mark.line + 1, field=str(key),
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode, deep: bool = False) -> LineList:
    out = LineList()
    out.source = loader.source_name
    out.line = node.start_mark.line + 1
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.item_lines.append(child.start_mark.line + 1)
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """Dates as PyYAML reads them, but an impossible date (2026-02-30) stays a string.

    PyYAML raises a bare ``ValueError`` without a position for those; keeping the text
    lets the validator of the field say which field, where, and what it expected.
    """
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_text(text: str, source: str = "<string>") -> Any:
    """Parse YAML text; syntax errors become :class:`ConfigError` with the line."""
    loader = _Loader(text)
    loader.source_name = source
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()


def load_file(path: str | Path) -> Any:
    """Read and parse a YAML file, with positions. Missing/unreadable files raise :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", source=str(p)) from None
    return load_text(text, str(p))


def fail(container: Any, key: Any, message: str, *, field: str | None = None) -> ConfigError:
    """Build a :class:`ConfigError` pointing at ``container[key]`` (raise the result)."""
    source = getattr(container, "source", "")
    line = container.line_of(key) if hasattr(container, "line_of") else None
    return ConfigError(message, source=source, line=line, field=field if field is not None else str(key))


def describe(value: Any) -> str:
    """Short, safe rendering of a user value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
