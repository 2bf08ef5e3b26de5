"""The provider-neutral usage record: what one LLM call consumed.

Every provider adapter (``inferops.instrumentation.providers``) and the OTLP
processor normalise what they read into a :class:`UsageRecord`; the cost engine
prices only this. The counting convention is that of the GenAI semantic
conventions, fixed here once so no adapter can count a token twice:

* ``input_tokens`` is the **whole** input, *including* tokens read from and
  written to the prompt cache. (Anthropic reports ``input_tokens`` *without*
  them; its adapter adds ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens`` back in.)
* ``cache_read_tokens`` and ``cache_write_5m_tokens``/``cache_write_1h_tokens``
  are subsets of ``input_tokens``.
* ``output_tokens`` is the whole output, *including* ``reasoning_tokens``.
* audio/image token counts are subsets of input/output, priced apart only when
  the model has audio/image prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inferops.names import ServiceTier, UsageSource


@dataclass(slots=True)
class UsageRecord:
    """What one call (or ``requests`` calls) consumed. Token counts are non-negative ints."""

    provider: str
    model: str
    operation: str = "chat"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    requests: int = 1
    service_tier: str = ServiceTier.STANDARD
    #: Unix time of the call, seconds; ``None`` means now. Selects the price in force.
    timestamp: float | None = None
    usage_source: str = UsageSource.PROVIDER
    self_hosted: bool = False
    #: Free-form notes from the adapter (e.g. "usage missing"), never priced.
    notes: list[str] = field(default_factory=list)

    @property
    def cache_write_tokens(self) -> int:
        """All cache-write tokens (5-minute and 1-hour)."""
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens neither read from nor written to the cache (never negative)."""
        return max(0, self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)

    @property
    def non_reasoning_output_tokens(self) -> int:
        """Output tokens that are not reasoning tokens (never negative)."""
        return max(0, self.output_tokens - self.reasoning_tokens)

    def token_buckets(self) -> dict[str, int]:
        """Tokens by ``token_type`` (see :class:`inferops.names.TokenType`); they partition the call.

        If a provider reported more cached than total input (inconsistent
        usage), input is taken as at least the cached part so the buckets
        still add up to what was billed.
        """
        cache_write = self.cache_write_tokens
        reasoning = min(self.reasoning_tokens, self.output_tokens) if self.output_tokens else self.reasoning_tokens
        return {
            "input": self.uncached_input_tokens,
            "cache_read": self.cache_read_tokens,
            "cache_write": cache_write,
            "output": max(0, self.output_tokens - reasoning),
            "reasoning": reasoning,
        }


def provider_usage(provider: str, model: str, operation: str, input_tokens: int, output_tokens: int,
                   cache_read_tokens: int, cache_write_5m_tokens: int, cache_write_1h_tokens: int,
                   reasoning_tokens: int, audio_input_tokens: int, audio_output_tokens: int, service_tier: str,
                   self_hosted: bool) -> UsageRecord:
    """``UsageRecord(...)`` of one call's provider-reported usage, built positionally.

    Why: the adapters build one per LLM call, and the dataclass's generated
    ``__init__`` matches each keyword argument against its 19 fields: ~9.6k
    instructions with keywords, ~5k positionally. The order below is the field
    order (tests/test_usage_record.py holds it to the keyword form).
    """
    return UsageRecord(provider, model, operation, input_tokens, output_tokens, cache_read_tokens,
                       cache_write_5m_tokens, cache_write_1h_tokens, reasoning_tokens, audio_input_tokens,
                       audio_output_tokens, 0, 0, 1, service_tier, None, UsageSource.PROVIDER, self_hosted)
