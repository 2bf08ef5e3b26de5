"""One typed settings object for every part of inferops.

Settings come from, in increasing precedence: the defaults below, an optional
YAML file named by ``INFEROPS_CONFIG`` (top-level keys are the setting names
in the first column of ``docs/settings.md``), and ``INFEROPS_*`` environment
variables. Every setting is declared once in ``SETTINGS``; the documentation
table is generated from it (``inferops settings docs``) and a test keeps it in
sync. An invalid value fails at start with the variable (or ``file:line``),
what was given and what was expected.

Add a setting by appending a :class:`Setting` to ``SETTINGS`` and a field of
the same name to :class:`Settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from .yamlfile import ConfigError, LineDict, describe, load_file

ENV_PREFIX = "INFEROPS_"
CONFIG_ENV = "INFEROPS_CONFIG"


# ---------------------------------------------------------------------------
# Value parsers: each takes the raw value (str from env, any from YAML) and
# returns the typed value or raises ValueError("expected ...").
# ---------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected a boolean (true/false, 1/0, yes/no, on/off)")


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer")
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError("expected an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"expected an integer <= {maximum}")
        return value

    return parse


def parse_float(minimum: float | None = None) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        if minimum is not None and value < minimum:
            raise ValueError(f"expected a number >= {minimum}")
        return value

    return parse


def parse_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError("expected a string")
    return str(raw).strip()


def parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def parse_list(raw: Any) -> tuple[str, ...]:
    """Comma-separated in env, a YAML list or comma string in the file."""
    if isinstance(raw, (list, tuple)):
        if any(isinstance(x, (Mapping, list, tuple)) or x is None for x in raw):
            raise ValueError("expected a list of plain values")
        items = [str(x).strip() for x in raw]
    elif isinstance(raw, str):
        items = [x.strip() for x in raw.split(",")]
    else:
        raise ValueError("expected a list or a comma-separated string")
    return tuple(x for x in items if x)


def parse_mapping(raw: Any) -> dict[str, str]:
    """``k=v,k2=v2`` in env, a YAML mapping in the file."""
    if isinstance(raw, Mapping):
        if any(isinstance(v, (Mapping, list, tuple)) or v is None for v in raw.values()):
            raise ValueError("expected a mapping of names to plain values")
        return {str(k).strip(): str(v).strip() for k, v in raw.items()}
    if isinstance(raw, str):
        out: dict[str, str] = {}
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ValueError("expected key=value pairs separated by commas")
            k, v = part.split("=", 1)
            if not k.strip() or not v.strip():
                raise ValueError("expected key=value pairs with non-empty keys and values")
            out[k.strip()] = v.strip()
        return out
    raise ValueError("expected a mapping or key=value pairs separated by commas")


def parse_path(raw: Any) -> str:
    text = parse_str(raw)
    return str(Path(text).expanduser()) if text else ""


def parse_url(raw: Any) -> str:
    text = parse_str(raw)
    if text and not (text.startswith("http://") or text.startswith("https://")):
        raise ValueError("expected an http:// or https:// URL")
    return text.rstrip("/")


def parse_url_list(raw: Any) -> tuple[str, ...]:
    return tuple(parse_url(u) for u in parse_list(raw))


def parse_self_hosted(raw: Any) -> dict[str, str]:
    """``base_url=provider_name`` pairs: calls under these URLs are self-hosted."""
    mapping = parse_mapping(raw)
    for url in mapping:
        parse_url(url)
    return {k.rstrip("/"): v for k, v in mapping.items()}


@dataclass(frozen=True)
class Setting:
    """Declaration of one setting."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    type_doc: str
    description: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


DEFAULT_BAGGAGE_KEYS = {
    "team": "team",
    "project": "project",
    "feature": "feature",
    "user": "user",
    "environment": "environment",
}

