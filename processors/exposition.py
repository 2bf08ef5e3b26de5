"""Prometheus text exposition of OpenTelemetry SDK metrics, with exemplars.

opentelemetry-exporter-prometheus renders metrics without exemplars (upstream
PR #4178 is still open), so a Grafana panel cannot jump from a cost spike to
the trace that caused it. :class:`OpenMetricsReader` is a pull
``MetricReader``: on every :meth:`~OpenMetricsReader.render` it collects from
the SDK and renders

* **OpenMetrics 1.0** (``application/openmetrics-text``, what Prometheus asks
  for first) *with* exemplars ``# {trace_id="...",span_id="..."} value ts`` on
  counter ``_total`` samples and histogram buckets, and
* the **Prometheus text format 0.0.4** otherwise (no exemplars in that format).

Metric and label names are produced by the very translation the OTel
exporter uses (``sanitize_full_name``, ``map_unit``, ``sanitize_attribute``
from ``opentelemetry.exporter.prometheus._mapping``, with the same rules
re-implemented in :mod:`inferops.names` as a fallback), so a dashboard written
against ``OTEL_METRICS_EXPORTER=prometheus`` works unchanged. Resource
attributes go to ``target_info``, as there. The ``otel_scope_*`` labels the
OTel exporter adds to every series are left out: they carry no information
for inferops' metrics and multiply nothing but bytes.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
from itertools import chain
from typing import Any, Callable, Iterable, Sequence

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram as HistogramInstrument,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    Sum,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric as PromMetric,
)
from prometheus_client.exposition import generate_latest as _generate_text
from prometheus_client.openmetrics.exposition import generate_latest as _generate_openmetrics
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Exemplar as PromExemplar

_log = logging.getLogger(__name__)

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

try:  # the exact translation of opentelemetry-exporter-prometheus
    from opentelemetry.exporter.prometheus._mapping import (  # type: ignore[import-not-found]
        map_unit,
        sanitize_attribute,
        sanitize_full_name,
    )
except ImportError:  # pragma: no cover - the exporter is a dependency; keep working without it
    _NAME_RE = re.compile(r"[^a-zA-Z0-9:]+")
    _ATTR_RE = re.compile(r"[^a-zA-Z0-9]+")
    _UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}

    def sanitize_full_name(name: str) -> str:
        if name and name[0].isdigit():
            name = "_" + name[1:]
        return _NAME_RE.sub("_", name)

    def sanitize_attribute(key: str) -> str:
        if key and key[0].isdigit():
            key = "_" + key[1:]
        return _ATTR_RE.sub("_", key)

    def map_unit(unit: str) -> str:
        unit = re.sub(r"{.*}", "", unit)
        return _UNITS.get(unit, _NAME_RE.sub("_", unit).strip("_"))


def wants_openmetrics(accept_header: str | None) -> bool:
    """True when the scraper accepts ``application/openmetrics-text`` (Prometheus always does)."""
    for part in (accept_header or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == "application/openmetrics-text":
            q = 1.0
            for param in part.split(";")[1:]:
                key, _, val = param.strip().partition("=")
                if key.strip() == "q":
                    try:
                        q = float(val)
                    except ValueError:
                        q = 1.0
            if q > 0:
                return True
    return False


def _label_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _exemplar(ex: Any) -> PromExemplar | None:
    """OTel SDK exemplar -> prometheus_client exemplar (trace_id/span_id labels)."""
    trace_id = getattr(ex, "trace_id", None)
    span_id = getattr(ex, "span_id", None)
    if not trace_id or not span_id:
        return None
    labels = {"trace_id": _hex_id(trace_id, 32), "span_id": _hex_id(span_id, 16)}
    ts = getattr(ex, "time_unix_nano", None)
    return PromExemplar(labels, float(ex.value), round(ts / 1e9, 9) if ts else None)


def _latest(exemplars: Sequence[Any] | None) -> PromExemplar | None:
    best = None
    for ex in exemplars or ():
        if best is None or (ex.time_unix_nano or 0) >= (best.time_unix_nano or 0):
            if getattr(ex, "trace_id", None):
                best = ex
    return _exemplar(best) if best is not None else None


class _Families:
    """Accumulates prometheus_client families keyed as the OTel exporter keys them."""

    def __init__(self) -> None:
        self.by_id: dict[str, PromMetric] = {}

    def family(self, factory, name: str, description: str, unit: str) -> PromMetric:
        fid = "|".join((name, description, unit, factory.__name__))
        fam = self.by_id.get(fid)
        if fam is None:
            fam = factory(name=name, documentation=description, unit=unit)
            self.by_id[fid] = fam
        return fam


def translate(metrics_data: MetricsData, *, target_info: bool = True) -> list[PromMetric]:
    """Render OTel ``MetricsData`` as prometheus_client families, exemplars attached."""
    fams = _Families()
    out: list[PromMetric] = []
    if target_info:
        attrs: dict[str, str] = {}
        for rm in metrics_data.resource_metrics:
            for k, v in rm.resource.attributes.items():
                attrs[sanitize_attribute(k)] = _label_value(v)
        if attrs:
            info = InfoMetricFamily("target", "Target metadata", labels=attrs)
            info.add_metric(labels=list(attrs), value=attrs)
            out.append(info)
    for rm in metrics_data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                try:
                    _translate_metric(metric, fams)
                except Exception:  # one odd metric must not blank the whole page
                    _log.exception("inferops: could not render metric %s", getattr(metric, "name", "?"))
    out.extend(fams.by_id.values())
    return out


def _labels(attributes) -> dict[str, str]:
    return {sanitize_attribute(k): _label_value(v) for k, v in (attributes or {}).items()}


def _translate_metric(metric, fams: _Families) -> None:
    name = sanitize_full_name(metric.name)
    description = metric.description or ""
    unit = map_unit(metric.unit or "")
    data = metric.data
    if isinstance(data, Sum):
        as_gauge = (not data.is_monotonic
                    and data.aggregation_temporality == AggregationTemporality.CUMULATIVE)
        if not as_gauge:
            fam = fams.family(CounterMetricFamily, name, description, unit)
            for p in data.data_points:
                fam.add_sample(fam.name + "_total", _labels(p.attributes), float(p.value),
                               None, _latest(getattr(p, "exemplars", None)))
            return
        fam = fams.family(GaugeMetricFamily, name, description, unit)
        for p in data.data_points:
            fam.add_sample(fam.name, _labels(p.attributes), float(p.value))
        return
    if isinstance(data, Gauge):
        fam = fams.family(GaugeMetricFamily, name, description, unit)
        for p in data.data_points:
            fam.add_sample(fam.name, _labels(p.attributes), float(p.value))
        return
    if isinstance(data, Histogram):
        fam = fams.family(HistogramMetricFamily, name, description, unit)
        for p in data.data_points:
            _add_histogram_point(fam, p)
        return
    _log.debug("inferops: unsupported metric data %s", type(data).__name__)


def _add_histogram_point(fam: PromMetric, p: HistogramDataPoint) -> None:
    labels = _labels(p.attributes)
    bounds = list(p.explicit_bounds)
    # One exemplar per bucket: the latest whose value falls into it (OTel's
    # aligned reservoir already keeps one per bucket).
    per_bucket: dict[int, Any] = {}
    for ex in getattr(p, "exemplars", None) or ():
        if not getattr(ex, "trace_id", None):
            continue
        i = bisect.bisect_left(bounds, ex.value)
        cur = per_bucket.get(i)
        if cur is None or (ex.time_unix_nano or 0) >= (cur.time_unix_nano or 0):
            per_bucket[i] = ex
    cumulative = 0
    for i, (bound, count) in enumerate(zip(chain(bounds, ["+Inf"]), p.bucket_counts)):
        cumulative += count
        ex = per_bucket.get(i)
        fam.add_sample(fam.name + "_bucket", {**labels, "le": f"{bound}"}, float(cumulative), None,
                       _exemplar(ex) if ex is not None else None)
    fam.add_sample(fam.name + "_count", labels, float(cumulative))
    fam.add_sample(fam.name + "_sum", labels, float(p.sum))


class _Snapshot(Collector):
    def __init__(self, families: Iterable[PromMetric]):
        self._families = list(families)

    def collect(self) -> Iterable[PromMetric]:
        return self._families


def render_families(families: Iterable[PromMetric], accept_header: str | None) -> tuple[bytes, str]:
    """Encode families for ``accept_header``: OpenMetrics with exemplars, else text 0.0.4."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    if wants_openmetrics(accept_header):
        return _generate_openmetrics(registry), OPENMETRICS_CONTENT_TYPE
    return _generate_text(registry), TEXT_CONTENT_TYPE


