"""Build the dashboards to Grafana JSON (the files committed under ``dashboards/generated/``).

``build_all()`` returns ``{file name: dashboard JSON dict}``; ``render()`` is the
exact text written, so the staleness test can compare bytes.

Five dashboards: the four API-cost dashboards of issue 5 (:data:`COST_DASHBOARDS`)
and "Self-hosted GPU cost" (:data:`GPU_DASHBOARD`, issue 7). The committed GPU
dashboard is ``gpu_dashboard(None)``; ``build_all(gpu_config)`` tailors it to a
``gpu:`` configuration (``inferops dashboards build --gpu FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from . import chargeback, drilldown, gpu, models, overview

if TYPE_CHECKING:
    from inferops.alerts.gpu_config import GPUConfig

#: File of the "Self-hosted GPU cost" dashboard.
GPU_DASHBOARD = "inferops-gpu.json"

#: File name -> builder, in the order users meet them.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "inferops-overview.json": overview.build,
    "inferops-chargeback.json": chargeback.build,
    "inferops-models.json": models.build,
    "inferops-drilldown.json": drilldown.build,
    GPU_DASHBOARD: gpu.gpu_dashboard,
}

#: The API-cost dashboards (issue 5): inferops' own metrics, team/project/feature/... filters,
#: exemplars and Tempo. Rules specific to them are tested on this set only.
COST_DASHBOARDS: frozenset[str] = frozenset(DASHBOARDS) - {GPU_DASHBOARD}

#: Where the committed JSON lives (package data, importable without installing).
GENERATED_DIR = Path(__file__).resolve().parent / "generated"


def to_dict(dashboard: Dashboard) -> dict:
    """grafanalib objects -> plain JSON-compatible dict."""
    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def build_all(gpu_config: GPUConfig | None = None) -> dict[str, dict]:
    """Every dashboard; ``gpu_config`` tailors the GPU dashboard (default: every panel)."""
    out = {}
    for name, builder in DASHBOARDS.items():
        board = gpu.gpu_dashboard(gpu_config) if name == GPU_DASHBOARD and gpu_config else builder()
        out[name] = to_dict(board)
    return out


def render(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write(out_dir: Path, gpu_config: GPUConfig | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in build_all(gpu_config).items():
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