SETTINGS: tuple[Setting, ...] = (
    # Pricing
    Setting("prices_file", parse_path, "", "path",
            "Price overrides YAML (custom models, aliases, discounts, effective dates, self-hosted prices). "
            "Validate with `inferops prices validate FILE`."),
    Setting("catalog_file", parse_path, "", "path",
            "Use this catalog JSON (made by `inferops prices update`) instead of the built-in one."),
    # Instrumentation
    Setting("enabled", parse_bool, True, "bool",
            "Master switch for the instrumentation (false: instrument() does nothing)."),
    Setting("capture_content", parse_bool, False, "bool",
            "Record prompt and completion text on spans. Off by default; "
            "`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` also turns it on."),
    Setting("strip_baggage", parse_bool, True, "bool",
            "Remove the W3C `baggage` header from requests to LLM providers, so attribution "
            "(team, user) is not sent to them."),
    Setting("baggage_keys", parse_mapping, DEFAULT_BAGGAGE_KEYS, "mapping",
            "Which baggage key fills which attribution field (field=baggage_key,...). "
            "Fields: team, project, feature, user, environment."),
    Setting("resource_keys", parse_mapping, {"team": "team", "project": "project",
                                             "environment": "deployment.environment.name"},
            "mapping",
            "Resource attributes that fill attribution fields not set per call (field=resource_key,...)."),
    Setting("required_tags", parse_list, (), "list",
            "Attribution fields every call must carry (e.g. team,feature); a call without one "
            "is labelled `unattributed` and counted in inferops_unattributed_requests_total."),
    Setting("label_value_cap", parse_int(minimum=1, maximum=100_000), 200, "int",
            "Maximum distinct values per metric label; further values become `__overflow__` "
            "and are counted in inferops_label_overflows_total."),
    Setting("user_label", parse_bool, False, "bool",
            "Add the `user` label to inferops metrics (off: user ids stay on spans only)."),
    Setting("provider_endpoints", parse_self_hosted, {}, "mapping",
            "Extra API base URLs and the provider whose wire format they speak: base_url=provider,... "
            "(e.g. an LLM gateway http://llm-gw.internal/openai/v1=openai). Well-known provider hosts "
            "need no entry."),
    Setting("self_hosted", parse_self_hosted, {}, "mapping",
            "Self-hosted OpenAI-compatible servers: base_url=provider_name,... "
            "(e.g. http://vllm:8000/v1=vllm). Calls under these URLs are instrumented and priced "
            "with self-hosted prices from the overrides."),
    Setting("stream_usage_injection", parse_bool, True, "bool",
            "Add `stream_options.include_usage` to OpenAI-style streaming chat requests that lack it, "
            "and hide the extra usage chunk from the caller."),
    Setting("stream_usage_injection_disabled_hosts", parse_list, (), "list",
            "Hosts (host or host:port) whose servers reject `stream_options`: no injection there."),
    Setting("tiktoken_cache_dir", parse_path, "", "path",
            "Folder with tiktoken encodings for estimating usage offline (sets TIKTOKEN_CACHE_DIR)."),
    Setting("metrics_batch_interval_seconds", parse_float(minimum=0.0), 0.5, "float",
            "The instrumentation records call metrics in batches off the request path, flushed this often "
            "(seconds), before every inferops /metrics scrape, at 1000 buffered calls and on exit. "
            "Third-party metric readers see a call at most this late. 0: record each call on its own path."),
    # Budget enforcement
    Setting("enforcement_alertmanager_url", parse_url, "", "url",
            "Alertmanager base URL polled for active InferopsBudgetExhausted alerts. "
            "Empty: enforcement off."),
    Setting("enforcement_budgets_file", parse_path, "", "path",
            "budgets.yaml whose enforcement actions apply when its budgets are exhausted."),
    Setting("enforcement_poll_seconds", parse_float(minimum=1.0), 30.0, "float",
            "How often enforcement polls Alertmanager (seconds); also the TTL of the known state."),
    Setting("routing_file", parse_path, "", "path",
            "Routing policy YAML (model routing rules). Empty: routing off."),
    # OTLP service (`inferops serve`)
    Setting("serve_host", parse_str, "127.0.0.1", "str",
            "Address `inferops serve` binds (127.0.0.1 unless told otherwise)."),
    Setting("serve_port", parse_int(minimum=0, maximum=65535), 4319, "int",
            "Port of `inferops serve` (OTLP/HTTP /v1/traces, /metrics, /healthz, /readyz)."),
    Setting("serve_downstream", parse_url, "", "url",
            "OTLP/HTTP traces endpoint enriched spans are forwarded to (e.g. http://tempo:4318/v1/traces). "
            "Empty: spans are priced and measured but not forwarded."),
    Setting("serve_token", parse_str, "", "str",
            "Bearer token senders must present. Empty: no authentication."),
    Setting("serve_max_body_bytes", parse_int(minimum=1024), 16 * 1024 * 1024, "int",
            "Largest accepted request body (after decompression), in bytes."),
    Setting("serve_queue_bytes", parse_int(minimum=1024), 64 * 1024 * 1024, "int",
            "Bound of the forwarding queue in bytes; when full, senders get 503 with Retry-After."),
    Setting("serve_semconv_metrics", parse_bool, False, "bool",
            "Let `inferops serve` also emit the GenAI semconv histograms (gen_ai.client.token.usage, "
            ".operation.duration, .time_to_first_chunk) for the spans it prices. Off by default: the apps' "
            "own GenAI instrumentations (OpenLLMetry, OpenLIT, ...) already emit them, and emitting them "
            "twice would double them in dashboards. The inferops_* metrics are always emitted."),
    Setting("serve_fast_path", parse_bool, True, "bool",
            "Let `inferops serve` price protobuf requests with its compiled fast path (the C extension "
            "built by `pip install`; same results as the Python path, ~10x the throughput). Off, or when "
            "the extension is missing or serve_semconv_metrics is on, every request takes the Python path."),
    Setting("serve_reprice", parse_bool, False, "bool",
            "Replace a cost already on a span (from another tool) with inferops' own figure."),
    Setting("serve_batch_bytes", parse_int(minimum=1024), 4 * 1024 * 1024, "int",
            "Largest batch `inferops serve` sends downstream in one export request, in bytes "
            "(queued requests are merged up to this size)."),
    Setting("serve_retry_max_seconds", parse_float(minimum=1.0), 300.0, "float",
            "How long `inferops serve` keeps retrying one batch on retryable downstream errors before it "
            "drops it (counted in inferops_serve_spans_dropped_total)."),
    Setting("serve_forward_timeout_seconds", parse_float(minimum=0.1), 10.0, "float",
            "Timeout of one downstream export request (seconds)."),
    Setting("serve_shutdown_seconds", parse_float(minimum=0.0), 20.0, "float",
            "On SIGTERM, how long `inferops serve` keeps flushing its queue downstream before it exits."),
    Setting("serve_ready_high_water", parse_float(minimum=0.0), 0.8, "float",
            "Queue fill fraction (0-1) above which /readyz answers 503."),
    Setting("log_level", parse_choice("debug", "info", "warning", "error"), "info", "str",
            "Log level of inferops' own loggers."),
)


