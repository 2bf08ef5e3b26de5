"""Regenerate (or check) the generated files committed under ``deploy/``.

The compose stack mounts, and the Kustomize base embeds, files that come from
inferops' generators; they are committed so ``docker compose up`` and
``kubectl apply -k`` need no Python. This module is their single recipe:

* ``deploy/compose/generated/{prometheus-rules.yaml,alertmanager.yml}``:
  ``inferops alerts build --budgets deploy/compose/budgets.yaml --gpu deploy/compose/gpu.yaml
  --eval-interval 15s``
* ``deploy/kubernetes/base/prometheusrule.yaml``: ``inferops alerts build --budgets
  deploy/kubernetes/base/budgets.yaml`` (the PrometheusRule resource)
* ``deploy/kubernetes/base/dashboards/*.json``: ``inferops dashboards build``
* ``deploy/kubernetes/base/otelcol-config.yaml``: a copy of ``deploy/collector/otelcol-config.yaml``
  (Kustomize only reads files inside the base)

Run from anywhere: ``python -m inferops.demo.deploy_sync`` (writes) or ``--check`` (exit 1 and the
list of stale files); ``tests/test_deploy_generated.py`` runs the check.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

COMPOSE_GENERATED = Path("deploy/compose/generated")
K8S_BASE = Path("deploy/kubernetes/base")
#: Of the files `alerts build` writes, those the compose stack mounts.
COMPOSE_FILES = ("prometheus-rules.yaml", "alertmanager.yml")
COMPOSE_ARGS = ("--budgets", "deploy/compose/budgets.yaml", "--gpu", "deploy/compose/gpu.yaml",
                "--eval-interval", "15s")
K8S_ARGS = ("--budgets", "deploy/kubernetes/base/budgets.yaml")
_MAIN = "import sys; from inferops.cli import main; sys.exit(main(sys.argv[1:]))"


def repo_root() -> Path:
    """The source tree this package runs from (an editable install; deploy/ is not packaged)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    raise SystemExit("deploy_sync: run from a source checkout (deploy/ not found above this module)")


def _inferops(root: Path, *args: str) -> None:
    """Run the CLI from the repository root, so the generated headers name repo-relative paths."""
    proc = subprocess.run([sys.executable, "-c", _MAIN, *args], cwd=root, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"inferops {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")


def expected(root: Path) -> dict[Path, str]:
    """Repo-relative path -> the text the generators produce now."""
    out: dict[Path, str] = {}
    with tempfile.TemporaryDirectory(prefix="inferops-deploy-sync-") as tmp:
        t = Path(tmp)
        _inferops(root, "alerts", "build", *COMPOSE_ARGS, "--out", str(t / "compose"))
        for name in COMPOSE_FILES:
            out[COMPOSE_GENERATED / name] = (t / "compose" / name).read_text(encoding="utf-8")
        _inferops(root, "alerts", "build", *K8S_ARGS, "--out", str(t / "k8s"))
        out[K8S_BASE / "prometheusrule.yaml"] = (t / "k8s" / "prometheusrule.yaml").read_text(encoding="utf-8")
        _inferops(root, "dashboards", "build", "--out", str(t / "dashboards"))
        for path in sorted((t / "dashboards").glob("*.json")):
            out[K8S_BASE / "dashboards" / path.name] = path.read_text(encoding="utf-8")
    out[K8S_BASE / "otelcol-config.yaml"] = (root / "deploy/collector/otelcol-config.yaml").read_text(encoding="utf-8")
    return out


def stale(root: Path, files: dict[Path, str]) -> list[str]:
    """Files that differ from ``files``, are missing, or are generated leftovers no generator makes now."""
    problems = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            problems.append(f"{rel}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs from what the generators produce")
    for folder, pattern in ((K8S_BASE / "dashboards", "*.json"), (COMPOSE_GENERATED, "*")):
        for path in sorted((root / folder).glob(pattern)):
            if path.relative_to(root) not in files:
                problems.append(f"{path.relative_to(root)}: no generator makes it any more")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inferops.demo.deploy_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 listing stale files")
    args = parser.parse_args(argv)
    root = repo_root()
    files = expected(root)
    problems = stale(root, files)
    if args.check:
        for p in problems:
            print(p)
        return 1 if problems else 0
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for p in problems:
        if p.endswith("no generator makes it any more"):
            (root / p.split(":", 1)[0]).unlink()
    print(f"wrote {len(files)} generated files under deploy/" + (f"; fixed: {len(problems)}" if problems else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
