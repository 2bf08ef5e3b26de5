"""FOCUS 1.2 export of inferops' estimated spend.

One row per UTC day (the charge period, clipped to the report period), per
group of the report's ``--by`` labels plus provider and model (FOCUS needs a
provider per row, and a row must have one pricing unit). Columns:

* The FOCUS 1.2 mandatory columns, and the conditional/recommended ones that
  apply (ChargeFrequency, ConsumedQuantity, ConsumedUnit, ServiceSubcategory,
  Tags).
* Costs. inferops does not see invoices: **BilledCost, EffectiveCost,
  ListCost and ContractedCost all hold the same figure, inferops' estimate**
  (tokens x catalog list prices, with the negotiated discounts and custom
  prices of your price overrides applied). No commitment discounts, credits,
  taxes or refunds are modelled; ``x_CostSource`` says ``inferops-estimate``
  on every row. Reconcile with the provider bill with ``inferops reconcile``.
* Quantities: PricingQuantity = ConsumedQuantity = all tokens of the row
  (input incl. cached, plus output incl. reasoning), unit ``Tokens``. Per
  token type in ``x_InputTokens``, ``x_CacheReadTokens``,
  ``x_CacheWriteTokens``, ``x_OutputTokens``, ``x_ReasoningTokens``. Unit
  prices are not given (conditional columns), because a row mixes token types
  priced differently.
* Tags: the attribution as user-defined tags (``team``, ``project``,
  ``feature``, ``environment``; a missing one is left out, not set to
  ``unattributed``) and inferops-defined tags with the ``inferops/`` prefix
  (``inferops/service_name``, ``inferops/operation``).
* Unpriced usage has no cost, and FOCUS cost columns cannot be null: such rows
  are **left out** of the file (never written as $0); their count is returned
  for the caller to warn about.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable

from inferops.names import ATTRIBUTION_LABELS, UNATTRIBUTED, Label, Provider

from .report import Cell, UsageCube, iso, month_bounds

FOCUS_VERSION = "1.2"

MANDATORY_COLUMNS: tuple[str, ...] = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "ServiceSubcategory", "Tags",
)
CUSTOM_COLUMNS: tuple[str, ...] = (
    "x_Provider", "x_Model", "x_Operation", "x_InputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
    "x_OutputTokens", "x_ReasoningTokens", "x_UnpricedRequests", "x_CostSource", "x_FocusVersion",
)
COLUMNS: tuple[str, ...] = (*MANDATORY_COLUMNS, *OPTIONAL_COLUMNS, *CUSTOM_COLUMNS)

TAG_PREFIX = "inferops/"
USER_TAG_LABELS: tuple[str, ...] = (Label.TEAM, Label.PROJECT, Label.FEATURE, Label.ENVIRONMENT)

#: provider label -> (ProviderName, ServiceName, InvoiceIssuerName)
_PROVIDERS: dict[str, tuple[str, str, str]] = {
    Provider.OPENAI: ("OpenAI", "OpenAI API", "OpenAI"),
    Provider.AZURE_OPENAI: ("Microsoft", "Azure OpenAI", "Microsoft"),
    Provider.AZURE_INFERENCE: ("Microsoft", "Azure AI Foundry Models", "Microsoft"),
    Provider.ANTHROPIC: ("Anthropic", "Claude API", "Anthropic"),
    Provider.BEDROCK: ("AWS", "Amazon Bedrock", "AWS"),
    Provider.GEMINI: ("Google", "Gemini API", "Google"),
    Provider.VERTEX_AI: ("Google Cloud", "Vertex AI", "Google Cloud"),
    Provider.MISTRAL: ("Mistral AI", "Mistral AI API", "Mistral AI"),
    Provider.COHERE: ("Cohere", "Cohere API", "Cohere"),
    Provider.GROQ: ("Groq", "GroqCloud", "Groq"),
    Provider.DEEPSEEK: ("DeepSeek", "DeepSeek API", "DeepSeek"),
    Provider.XAI: ("xAI", "xAI API", "xAI"),
    Provider.PERPLEXITY: ("Perplexity", "Perplexity API", "Perplexity"),
    Provider.TOGETHER: ("Together AI", "Together AI API", "Together AI"),
    Provider.FIREWORKS: ("Fireworks AI", "Fireworks AI API", "Fireworks AI"),
    Provider.OPENROUTER: ("OpenRouter", "OpenRouter API", "OpenRouter"),
    Provider.WATSONX: ("IBM", "watsonx.ai", "IBM"),
}

#: Model-name prefixes -> publisher, for models hosted by someone else (Bedrock, Vertex, Azure).
_PUBLISHERS = (
    ("claude", "Anthropic"), ("anthropic.", "Anthropic"), ("gpt", "OpenAI"), ("o1", "OpenAI"),
    ("o3", "OpenAI"), ("o4", "OpenAI"), ("text-embedding", "OpenAI"), ("gemini", "Google"),
    ("llama", "Meta"), ("meta.", "Meta"), ("mistral", "Mistral AI"), ("mixtral", "Mistral AI"),
    ("command", "Cohere"), ("cohere.", "Cohere"), ("amazon.", "AWS"), ("nova", "AWS"),
    ("deepseek", "DeepSeek"), ("grok", "xAI"),
)


def provider_names(provider: str) -> tuple[str, str, str]:
    """(ProviderName, ServiceName, InvoiceIssuerName) of a provider label."""
    return _PROVIDERS.get(provider, (provider or "unknown", f"{provider or 'unknown'} API", provider or "unknown"))


def publisher_name(provider: str, model: str) -> str:
    m = model.lower()
    for prefix, name in _PUBLISHERS:
        if m.startswith(prefix) or f".{prefix}" in m or f"/{prefix}" in m:
            return name
    return provider_names(provider)[0]


def _num(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def focus_rows(cube: UsageCube, by: Iterable[str], *,
               billing_accounts: dict[str, str] | None = None) -> tuple[list[dict[str, str]], Cell]:
    """Rows of the FOCUS file, and the unpriced usage left out of it."""
    accounts = billing_accounts or {}
    keys = tuple(dict.fromkeys((*by, Label.PROVIDER, Label.MODEL)))
    grouped = cube.group(keys, daily=True)
    rows: list[dict[str, str]] = []
    skipped = Cell()
    period = cube.period
    for key in sorted(grouped, key=lambda k: tuple(str(x) for x in k)):
        cell = grouped[key]
        day, values = key[0], dict(zip(keys, key[1:]))
        if cell.unpriced_only:
            skipped.add(cell)
            continue
        if cell.cost_usd == 0 and cell.total_tokens == 0:
            continue
        provider, model = values[Label.PROVIDER], values[Label.MODEL]
        pname, service, issuer = provider_names(provider)
        start, end = max(day, period.start), min(day + 86400, period.end)
        bp_start, bp_end = month_bounds(start)
        cost = _num(cell.cost_usd)
        tags: dict[str, str] = {}
        for name in USER_TAG_LABELS:
            v = values.get(name)
            if v and v != UNATTRIBUTED:
                tags[name] = v
        for name in (Label.SERVICE_NAME, Label.OPERATION):
            v = values.get(name)
            if v and v != UNATTRIBUTED:
                tags[TAG_PREFIX + name] = v
        tokens = _num(round(cell.total_tokens))
        who = ", ".join(f"{k} {values[k]}" for k in keys if k in ATTRIBUTION_LABELS and values.get(k))
        rows.append({
            "BilledCost": cost,
            "BillingAccountId": accounts.get(provider, f"inferops:{provider or 'unknown'}"),
            "BillingAccountName": f"{pname} (inferops estimate)",
            "BillingCurrency": "USD",
            "BillingPeriodEnd": iso(bp_end),
            "BillingPeriodStart": iso(bp_start),
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeDescription": f"{model} tokens on {service}{' for ' + who if who else ''} (inferops estimate)",
            "ChargePeriodEnd": iso(end),
            "ChargePeriodStart": iso(start),
            "ContractedCost": cost,
            "EffectiveCost": cost,
            "InvoiceIssuerName": issuer,
            "ListCost": cost,
            "PricingQuantity": tokens,
            "PricingUnit": "Tokens",
            "ProviderName": pname,
            "PublisherName": publisher_name(provider, model),
            "ServiceCategory": "AI and Machine Learning",
            "ServiceName": service,
            "ChargeFrequency": "Usage-Based",
            "ConsumedQuantity": tokens,
            "ConsumedUnit": "Tokens",
            "ServiceSubcategory": "Generative AI",
            "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":")),
            "x_Provider": provider,
            "x_Model": model,
            "x_Operation": values.get(Label.OPERATION, ""),
            "x_InputTokens": _num(round(cell.tokens.get("input", 0.0))),
            "x_CacheReadTokens": _num(round(cell.tokens.get("cache_read", 0.0))),
            "x_CacheWriteTokens": _num(round(cell.tokens.get("cache_write", 0.0))),
            "x_OutputTokens": _num(round(cell.tokens.get("output", 0.0))),
            "x_ReasoningTokens": _num(round(cell.tokens.get("reasoning", 0.0))),
            "x_UnpricedRequests": _num(round(cell.unpriced_requests)),
            "x_CostSource": "inferops-estimate",
            "x_FocusVersion": FOCUS_VERSION,
        })
    return rows, skipped


def focus_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow(row)
    return buf.getvalue()
