"""The generated files committed under deploy/ are what the generators produce now.

Fails with the list of stale files; fix with `python -m inferops.demo.deploy_sync`.
"""

from __future__ import annotations

from pathlib import Path

from inferops.demo import deploy_sync


def test_committed_deploy_artifacts_are_current():
    root = deploy_sync.repo_root()
    files = deploy_sync.expected(root)
    assert Path("deploy/compose/generated/prometheus-rules.yaml") in files
    assert any(p.parent == deploy_sync.K8S_BASE / "dashboards" for p in files)
    problems = deploy_sync.stale(root, files)
    assert not problems, "stale generated files (run `python -m inferops.demo.deploy_sync`):\n" + "\n".join(problems)


def test_a_changed_file_is_reported(tmp_path: Path):
    rel = Path("deploy/compose/generated/alertmanager.yml")
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_text("route: {}\n")
    (tmp_path / "deploy/compose/generated/old-rules.yaml").write_text("groups: []\n")
    problems = deploy_sync.stale(tmp_path, {rel: "something else\n", Path("deploy/x.yaml"): "x"})
    assert problems == [f"{rel}: differs from what the generators produce", "deploy/x.yaml: missing",
                        "deploy/compose/generated/old-rules.yaml: no generator makes it any more"]
