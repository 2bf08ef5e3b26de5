"""``inferops serve``: OTLP/HTTP cost enrichment for GenAI spans from apps in any language.

Apps (Java, Node, Go, or Python with OpenLLMetry / OpenLIT / botocore's Bedrock
extension) send GenAI spans to an OpenTelemetry Collector; the Collector's
``otlphttp`` exporter sends them here; this service prices every span that
carries token usage with the shared cost engine, adds the same ``inferops.*``
and ``gen_ai.usage.cost`` attributes as the in-process instrumentation, counts
the same ``inferops_*`` metrics (``/metrics``, with exemplars), and forwards
the enriched spans to a downstream OTLP/HTTP endpoint (Tempo, or a second
Collector pipeline). See ``docs/serve.md``.

Modules: :mod:`.otlp` (wire formats), :mod:`.extract` (reading the many
attribute spellings), :mod:`.enrich` (pricing, attributes, metric samples),
:mod:`.forwarder` (bounded queue, batching, retries), :mod:`.server` (HTTP,
lifecycle), :mod:`.logs` (JSON logs).
"""

from .enrich import BatchResult, Enricher
from .extract import AttributionResolver
from .server import Service, run

__all__ = ["AttributionResolver", "BatchResult", "Enricher", "Service", "run"]
