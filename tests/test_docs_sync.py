"""Generated reference pages must match the code they are generated from."""

from inferops.names_docs import metrics_docs
from inferops.settings import settings_docs


def test_metrics_md_in_sync(repo_root):
    committed = (repo_root / "docs" / "metrics.md").read_text()
    assert committed == metrics_docs(), "docs/metrics.md is stale: run `inferops names docs > docs/metrics.md`"


def test_settings_md_in_sync(repo_root):
    committed = (repo_root / "docs" / "settings.md").read_text()
    assert committed == settings_docs(), "docs/settings.md is stale: run `inferops settings docs > docs/settings.md`"
