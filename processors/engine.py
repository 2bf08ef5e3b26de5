"""The cost engine: a :class:`UsageRecord` in, a :class:`CostResult` in US dollars out.

Arithmetic (prices are USD per token; ``per_request`` USD per request):

1. **Price set.** Prices are layered, each layer replacing the components it
   prices: the entry's ``standard`` prices; then the call's service tier
   (``batch``/``flex``/``priority``) when the entry prices that tier (components
   the tier does not price stay standard, with a note); then, if the call's whole
   input (``input_tokens``, cache included) is **above** a long-context
   threshold, the highest such threshold's ``standard`` prices and then its
   prices for the call's tier. The long-context prices apply to the **whole
   request** (every input, cache and output token), as the providers bill it.
2. **Fallbacks inside a price set.** No cache-read price: the input price (note).
   No 5-minute cache-write price: the input price (OpenAI-style caches bill
   writes as plain input). No 1-hour cache-write price: the 5-minute one. No
   reasoning price: the output price (reasoning is billed as output).
3. **Input side.** ``cache_read_tokens x cache_read``;
   ``cache_write_5m_tokens x cache_write_5m + cache_write_1h_tokens x cache_write_1h``;
   audio and image input tokens at ``input_audio``/``input_image`` when the entry
   has them (else they stay in the text input); the rest,
   ``input - cache_read - cache_write - priced audio/image``, at ``input``.
4. **Output side.** ``reasoning_tokens x reasoning``; audio and image output at
   their own prices when present; the rest, ``output - reasoning - priced
   audio/image``, at ``output``.
5. **Per-request fee.** ``requests x per_request``.
6. **Discount.** The negotiated discount in force at the call's time, the
   model's over the provider's, scales every component:
   ``component x (1 - percent / 100)``. Discounts match the provider the call
   went to and the model as sent or any of its resolution forms (a discount on
   ``gpt-4o`` covers ``gpt-4o-2024-08-06``).

``total`` is the sum of the components. Status: ``unpriced`` when the model
resolves to nothing, or has no price in force at the call's time (``total`` is
``None``, never 0); ``partial`` when some tokens had no price at all (e.g.
output tokens on an entry without an output price: they add nothing); else
``priced``. Currency: USD.

Worked examples per provider are in ``docs/pricing.md``.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from inferops.names import PricingStatus
from inferops.yamlfile import ConfigError

from .catalog import (
    Catalog, CatalogEntry, Resolution, Resolver, load_catalog, model_candidates, normalize_provider,
)
from .overrides import Overrides, load_overrides
from .usage import UsageRecord

_EMPTY: dict[str, float] = {}
_NEG_INF = float("-inf")
#: Components whose absence in a service tier is worth a note (they fall back to standard).
_TIER_NOTE_COMPONENTS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


@dataclass(slots=True)
class CostResult:
    """The priced cost of one usage record."""

    status: str
    #: Total USD, ``None`` when unpriced (never 0 for unknown).
    total: float | None
    #: USD by ``cost_type`` (input, cache_read, cache_write, output, reasoning, audio, image, request).
    components: dict[str, float] = field(default_factory=dict)
    catalog_key: str = ""
    catalog_version: str = ""
    #: Provider and model id of the entry that priced the call.
    priced_provider: str = ""
    priced_model: str = ""
    service_tier: str = "standard"
    #: Long-context threshold applied (input tokens above which the tier's prices applied), if any.
    context_tier_above: int | None = None
    discount_percent: float = 0.0
    self_hosted: bool = False
    notes: tuple[str, ...] = ()
    #: USD the prompt cache saved on this call: cache-read tokens at the input price the call
    #: paid (tier, long-context and discount applied) minus their cache-read cost; never negative.
    cache_read_savings: float = 0.0

    @property
    def priced(self) -> bool:
        return self.status != PricingStatus.UNPRICED


@dataclass(frozen=True, slots=True)
class PriceSet:
    """Resolved per-token prices for one (entry, service tier, long-context tier); fallbacks applied.

    ``input``/``output`` are ``None`` when the entry has no such price (tokens there are
    unpriced, the status becomes ``partial``); every other field is a number.
    """

    input: float | None
    output: float | None
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float
    reasoning: float
    input_audio: float | None
    output_audio: float | None
    input_image: float | None
    output_image: float | None
    per_request: float
    #: Notes that hold for every call priced with this set (tier fallbacks).
    notes: tuple[str, ...]
    #: True when cache_read fell back to the input price.
    cache_read_is_input: bool
    #: True when cache_write_1h fell back to the 5-minute price.
    cache_write_1h_is_5m: bool


def build_price_set(entry: CatalogEntry, tier: str, above: int | None) -> PriceSet:
    """Layer standard < tier < long-context standard < long-context tier (see the module docstring)."""
    notes: list[str] = []
    base = entry.prices.get("standard", _EMPTY)
    p = dict(base)
    if tier != "standard":
        tp = entry.prices.get(tier)
        if tp is None:
            notes.append(f"no {tier} prices for {entry.key}; standard prices used")
        else:
            p.update(tp)
            missing = [c for c in _TIER_NOTE_COMPONENTS if c in base and c not in tp]
            if missing:
                notes.append(f"no {tier} price for {', '.join(missing)}; standard used")
    if above is not None:
        for threshold, tprices in entry.tiers:
            if threshold == above:
                p.update(tprices.get("standard", _EMPTY))
                if tier != "standard":
                    lt = tprices.get(tier)
                    if lt is not None:
                        p.update(lt)
                    elif tprices.get("standard"):
                        notes.append(f"no {tier} long-context prices; standard long-context prices used")
                break
    get = p.get
    in_price = get("input")
    out_price = get("output")
    cr = get("cache_read")
    w5 = get("cache_write_5m")
    w1 = get("cache_write_1h")
    r = get("reasoning")
    zero_in = in_price if in_price is not None else 0.0
    w5_final = w5 if w5 is not None else zero_in
    return PriceSet(
        input=in_price,
        output=out_price,
        cache_read=cr if cr is not None else zero_in,
        cache_write_5m=w5_final,
        cache_write_1h=w1 if w1 is not None else w5_final,
        reasoning=r if r is not None else (out_price if out_price is not None else 0.0),
        input_audio=get("input_audio"),
        output_audio=get("output_audio"),
        input_image=get("input_image"),
        output_image=get("output_image"),
        per_request=get("per_request") or 0.0,
        notes=tuple(notes),
        cache_read_is_input=cr is None and in_price is not None,
        cache_write_1h_is_5m=w1 is None,
    )


class CostEngine:
    """Prices usage records against a catalog plus user overrides. Thread-safe for reads."""

    def __init__(self, catalog: Catalog | None = None, overrides: Overrides | None = None,
                 cache_size: int = 8192):
        self.catalog = catalog or load_catalog(None)
        self.overrides = overrides or Overrides()
        # Overrides never mutate the shared built-in catalog: work on a shallow copy.
        if self.overrides:
            self.catalog = _copy_catalog(self.catalog)
        self.version = self.catalog.version + ("+overrides" if self.overrides else "")
        #: entry key -> (sorted effective timestamps, entries) for dated prices.
        self._history: dict[str, tuple[list[float], list[CatalogEntry | None]]] = {}
        #: (provider, model) -> sorted [(effective_from, percent)], model "" = whole provider.
        self._discounts: dict[tuple[str, str], list[tuple[float, float]]] = {}
        #: (call provider, call model, entry key) -> discount histories to consult, most specific first.
        self._discount_plan: dict[tuple[str, str, str], tuple[list[tuple[float, float]], ...]] = {}
        #: (id(entry), tier, above) -> (entry, PriceSet); the entry is kept to pin its id.
        self._price_sets: dict[tuple[int, str, int | None], tuple[CatalogEntry, PriceSet]] = {}
        self._cache_size = cache_size
        self.resolver = Resolver(self.catalog, self.overrides.aliases, cache_size=cache_size)
        self._apply_overrides()

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings) -> "CostEngine":
        """Engine for :class:`inferops.settings.Settings` (catalog_file, prices_file)."""
        catalog = load_catalog(settings.catalog_file or None)
        overrides = load_overrides(settings.prices_file) if settings.prices_file else None
        return cls(catalog, overrides)

    def _apply_overrides(self) -> None:
        dated: dict[str, list[tuple[float, CatalogEntry | None]]] = {}
        for ov in self.overrides.models:
            entry = ov.entry
            if entry is None:  # base_model: price as another model
                base = self.resolver.resolve(ov.base_provider, ov.base_model).entry
                if base is None:
                    raise ConfigError(
                        f"base model {ov.base_model!r} ({ov.base_provider}) is not in the catalog; "
                        "expected a model `inferops prices lookup` finds",
                        source=ov.where, field="base_model")
                entry = CatalogEntry(
                    key=f"overrides/{ov.provider}/{ov.model}", provider=ov.provider, model=ov.model,
                    mode=base.mode, prices=base.prices, tiers=base.tiers, capabilities=base.capabilities,
                    max_input_tokens=base.max_input_tokens, self_hosted=base.self_hosted,
                    origin=f"overrides:{ov.where} (as {base.key})")
            # Only an exact match overrides a catalog entry: a fine-tune id that merely
            # resolves to its base model must not re-price the base model for everyone.
            res = self.resolver.resolve(ov.provider, ov.model)
            existing = res.entry if res.matched.lower() == ov.model.lower() and not res.via_fallback else None
            if existing is not None and not existing.key.startswith("overrides/"):
                target_key = existing.key
                if ov.effective_from == _NEG_INF:
                    entry = _rekey(entry, target_key)
                    self.catalog.add(entry, replace=True)
                    versions = dated.get(target_key)
                    if versions is not None:  # an undated override replaces the catalog's base price
                        versions[0] = (_NEG_INF, entry)
                else:
                    dated.setdefault(target_key, [(_NEG_INF, existing)]).append(
                        (ov.effective_from, _rekey(entry, target_key)))
            else:  # a model the catalog does not have
                key = entry.key
                if ov.effective_from == _NEG_INF or key not in self.catalog.entries:
                    self.catalog.add(entry, replace=True)
                dated.setdefault(key, []).append((ov.effective_from, entry))
            self.resolver.clear_cache()
        for key, versions in dated.items():
            if not any(ts == _NEG_INF for ts, _ in versions):
                versions.append((_NEG_INF, None))  # not priced before its first date
            if len(versions) <= 1:
                continue
            by_date: dict[float, CatalogEntry | None] = {}
            for ts, e in versions:
                by_date[ts] = e
            times = sorted(by_date)
            self._history[key] = (times, [by_date[t] for t in times])
        for d in self.overrides.discounts:
            self._discounts.setdefault((d.provider, d.model), []).append((d.effective_from, d.percent))
        for v in self._discounts.values():
            v.sort()
        # An alias must lead somewhere: a typo would silently leave every call unpriced.
        where = getattr(self.overrides, "alias_where", {})
        for (provider, name), (target_provider, model) in self.overrides.aliases.items():
            if self.resolver.resolve(provider, name).entry is None:
                raise ConfigError(
                    f"alias {name!r} points at {model!r} ({target_provider}), which is not in the catalog "
                    "or the overrides; expected a model `inferops prices lookup` finds",
                    source=where.get((provider, name), self.overrides.source), field="model")

    # -- pricing -----------------------------------------------------------------------

    def resolve(self, provider: str, model: str) -> Resolution:
        return self.resolver.resolve(provider, model)

    def price(self, usage: UsageRecord) -> CostResult:
        """Price one usage record (see the module docstring for the arithmetic)."""
        res = self.resolver.resolve(usage.provider, usage.model)
        entry = res.entry
        if entry is None:
            return CostResult(PricingStatus.UNPRICED, None, catalog_version=self.version,
                              service_tier=usage.service_tier, self_hosted=usage.self_hosted,
                              notes=(f"model {usage.model!r} ({usage.provider}) is not in the catalog",))
        ts = usage.timestamp
        if self._history:
            hist = self._history.get(entry.key)
            if hist is not None:
                t = time.time() if ts is None else ts
                i = bisect.bisect_right(hist[0], t) - 1
                entry = hist[1][i] if i >= 0 else None
                if entry is None:
                    return CostResult(PricingStatus.UNPRICED, None, catalog_version=self.version,
                                      service_tier=usage.service_tier, self_hosted=usage.self_hosted,
                                      notes=("no price in force at the call's time",))
        return self._compute(entry, usage, ts)

    def price_set(self, entry: CatalogEntry, tier: str, above: int | None) -> PriceSet:
        """The (cached) resolved prices of ``entry`` for a service tier and long-context threshold."""
        key = (id(entry), tier, above)
        hit = self._price_sets.get(key)
        if hit is not None and hit[0] is entry:
            return hit[1]
        ps = build_price_set(entry, tier, above)
        if len(self._price_sets) >= self._cache_size:
            self._price_sets.clear()
        self._price_sets[key] = (entry, ps)
        return ps

    def _compute(self, entry: CatalogEntry, u: UsageRecord, ts: float | None) -> CostResult:
        notes: list[str] | None = None
        inp = u.input_tokens
        out = u.output_tokens
        cache_read = u.cache_read_tokens
        w5 = u.cache_write_5m_tokens
        w1 = u.cache_write_1h_tokens
        reasoning = u.reasoning_tokens
        a_in = u.audio_input_tokens
        a_out = u.audio_output_tokens
        i_in = u.image_input_tokens
        i_out = u.image_output_tokens
        requests = u.requests
        if (inp | out | cache_read | w5 | w1 | reasoning | a_in | a_out | i_in | i_out | requests) < 0:
            notes = ["negative token counts taken as 0"]
            inp, out, cache_read, w5, w1 = max(inp, 0), max(out, 0), max(cache_read, 0), max(w5, 0), max(w1, 0)
            reasoning, a_in, a_out = max(reasoning, 0), max(a_in, 0), max(a_out, 0)
            i_in, i_out, requests = max(i_in, 0), max(i_out, 0), max(requests, 0)

        tier = u.service_tier or "standard"
        above = None
        if entry.tiers and inp:
            for threshold, _ in reversed(entry.tiers):
                if inp > threshold:
                    above = threshold
                    break
        hit = self._price_sets.get((id(entry), tier, above))
        ps = hit[1] if hit is not None and hit[0] is entry else self.price_set(entry, tier, above)
        if ps.notes:
            notes = (notes or []) + list(ps.notes)
        partial = False

        # Input side.
        text_in = inp - cache_read - w5 - w1
        if text_in < 0:
            notes = (notes or []) + ["cached tokens exceed input tokens; input taken as the cached part"]
            text_in = 0
        audio_cost = 0.0
        image_cost = 0.0
        if a_in and ps.input_audio is not None:
            n = a_in if a_in < text_in else text_in
            audio_cost += n * ps.input_audio
            text_in -= n
        if i_in and ps.input_image is not None:
            n = i_in if i_in < text_in else text_in
            image_cost += n * ps.input_image
            text_in -= n
        in_price = ps.input
        if in_price is None:
            in_price = 0.0
            if text_in or cache_read or w5 or w1:
                partial = True
                notes = (notes or []) + ["no input price: input tokens unpriced"]
        cost_input = text_in * in_price
        cost_cache_read = cache_read * ps.cache_read
        if cache_read and ps.cache_read_is_input:
            notes = (notes or []) + ["no cache-read price; input price used"]
        cost_cache_write = w5 * ps.cache_write_5m + w1 * ps.cache_write_1h
        if w1 and ps.cache_write_1h_is_5m:
            notes = (notes or []) + ["no 1-hour cache-write price; 5-minute price used"]
        savings = cache_read * (in_price - ps.cache_read) if ps.input is not None else 0.0

        # Output side.
        if reasoning > out:
            notes = (notes or []) + ["reasoning tokens exceed output tokens; taken as all of the output"]
            reasoning = out
        text_out = out - reasoning
        if a_out and ps.output_audio is not None:
            n = a_out if a_out < text_out else text_out
            audio_cost += n * ps.output_audio
            text_out -= n
        if i_out and ps.output_image is not None:
            n = i_out if i_out < text_out else text_out
            image_cost += n * ps.output_image
            text_out -= n
        out_price = ps.output
        if out_price is None:
            out_price = 0.0
            if text_out or reasoning:
                partial = True
                notes = (notes or []) + ["no output price: output tokens unpriced"]
        components = {
            "input": cost_input,
            "cache_read": cost_cache_read,
            "cache_write": cost_cache_write,
            "output": text_out * out_price,
            "reasoning": reasoning * ps.reasoning,
            "audio": audio_cost,
            "image": image_cost,
            "request": requests * ps.per_request,
        }

        discount = 0.0
        if self._discounts:
            discount = self._discount_for(entry, u, ts)
            if discount:
                factor = 1.0 - discount / 100.0
                for k in components:
                    components[k] *= factor
                savings *= factor

        return CostResult(
            PricingStatus.PARTIAL if partial else PricingStatus.PRICED,
            sum(components.values()),
            components,
            entry.key,
            self.version,
            entry.provider,
            entry.model,
            tier,
            above,
            discount,
            entry.self_hosted or u.self_hosted,
            tuple(notes) if notes else (),
            savings if savings > 0.0 else 0.0,
        )

    def _discount_for(self, entry: CatalogEntry, u: UsageRecord, ts: float | None) -> float:
        plan_key = (u.provider, u.model, entry.key)
        plan = self._discount_plan.get(plan_key)
        if plan is None:
            plan = self._build_discount_plan(entry, u.provider, u.model)
            if len(self._discount_plan) >= self._cache_size:
                self._discount_plan.clear()
            self._discount_plan[plan_key] = plan
        if not plan:
            return 0.0
        t = time.time() if ts is None else ts
        for history in plan:
            pct = _in_force(history, t)
            if pct is not None:
                return pct
        return 0.0

    def _build_discount_plan(self, entry: CatalogEntry, provider: str, model: str
                             ) -> tuple[list[tuple[float, float]], ...]:
        """Discount histories that apply to a call, model-level (most specific form first) then provider."""
        prov = normalize_provider(provider) or entry.provider
        plan: list[list[tuple[float, float]]] = []
        seen: set[str] = set()
        for name in (*model_candidates(model), *model_candidates(entry.model)):
            if name in seen:
                continue
            seen.add(name)
            history = self._discounts.get((prov, name))
            if history is not None and history not in plan:
                plan.append(history)
        history = self._discounts.get((prov, ""))
        if history is not None:
            plan.append(history)
        return tuple(plan)


def _in_force(history: list[tuple[float, float]] | None, t: float) -> float | None:
    if not history:
        return None
    found = None
    for since, pct in history:
        if since <= t:
            found = pct
        else:
            break
    return found


def _rekey(entry: CatalogEntry, key: str) -> CatalogEntry:
    return CatalogEntry(key=key, provider=entry.provider, model=entry.model, mode=entry.mode,
                        prices=entry.prices, tiers=entry.tiers, max_input_tokens=entry.max_input_tokens,
                        max_output_tokens=entry.max_output_tokens, capabilities=entry.capabilities,
                        self_hosted=entry.self_hosted, origin=entry.origin)


def _copy_catalog(catalog: Catalog) -> Catalog:
    clone = Catalog.__new__(Catalog)
    clone.version = catalog.version
    clone.source = dict(catalog.source)
    clone.origin = catalog.origin
    clone.entries = dict(catalog.entries)
    clone._index = dict(catalog._index)
    return clone
