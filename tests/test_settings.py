"""Settings: typed values from INFEROPS_* and the INFEROPS_CONFIG file; every bad one is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferops.settings import SETTINGS, Settings, load_settings
from inferops.yamlfile import ConfigError


def test_defaults():
    s = load_settings({})
    assert s == Settings()
    assert all(origin == "default" for origin in s.origins.values())
    assert {x.name for x in SETTINGS} == set(s.origins)


def test_env_values_are_typed():
    s = load_settings({
        "INFEROPS_SERVE_PORT": "9000", "INFEROPS_ENABLED": "no", "INFEROPS_REQUIRED_TAGS": "team, feature",
        "INFEROPS_BAGGAGE_KEYS": "team=app.team,user=enduser.id", "INFEROPS_LOG_LEVEL": "DEBUG",
        "INFEROPS_SERVE_DOWNSTREAM": "http://tempo:4318/v1/traces/", "INFEROPS_ENFORCEMENT_POLL_SECONDS": "2.5",
        "PATH": "/usr/bin",  # not ours: ignored
    })
    assert s.serve_port == 9000 and s.enabled is False
    assert s.required_tags == ("team", "feature")
    assert s.baggage_keys == {"team": "app.team", "user": "enduser.id"}
    assert s.log_level == "debug"
    assert s.serve_downstream == "http://tempo:4318/v1/traces"
    assert s.enforcement_poll_seconds == 2.5
    assert s.origins["serve_port"] == "env INFEROPS_SERVE_PORT"


def test_file_values_and_env_wins(tmp_path):
    cfg = tmp_path / "inferops.yaml"
    cfg.write_text("serve_port: 5000\nrequired_tags: [team]\nbaggage_keys:\n  team: t\nlabel_value_cap: 50\n")
    s = load_settings({"INFEROPS_CONFIG": str(cfg), "INFEROPS_LABEL_VALUE_CAP": "70"})
    assert s.serve_port == 5000
    assert s.required_tags == ("team",)
    assert s.baggage_keys == {"team": "t"}
    assert s.label_value_cap == 70
    assert s.origins["serve_port"] == f"{cfg}:1"
    assert s.origins["label_value_cap"] == "env INFEROPS_LABEL_VALUE_CAP"


def test_otel_content_capture_variable_turns_capture_on():
    assert load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}).capture_content
    # An explicit inferops setting wins.
    assert not load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
                              "INFEROPS_CAPTURE_CONTENT": "false"}).capture_content


# (variable, value, what the message must contain: the given value and the expectation)
BAD_ENV = [
    ("INFEROPS_SERVE_PORT", "abc", ["'abc'", "expected an integer"]),
    ("INFEROPS_SERVE_PORT", "70000", ["'70000'", "expected an integer <= 65535"]),
    ("INFEROPS_LABEL_VALUE_CAP", "0", ["'0'", "expected an integer >= 1"]),
    ("INFEROPS_ENABLED", "maybe", ["'maybe'", "expected a boolean"]),
    ("INFEROPS_LOG_LEVEL", "verbose", ["'verbose'", "expected one of debug, info, warning, error"]),
    ("INFEROPS_ENFORCEMENT_POLL_SECONDS", "0.1", ["'0.1'", "expected a number >= 1.0"]),
    ("INFEROPS_ENFORCEMENT_POLL_SECONDS", "nan", ["'nan'", "expected a finite number"]),
    ("INFEROPS_SERVE_DOWNSTREAM", "tempo:4318", ["'tempo:4318'", "expected an http:// or https:// URL"]),
    ("INFEROPS_BAGGAGE_KEYS", "team", ["'team'", "expected key=value pairs"]),
    ("INFEROPS_SELF_HOSTED", "vllm:8000=vllm", ["'vllm:8000=vllm'", "expected an http:// or https:// URL"]),
    ("INFEROPS_REQUIRED_TAGS", "team,colour", ["'colour'", "expected values among team, project"]),
    ("INFEROPS_BAGGAGE_KEYS", "colour=c", ["'colour'", "expected keys among team, project"]),
]


@pytest.mark.parametrize("var,value,parts", BAD_ENV, ids=[f"{v}={x}" for v, x, _ in BAD_ENV])
def test_bad_env_value(var, value, parts):
    with pytest.raises(ConfigError) as info:
        load_settings({var: value})
    msg = str(info.value)
    assert var in msg, msg
    for part in parts:
        assert part in msg, msg


def test_unknown_variable_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError) as info:
        load_settings({"INFEROPS_SERVE_PROT": "4319"})
    msg = str(info.value)
    assert msg.startswith("INFEROPS_SERVE_PROT:")
    assert "unknown setting variable" in msg and "did you mean INFEROPS_SERVE_PORT?" in msg
    assert "docs/settings.md" in msg


def test_unknown_variable_never_echoes_its_value():
    with pytest.raises(ConfigError) as info:
        load_settings({"INFEROPS_SERVE_TOKN": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(info.value)
    assert "INFEROPS_SERVE_TOKEN" in str(info.value)


# (file text, line, field, given, expected)
BAD_FILES = [
    ("serve_prot: 4319\n", 1, "serve_prot", "'serve_prot'", "unknown setting"),
    ("log_level: info\nserve_port: abc\n", 2, "serve_port", "'abc'", "expected an integer"),
    ("serve_port: true\n", 1, "serve_port", "True", "expected an integer"),
    ("enabled: maybe\n", 1, "enabled", "'maybe'", "expected a boolean"),
    ("prices_file:\n", 1, "prices_file", "null", "expected a value (path)"),
    ("required_tags: {team: 1}\n", 1, "required_tags", "{'team': 1}", "expected a list"),
    ("baggage_keys:\n  team: [a, b]\n", 1, "baggage_keys", "{'team': ['a', 'b']}",
     "expected a mapping of names to plain values"),
    ("serve_port: 1\nserve_port: 2\n", 2, "serve_port", "'serve_port'", "duplicate key"),
    ("serve_port: [1\n", 2, "", "", "not valid YAML"),
    ("- serve_port\n", 1, "", "", "expected a mapping of setting names to values"),
    ("serve_downstream: ftp://x\n", 1, "serve_downstream", "'ftp://x'", "expected an http:// or https:// URL"),
]


@pytest.mark.parametrize("text,line,field,given,expected", BAD_FILES, ids=[b[0].strip() for b in BAD_FILES])
def test_bad_config_file(tmp_path, text, line, field, given, expected):
    cfg = tmp_path / "inferops.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings({"INFEROPS_CONFIG": str(cfg)})
    msg = str(info.value)
    assert msg.startswith(f"{cfg}:{line}:"), msg
    if field:
        assert f": {field}:" in msg, msg
    assert given in msg and expected in msg, msg


def test_missing_config_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="file not found") as info:
        load_settings({"INFEROPS_CONFIG": str(path)})
    assert str(path) in str(info.value)


def test_cli_reports_bad_settings_on_stderr(run_cli, monkeypatch):
    for var in [v for v in __import__("os").environ if v.startswith("INFEROPS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("INFEROPS_SERVE_PORT", "nope")
    status, out, err = run_cli("settings", "show")
    assert status != 0 and out == ""
    assert "INFEROPS_SERVE_PORT: expected an integer, got 'nope'" in err
    # Pricing commands read settings too and fail the same way.
    status, _, err = run_cli("prices", "lookup", "gpt-4o")
    assert status != 0 and "INFEROPS_SERVE_PORT" in err


def test_cli_settings_show_hides_tokens(run_cli, monkeypatch):
    for var in [v for v in __import__("os").environ if v.startswith("INFEROPS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("INFEROPS_SERVE_TOKEN", "very-secret")
    status, out, err = run_cli("settings", "show")
    assert status == 0, err
    assert "very-secret" not in out
    assert "serve_token = '***'  (env INFEROPS_SERVE_TOKEN)" in out


def test_settings_doc_lists_every_setting(repo_root: Path):
    text = (repo_root / "docs" / "settings.md").read_text()
    for s in SETTINGS:
        assert f"`{s.env}`" in text