#: Called (in order, without arguments) at the start of every :meth:`OpenMetricsReader.collect`:
#: anything that buffers measurements off the request path (the instrumentation's batched metric
#: recording, see ``inferops.instrumentation.runtime.MetricsBatcher``) registers its flush here, so
#: a scrape always sees every call finished before it. A hook that raises is logged and skipped.
_pre_collect_hooks: list[Callable[[], object]] = []
_hooks_lock = threading.Lock()


def add_pre_collect_hook(hook: Callable[[], object]) -> None:
    """Call ``hook()`` before every collection of every :class:`OpenMetricsReader` (until removed)."""
    with _hooks_lock:
        if hook not in _pre_collect_hooks:
            _pre_collect_hooks.append(hook)


def remove_pre_collect_hook(hook: Callable[[], object]) -> None:
    """Undo :func:`add_pre_collect_hook` (no error if ``hook`` is not registered)."""
    with _hooks_lock:
        try:
            _pre_collect_hooks.remove(hook)
        except ValueError:
            pass


def run_pre_collect_hooks() -> None:
    """Run the registered hooks; never raises (a failing hook must not blank a scrape)."""
    with _hooks_lock:
        hooks = list(_pre_collect_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception:
            _log.exception("inferops: pre-collect hook %r failed", hook)


_CUMULATIVE = {
    Counter: AggregationTemporality.CUMULATIVE,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    HistogramInstrument: AggregationTemporality.CUMULATIVE,
    ObservableCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


class OpenMetricsReader(MetricReader):
    """A pull reader: :meth:`render` collects from the SDK and returns (body, content type).

    Thread-safe: concurrent scrapes are serialised (collecting is cheap and
    the SDK's collect is not meant to run twice at once for one reader).
    Every collection first runs the pre-collect hooks (:func:`add_pre_collect_hook`),
    so calls whose metrics are still buffered by the instrumentation are counted.
    """

    def __init__(self, *, disable_target_info: bool = False, **kwargs) -> None:
        kwargs.setdefault("preferred_temporality", _CUMULATIVE)
        super().__init__(**kwargs)
        self._disable_target_info = disable_target_info
        self._lock = threading.Lock()
        self._latest: MetricsData | None = None

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> None:
        self._latest = metrics_data

    def collect(self, timeout_millis: float = 10_000) -> None:
        """Run the pre-collect hooks (:func:`add_pre_collect_hook`: flush buffered calls), then collect."""
        run_pre_collect_hooks()
        super().collect(timeout_millis=timeout_millis)

    def families(self) -> list[PromMetric]:
        """Collect now and translate (also useful to tests)."""
        with self._lock:
            self._latest = None
            self.collect()
            data = self._latest
            self._latest = None
        if data is None:
            return []
        return translate(data, target_info=not self._disable_target_info)

    def render(self, accept_header: str | None = "") -> tuple[bytes, str]:
        """The exposition body and its content type for a scrape with this ``Accept`` header."""
        return render_families(self.families(), accept_header)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        pass
