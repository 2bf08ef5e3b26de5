"""deploy/kubernetes/base: the Kustomize base parsed and every reference inside it checked.

No cluster and no kustomize binary are needed: the kustomization's resources and generator files
must exist, every object a manifest names (ConfigMaps from generators, the Deployment an HPA
scales, the Service the Collector sends to) must be in the base, selectors must match the pod
labels, named ports must exist, and the dashboards must be ConfigMaps labelled for the Grafana
sidecar. (Checked by hand with `kubectl kustomize` v5.5.0 as well.)
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

BASE = Path("deploy/kubernetes/base")


@pytest.fixture(scope="module")
def root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kustomization(root) -> dict:
    return yaml.safe_load((root / BASE / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(root, kustomization) -> list[dict]:
    out = []
    for rel in kustomization["resources"]:
        path = root / BASE / rel
        assert path.is_file(), f"kustomization resource {rel} is missing"
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _find(objects, kind: str, name: str) -> dict:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def _generators(kustomization) -> dict[str, dict]:
    return {g["name"]: g for g in kustomization["configMapGenerator"]}


def _generator_files(gen: dict) -> dict[str, str]:
    """ConfigMap key -> file (``key=path`` or ``path``)."""
    out = {}
    for item in gen["files"]:
        key, _, path = item.rpartition("=")
        out[key or Path(path).name] = path
    return out


def test_resources_and_generator_files_exist(root, kustomization, objects):
    assert kustomization["kind"] == "Kustomization"
    for gen in kustomization["configMapGenerator"]:
        for key, path in _generator_files(gen).items():
            assert (root / BASE / path).is_file(), f"{gen['name']}: {path} missing"
    kinds = {o["kind"] for o in objects}
    assert kinds >= {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "PodMonitor",
                     "PrometheusRule"}
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))


def test_prices_and_budgets_configmaps_are_valid_files(root, kustomization):
    from inferops.alerts.budgets import load_budgets
    from inferops.processors.overrides import load_overrides

    gens = _generators(kustomization)
    load_overrides(str(root / BASE / _generator_files(gens["inferops-prices"])["prices.yaml"]))
    load_budgets(root / BASE / _generator_files(gens["inferops-budgets"])["budgets.yaml"])


def _pod_volumes_reference_generated_configmaps(deploy: dict, gens: dict) -> dict[str, dict]:
    """Mount path -> the generator of the ConfigMap mounted there."""
    spec = deploy["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    out = {}
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, f"{deploy['metadata']['name']}: mount of unknown volume {m['name']}"
            vol = volumes[m["name"]]
            if "configMap" in vol:
                assert vol["configMap"]["name"] in gens, vol
                out[m["mountPath"]] = gens[vol["configMap"]["name"]]
    return out


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_ports_and_scale_target_match(objects):
    serve = _find(objects, "Deployment", "inferops-serve")
    pod_labels = serve["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(serve["spec"]["selector"]["matchLabels"], pod_labels)
    pod_ports = {p["name"]: p["containerPort"] for c in serve["spec"]["template"]["spec"]["containers"]
                 for p in c["ports"]}
    svc = _find(objects, "Service", "inferops-serve")
    assert svc["spec"].get("clusterIP") != "None" and _labels_match(svc["spec"]["selector"], pod_labels)
    for port in svc["spec"]["ports"]:
        assert port["targetPort"] in pod_ports
    pdb = _find(objects, "PodDisruptionBudget", "inferops-serve")
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    pm = _find(objects, "PodMonitor", "inferops-serve")
    assert _labels_match(pm["spec"]["selector"]["matchLabels"], pod_labels)
    for ep in pm["spec"]["podMetricsEndpoints"]:
        assert ep["port"] in pod_ports and ep["path"] == "/metrics"
    hpa = _find(objects, "HorizontalPodAutoscaler", "inferops-serve")
    target = hpa["spec"]["scaleTargetRef"]
    _find(objects, target["kind"], target["name"])
    assert hpa["spec"]["minReplicas"] >= 2 > pdb["spec"]["minAvailable"]
    env = {e["name"]: e.get("value") for c in serve["spec"]["template"]["spec"]["containers"] for e in c["env"]}
    assert int(env["INFEROPS_SERVE_PORT"]) == pod_ports["otlp-http"] and env["INFEROPS_SERVE_HOST"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert serve["spec"]["template"]["spec"]["containers"][0][probe]["httpGet"]["port"] in pod_ports


def test_serve_prices_file_comes_from_the_prices_configmap(objects, kustomization):
    serve = _find(objects, "Deployment", "inferops-serve")
    mounts = _pod_volumes_reference_generated_configmaps(serve, _generators(kustomization))
    env = {e["name"]: e.get("value") for e in serve["spec"]["template"]["spec"]["containers"][0]["env"]}
    path = Path(env["INFEROPS_PRICES_FILE"])
    gen = mounts[str(path.parent)]
    assert gen["name"] == "inferops-prices" and path.name in _generator_files(gen)


def test_collector_config_mount_and_its_exporter_reaches_the_serve_service(root, objects, kustomization):
    collector = _find(objects, "Deployment", "otel-collector")
    mounts = _pod_volumes_reference_generated_configmaps(collector, _generators(kustomization))
    [container] = collector["spec"]["template"]["spec"]["containers"]
    config_path = Path(next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--config=")))
    gen = mounts[str(config_path.parent)]
    files = _generator_files(gen)
    cfg = yaml.safe_load((root / BASE / files[config_path.name]).read_text())
    svc_collector = _find(objects, "Service", "otel-collector")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for p in svc_collector["spec"]["ports"]:
        assert p["targetPort"] in ports
    for proto, conf in cfg["receivers"]["otlp"]["protocols"].items():
        assert int(conf["endpoint"].rsplit(":", 1)[1]) in ports.values(), proto
    serve_svc = _find(objects, "Service", "inferops-serve")
    for name in cfg["service"]["pipelines"]["traces"]["exporters"]:
        exp = cfg["exporters"][name]
        assert name.split("/")[0] == "otlphttp"  # inferops serve speaks OTLP/HTTP only (no loadbalancing)
        url = urlsplit(exp["traces_endpoint"])
        assert url.hostname == serve_svc["metadata"]["name"]
        assert url.port in {p["port"] for p in serve_svc["spec"]["ports"]}
    env = {e["name"] for e in container["env"]}
    assert "INFEROPS_SERVE_TOKEN" in env  # the exporter's Authorization header reads it


def test_dashboards_are_configmaps_for_the_grafana_sidecar(root, kustomization):
    dashboards = sorted(p.name for p in (root / BASE / "dashboards").glob("*.json"))
    assert dashboards
    seen = []
    for gen in kustomization["configMapGenerator"]:
        files = _generator_files(gen)
        if any(f.startswith("dashboards/") for f in files.values()):
            assert gen["options"]["labels"] == {"grafana_dashboard": "1"}, gen["name"]
            for key, path in files.items():
                data = json.loads((root / BASE / path).read_text())
                assert data["uid"] and data["panels"], path
                seen.append(Path(path).name)
    assert sorted(seen) == dashboards  # every dashboard file is shipped, none twice


def test_prometheus_rule_is_the_generated_one_for_the_base_budgets(root, objects):
    rule = _find(objects, "PrometheusRule", "inferops-budgets")
    from inferops.alerts.budgets import load_budgets

    budgets = load_budgets(root / BASE / "budgets.yaml")
    groups = {g["name"] for g in rule["spec"]["groups"]}
    for b in budgets.budgets:
        assert any(b.name in g for g in groups), b.name
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "InferopsBudgetExhausted" in alerts


def test_scaling_notes_exist(root):
    text = (root / "docs/scaling.md").read_text()
    for word in ("Mimir", "Thanos", "Tempo", "replicas", "loadbalancing"):
        assert word in text, word
