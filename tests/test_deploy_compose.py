"""deploy/compose: the compose file and every configuration it mounts, checked against each other.

No Docker here: the compose file is parsed, every bind-mounted file must exist, every host:port a
configuration names must be a service of the stack listening on that port, the Prometheus and
Alertmanager configurations go through the real promtool/amtool, and the Grafana provisioning,
Tempo and Collector configurations are checked for the keys of the pinned releases.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

COMPOSE_DIR = Path("deploy/compose")
#: Images must carry an exact version (no `latest`, no bare name).
PINNED = re.compile(r"^[\w./-]+:(v?\d+\.\d+\.\d+[\w.-]*)$")


@pytest.fixture(scope="module")
def root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose(root) -> dict:
    data = yaml.safe_load((root / COMPOSE_DIR / "docker-compose.yaml").read_text())
    assert set(data["services"]) >= {"otel-collector", "inferops-serve", "demo", "prometheus", "alertmanager",
                                      "tempo", "grafana", "dcgm-exporter"}
    return data


def _mounts(root: Path, service: dict) -> dict[str, Path | str]:
    """Container path -> host path (bind mounts, resolved) or volume name."""
    out: dict[str, Path | str] = {}
    for vol in service.get("volumes", []):
        src, target = vol.split(":")[:2]
        out[target] = (root / COMPOSE_DIR / src).resolve() if src.startswith(".") else src
    return out


def _listening(service: dict) -> set[int]:
    ports = {int(str(p).split(":")[-1]) for p in service.get("ports", [])}
    ports |= {int(p) for p in service.get("expose", [])}
    return ports


def _flag(args: list[str], name: str) -> str:
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name:
            return args[i + 1]
    raise AssertionError(f"{name} not in {args}")


def _assert_service_port(compose: dict, url_or_target: str, where: str) -> tuple[str, int]:
    hostport = urlsplit(url_or_target).netloc if "://" in url_or_target else url_or_target
    host, port = hostport.rsplit(":", 1)
    assert host in compose["services"], f"{where}: {host} is not a compose service"
    assert int(port) in _listening(compose["services"][host]), f"{where}: {host} does not listen on {port}"
    return host, int(port)


def test_images_are_pinned_and_the_build_exists(root, compose):
    for name, svc in compose["services"].items():
        assert PINNED.match(svc["image"]), f"{name}: image {svc['image']!r} is not pinned to a version"
        if "build" in svc:
            assert (root / COMPOSE_DIR / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    collector_release = re.search(r"v(\d+\.\d+\.\d+)", (root / "deploy/collector/README.md").read_text()).group(1)
    assert compose["services"]["otel-collector"]["image"].endswith(":" + collector_release)
    assert compose["services"]["dcgm-exporter"]["profiles"] == ["gpu"]


def test_dockerfile_copies_existing_folders_and_installs_the_demo_extra(root):
    text = (root / "deploy/docker/Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert (root / src).exists(), src
    assert "'.[demo]'" in text
    pyproject = (root / "pyproject.toml").read_text()
    assert re.search(r"^demo = \[", pyproject, re.M)
    ignore = (root / "deploy/docker/Dockerfile.dockerignore").read_text().split()
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert f"!{src.rstrip('/')}" in ignore or f"!{src.rstrip('/')}/**" in ignore, src


def test_every_mounted_file_exists_and_every_dependency_is_a_service(root, compose):
    declared = set(compose.get("volumes", {}))
    for name, svc in compose["services"].items():
        for target, src in _mounts(root, svc).items():
            if isinstance(src, Path):
                assert src.exists(), f"{name}: mounts missing {src} at {target}"
            else:
                assert src in declared, f"{name}: volume {src} not declared"
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else list(deps):
            assert dep in compose["services"], f"{name} depends on unknown {dep}"


def test_config_flags_point_at_mounted_files(root, compose):
    s = compose["services"]
    for name, flag in (("prometheus", "--config.file"), ("alertmanager", "--config.file"),
                       ("tempo", "-config.file"), ("otel-collector", "--config")):
        path = _flag(s[name]["command"], flag)
        assert isinstance(_mounts(root, s[name]).get(path), Path), f"{name}: {path} is not a mounted file"
    assert "--enable-feature=exemplar-storage" in s["prometheus"]["command"]


def _prometheus_config(root, compose) -> dict:
    return yaml.safe_load((root / COMPOSE_DIR / "prometheus.yml").read_text())


def test_promtool_checks_the_prometheus_config_with_its_mounted_rules(root, compose, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus; .ci/run installs it)"
    cfg = _prometheus_config(root, compose)
    mounts = _mounts(root, compose["services"]["prometheus"])
    host_rules = [mounts[p] for p in cfg["rule_files"]]
    assert all(isinstance(p, Path) and p.exists() for p in host_rules)
    cfg["rule_files"] = [str(p) for p in host_rules]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"SUCCESS: \d+ rules found", proc.stdout + proc.stderr)


def test_prometheus_scrapes_and_alerts_services_of_the_stack(root, compose):
    cfg = _prometheus_config(root, compose)
    jobs = {}
    for job in cfg["scrape_configs"]:
        for sc in job["static_configs"]:
            for target in sc["targets"]:
                jobs[job["job_name"]] = _assert_service_port(compose, target, f"scrape job {job['job_name']}")
    assert jobs["inferops-serve"] == ("inferops-serve", 4319) and jobs["inferops-demo"][0] == "demo"
    [am] = cfg["alerting"]["alertmanagers"]
    _assert_service_port(compose, am["static_configs"][0]["targets"][0], "alerting")
    # The demo serves its metrics where Prometheus scrapes it.
    demo = compose["services"]["demo"]["command"]
    assert int(_flag(demo, "--metrics-port")) == jobs["inferops-demo"][1]
    assert _flag(demo, "--bind") == "0.0.0.0" and "--no-prometheus" in demo


def test_amtool_checks_the_alertmanager_config_and_its_webhooks_reach_the_demo(root, compose):
    amtool = shutil.which("amtool")
    assert amtool, "amtool is required (Debian package prometheus-alertmanager; .ci/run installs it)"
    path = root / COMPOSE_DIR / "generated/alertmanager.yml"
    proc = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = yaml.safe_load(path.read_text())
    urls = [w["url"] for r in cfg["receivers"] for w in r.get("webhook_configs", [])]
    assert urls
    for url in urls:
        host, port = _assert_service_port(compose, url, "alertmanager webhook")
        assert host == "demo" and port == int(_flag(compose["services"]["demo"]["command"], "--webhook-port"))


def test_traces_flow_demo_to_collector_to_serve_to_tempo(root, compose):
    s = compose["services"]
    _assert_service_port(compose, _flag(s["demo"]["command"], "--otlp-endpoint"), "demo --otlp-endpoint")
    collector = yaml.safe_load((root / "deploy/collector/otelcol-config.yaml").read_text())
    for name in collector["service"]["pipelines"]["traces"]["exporters"]:
        host, port = _assert_service_port(compose, collector["exporters"][name]["traces_endpoint"], name)
        assert host == "inferops-serve"
        assert port == int(s["inferops-serve"]["environment"]["INFEROPS_SERVE_PORT"])
    for proto, conf in collector["receivers"]["otlp"]["protocols"].items():
        assert int(conf["endpoint"].rsplit(":", 1)[1]) in _listening(s["otel-collector"]), proto
    # The bearer token the Collector sends is the one inferops serve expects.
    assert "${env:INFEROPS_SERVE_TOKEN}" in str(collector["exporters"])
    assert s["otel-collector"]["environment"]["INFEROPS_SERVE_TOKEN"] == \
        s["inferops-serve"]["environment"]["INFEROPS_SERVE_TOKEN"]
    _assert_service_port(compose, s["inferops-serve"]["environment"]["INFEROPS_SERVE_DOWNSTREAM"], "downstream")
    prices = s["inferops-serve"]["environment"]["INFEROPS_PRICES_FILE"]
    assert isinstance(_mounts(root, s["inferops-serve"]).get(prices), Path)


#: Top-level keys of a Tempo 2.6 configuration file (docs: configuration reference).
TEMPO_KEYS = {"target", "http_api_prefix", "server", "distributor", "ingester", "metrics_generator", "querier",
              "query_frontend", "compactor", "storage", "overrides", "memberlist", "usage_report",
              "stream_over_http_enabled", "multitenancy_enabled", "cache"}


def test_tempo_config_keys_and_references(root, compose):
    cfg = yaml.safe_load((root / COMPOSE_DIR / "tempo.yaml").read_text())
    assert set(cfg) <= TEMPO_KEYS
    assert cfg["storage"]["trace"]["backend"] == "local"
    tempo = compose["services"]["tempo"]
    mounts = _mounts(root, tempo)
    for path in (cfg["storage"]["trace"]["wal"]["path"], cfg["storage"]["trace"]["local"]["path"],
                 cfg["metrics_generator"]["storage"]["path"]):
        assert any(path.startswith(t + "/") and not isinstance(src, Path) for t, src in mounts.items()), path
    assert cfg["server"]["http_listen_port"] in _listening(tempo)
    for proto in cfg["distributor"]["receivers"]["otlp"]["protocols"].values():
        assert int(proto["endpoint"].rsplit(":", 1)[1]) in _listening(tempo)
    for rw in cfg["metrics_generator"]["storage"]["remote_write"]:
        assert _assert_service_port(compose, rw["url"], "tempo remote_write")[0] == "prometheus"
    assert "--web.enable-remote-write-receiver" in compose["services"]["prometheus"]["command"]


#: Keys Grafana's provisioning accepts (docs: administration/provisioning).
DATASOURCE_KEYS = {"name", "type", "uid", "access", "url", "orgId", "isDefault", "jsonData", "secureJsonData",
                   "basicAuth", "basicAuthUser", "user", "database", "withCredentials", "version", "editable"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
                 "allowUiUpdates", "options"}


def test_grafana_provisioning_schema_and_references(root, compose):
    grafana = compose["services"]["grafana"]
    mounts = _mounts(root, grafana)
    prov = mounts["/etc/grafana/provisioning"]
    assert isinstance(prov, Path) and prov == (root / "deploy/grafana/provisioning").resolve()
    ds = yaml.safe_load((prov / "datasources/inferops.yaml").read_text())
    assert ds["apiVersion"] == 1
    uids = {d["uid"] for d in ds["datasources"]}
    for d in ds["datasources"]:
        assert set(d) <= DATASOURCE_KEYS, set(d) - DATASOURCE_KEYS
        assert d["type"] in ("prometheus", "tempo", "alertmanager") and d["access"] == "proxy"
        _assert_service_port(compose, d["url"], f"datasource {d['name']}")
    by_type = {d["type"]: d for d in ds["datasources"]}
    for dest in by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]:
        assert dest["datasourceUid"] in uids
    tempo = by_type["tempo"]["jsonData"]
    assert tempo["tracesToMetrics"]["datasourceUid"] in uids and tempo["serviceMap"]["datasourceUid"] in uids
    prov_dash = yaml.safe_load((prov / "dashboards/inferops.yaml").read_text())
    [provider] = prov_dash["providers"]
    assert set(provider) <= PROVIDER_KEYS and provider["type"] == "file"
    dash_dir = mounts[provider["options"]["path"]]
    assert isinstance(dash_dir, Path) and sorted(dash_dir.glob("*.json")), dash_dir


def test_readme_has_the_one_command_and_what_to_open(root, compose):
    text = (root / COMPOSE_DIR / "README.md").read_text()
    assert "docker compose -f deploy/compose/docker-compose.yaml up -d --build" in text
    for port in ("3000", "9090", "9093", "3200", "4317", "4318", "4319", "9464"):
        assert f"localhost:{port}" in text, port