@dataclass(frozen=True)
class Settings:
    """Typed settings. Build with :func:`load_settings`; defaults are those of ``SETTINGS``."""

    prices_file: str = ""
    catalog_file: str = ""
    enabled: bool = True
    capture_content: bool = False
    strip_baggage: bool = True
    baggage_keys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BAGGAGE_KEYS))
    resource_keys: dict[str, str] = field(default_factory=lambda: {
        "team": "team", "project": "project", "environment": "deployment.environment.name"})
    required_tags: tuple[str, ...] = ()
    label_value_cap: int = 200
    user_label: bool = False
    provider_endpoints: dict[str, str] = field(default_factory=dict)
    self_hosted: dict[str, str] = field(default_factory=dict)
    stream_usage_injection: bool = True
    stream_usage_injection_disabled_hosts: tuple[str, ...] = ()
    tiktoken_cache_dir: str = ""
    metrics_batch_interval_seconds: float = 0.5
    enforcement_alertmanager_url: str = ""
    enforcement_budgets_file: str = ""
    enforcement_poll_seconds: float = 30.0
    routing_file: str = ""
    serve_host: str = "127.0.0.1"
    serve_port: int = 4319
    serve_downstream: str = ""
    serve_token: str = ""
    serve_max_body_bytes: int = 16 * 1024 * 1024
    serve_queue_bytes: int = 64 * 1024 * 1024
    serve_semconv_metrics: bool = False
    serve_fast_path: bool = True
    serve_reprice: bool = False
    serve_batch_bytes: int = 4 * 1024 * 1024
    serve_retry_max_seconds: float = 300.0
    serve_forward_timeout_seconds: float = 10.0
    serve_shutdown_seconds: float = 20.0
    serve_ready_high_water: float = 0.8
    log_level: str = "info"
    #: Where each value came from ("default", "env INFEROPS_X", "file:line"), for `inferops settings show`.
    origins: dict[str, str] = field(default_factory=dict, compare=False)


_ATTRIBUTION_FIELDS = ("team", "project", "feature", "user", "environment")


