"""A real Prometheus 2.42 with controlled history, for the report/reconcile/advise tests.

History is written as an OpenMetrics file with timestamped samples and turned
into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` in the
test's data dir before Prometheus starts (``inferops.testing.PrometheusServer``,
``backfill=``) (works with 2.42; the hidden flag
``--max-block-duration=744h`` makes a few large blocks instead of one per 2 h,
which cuts the setup from ~20 s to well under a second). Prometheus then
serves it on 127.0.0.1 at a free port; retention is set to 100y so the
back-dated blocks are kept. Also holds this file's own smoke test of the
mechanism.
"""

from __future__ import annotations

import calendar
import shutil

import pytest

from inferops.testing import PrometheusServer

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(families: dict[str, list[tuple[dict[str, str], list[tuple[float, float]]]]]) -> str:
    """``{counter name without _total: [(labels, [(unix ts, value), ...]), ...]}`` -> OpenMetrics text."""
    lines = []
    for family, series in families.items():
        lines.append(f"# TYPE {family} counter")
        for labels, samples in series:
            lab = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            for t, v in sorted(samples):
                lines.append(f"{family}_total{{{lab}}} {v!r} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def start_prometheus(tmp_path_factory, name: str, families) -> PrometheusServer:
    """Backfill ``families`` (see :func:`openmetrics`), then serve them; ``stop()`` stops only this Prometheus."""
    if not PROMETHEUS or not PROMTOOL:
        pytest.fail("prometheus/promtool not installed (apt-get install prometheus)")
    return PrometheusServer(workdir=tmp_path_factory.mktemp(name), backfill=openmetrics(families),
                            retention="100y", ready_timeout=60).start()


def hourly(start: int, hours: int, first: float, step: float) -> list[tuple[int, float]]:
    return [(start + 3600 * i, first + step * i) for i in range(hours)]


@pytest.mark.e2e
def test_backfilled_history_is_served_raw(tmp_path_factory):
    """The mechanism itself: promtool-backfilled samples come back exactly, both ends of a range included."""
    t0 = ts(2026, 10, 1)
    prom = start_prometheus(tmp_path_factory, "smoke", {
        "smoke_counter": [({"a": "1"}, [(t0, 1.0), (t0 + 60, 2.5), (t0 + 120, 0.5)])],
    })
    try:
        from inferops.processors.report import PrometheusClient

        res = PrometheusClient(prom.url).query("smoke_counter_total[60s]", t0 + 120)
        assert [(float(t), float(v)) for t, v in res[0]["values"]] == [(t0 + 60, 2.5), (t0 + 120, 0.5)]
    finally:
        prom.stop()
