"""Build the dashboards to Grafana JSON (the files committed under ``dashboards/generated/``).

``build_all()`` returns ``{file name: dashboard JSON dict}``; ``render()`` is the
exact text written, so the staleness test can compare bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from . import chargeback, drilldown, models, overview

#: File name -> builder, in the order users meet them.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "inferops-overview.json": overview.build,
    "inferops-chargeback.json": chargeback.build,
    "inferops-models.json": models.build,
    "inferops-drilldown.json": drilldown.build,
}

#: Where the committed JSON lives (package data, importable without installing).
GENERATED_DIR = Path(__file__).resolve().parent / "generated"


def to_dict(dashboard: Dashboard) -> dict:
    """grafanalib objects -> plain JSON-compatible dict."""
    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def build_all() -> dict[str, dict]:
    return {name: to_dict(builder()) for name, builder in DASHBOARDS.items()}


def render(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in build_all().items():
        path = out_dir / name
        path.write_text(render(data))
        written.append(path)
    return written


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def iter_targets(dashboard: dict) -> Iterator[tuple[dict, dict]]:
    """(panel, target) for every query of every panel."""
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target