def _check_cross_field(values: dict[str, Any], origins: dict[str, str]) -> None:
    for name in ("baggage_keys", "resource_keys"):
        bad = sorted(set(values[name]) - set(_ATTRIBUTION_FIELDS))
        if bad:
            raise ConfigError(
                f"unknown attribution field {bad[0]!r}; expected keys among {', '.join(_ATTRIBUTION_FIELDS)}",
                source=origins.get(name, ""), field=name)
    bad = sorted(set(values["required_tags"]) - set(_ATTRIBUTION_FIELDS))
    if bad:
        raise ConfigError(
            f"unknown attribution field {bad[0]!r}; expected values among {', '.join(_ATTRIBUTION_FIELDS)}",
            source=origins.get("required_tags", ""), field="required_tags")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read defaults, then ``INFEROPS_CONFIG`` YAML, then ``INFEROPS_*`` variables.

    Raises :class:`ConfigError` naming the variable or ``file:line``.
    """
    env = os.environ if environ is None else environ
    by_name = {s.name: s for s in SETTINGS}
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    origins: dict[str, str] = {s.name: "default" for s in SETTINGS}

    config_path = env.get(CONFIG_ENV, "").strip()
    if config_path:
        data = load_file(config_path)
        if data is None:
            data = LineDict()
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping of setting names to values at the top level",
                              source=config_path, line=1)
        for key, raw in data.items():
            line = data.line_of(key) if isinstance(data, LineDict) else None
            setting = by_name.get(str(key))
            if setting is None:
                raise ConfigError(
                    f"unknown setting {key!r}; expected one of: {', '.join(sorted(by_name))}",
                    source=config_path, line=line, field=str(key))
            if raw is None:
                raise ConfigError(f"expected a value ({setting.type_doc}), got nothing (null); "
                                  "remove the key to keep the default",
                                  source=config_path, line=line, field=setting.name)
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{exc}, got {describe(raw)}", source=config_path, line=line,
                                  field=setting.name) from None
            origins[setting.name] = f"{config_path}:{line}"

    known_envs = {s.env: s for s in SETTINGS}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        setting = known_envs.get(var)
        if setting is None:
            import difflib

            close = difflib.get_close_matches(var, list(known_envs) + [CONFIG_ENV], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            # The value is not echoed: a misspelt INFEROPS_SERVE_TOKEN would leak its secret.
            raise ConfigError(f"unknown setting variable {var}{hint}; expected one of the variables "
                              "in docs/settings.md", field=var)
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{exc}, got {describe(raw)}", field=var) from None
        origins[setting.name] = f"env {var}"

    if env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower() in _TRUE:
        if origins["capture_content"] == "default":
            values["capture_content"] = True
            origins["capture_content"] = "env OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

    _check_cross_field(values, origins)
    return Settings(**values, origins=origins)


def settings_docs() -> str:
    """The settings reference table (docs/settings.md)."""
    lines = [
        "# Settings",
        "",
        "<!-- generated by `inferops settings docs`; tests/test_settings.py keeps it in sync -->",
        "",
        "Every setting can be given as an environment variable or as a top-level key of the YAML",
        f"file named by `{CONFIG_ENV}`. Environment variables win over the file. Invalid values stop",
        "the program at start with the variable (or file:line), the value given and what was expected.",
        "",
        "List values are comma-separated in variables (`a,b`) and YAML lists in the file; mapping",
        "values are `key=value,key2=value2` in variables and YAML mappings in the file.",
        "",
        "| setting (YAML key) | variable | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default
        if isinstance(default, dict):
            default = ",".join(f"{k}={v}" for k, v in default.items()) or "(empty)"
        elif isinstance(default, tuple):
            default = ",".join(default) or "(empty)"
        elif default == "":
            default = "(empty)"
        elif isinstance(default, bool):
            default = str(default).lower()
        lines.append(f"| `{s.name}` | `{s.env}` | {s.type_doc} | `{default}` | {s.description} |")
    lines.append("")
    return "\n".join(lines)


def _check_declarations() -> None:
    declared = {s.name for s in SETTINGS}
    fielded = {f.name for f in fields(Settings)} - {"origins"}
    if declared != fielded:  # pragma: no cover - caught by the test suite at once
        raise RuntimeError(f"SETTINGS and Settings disagree: {sorted(declared ^ fielded)}")


_check_declarations()
