"""``inferops demo``: the whole inferops loop on one machine, with nothing else running.

Mock providers (:mod:`inferops.mock_providers`) answer in the OpenAI, Anthropic
and Gemini wire formats; a traffic mix (:mod:`.traffic`) calls them through the
real ``openai``/``anthropic`` SDKs and plain ``httpx``/``httpx2``, instrumented
by :class:`inferops.instrumentation.InferopsInstrumentor`; the metrics are served
as OpenMetrics with exemplars; :mod:`.spend` shows who is spending what;
:mod:`.stack` optionally runs a real Prometheus and Alertmanager with the
generated rules and routes and a tiny budget, so the budget alert arrives while
you watch; :mod:`.artifacts` writes every generated file to an output folder.
The orchestration is :mod:`.run`; the CLI is :mod:`inferops.demo_cli`.
Documentation: docs/demo.md.
"""
