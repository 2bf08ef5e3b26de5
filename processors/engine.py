"""The cost engine: a :class:`UsageRecord` in, a :class:`CostResult` in US dollars out.

Arithmetic (prices are USD per token of the entry's service tier, after the
long-context tier is applied):

1. **Price set.** Start from the entry's ``standard`` prices; for a
   ``batch``/``flex``/``priority`` call, each component the entry prices for
   that tier replaces the standard one (missing ones stay standard and the
   note ``tier_fallback:<component>`` says so). If the call's whole input
   (``input_tokens``, cache included) exceeds a long-context threshold
   (``above``), the highest such tier's prices replace those components for
   the **whole request**, as the providers bill it.
2. **Input side.** ``cache_read x cache_read`` (falls back to the input price,
   note ``no_cache_read_price``); ``cache_write_5m x cache_write_5m`` and
   ``cache_write_1h x cache_write_1h`` (1h falls back to 5m, both fall back to
   input: OpenAI-style caches bill writes as plain input); audio and image input
   tokens at their own prices when the entry has them (else they stay in the
   text input); the rest, ``input - cache_read - cache_write - priced audio/image``,
   at the input price.
3. **Output side.** ``reasoning x reasoning price`` (the output price unless
   the entry prices reasoning apart: reasoning is billed as output); audio and
   image output at their own prices when present; the rest at the output price.
4. **Per-request fee** x ``requests``.
5. **Discount.** The most specific negotiated discount in force (model over
   provider) scales every component.

Status: ``unpriced`` when the model resolves to nothing (total is ``None``,
never 0); ``partial`` when some tokens had no price at all (e.g. output tokens
on an entry without an output price); else ``priced``.

Worked examples per provider are in ``docs/pricing.md``.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from inferops.names import PricingStatus

from .catalog import Catalog, CatalogEntry, Resolution, Resolver, load_catalog, normalize_provider
from .overrides import Overrides, load_overrides
from .usage import UsageRecord

_EMPTY: dict[str, float] = {}


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

    @property
    def priced(self) -> bool:
        return self.status != PricingStatus.UNPRICED


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
                    raise ValueError(f"{ov.where}: base_model {ov.base_model!r} ({ov.base_provider}) "
                                     "is not in the catalog")
                entry = CatalogEntry(
                    key=f"overrides/{ov.provider}/{ov.model}", provider=ov.provider, model=ov.model,
                    mode=base.mode, prices=base.prices, tiers=base.tiers, capabilities=base.capabilities,
                    max_input_tokens=base.max_input_tokens, origin=f"overrides:{ov.where} (as {base.key})")
            # Only an exact match overrides a catalog entry: a fine-tune id that merely
            # resolves to its base model must not re-price the base model for everyone.
            res = self.resolver.resolve(ov.provider, ov.model)
            existing = res.entry if res.matched.lower() == ov.model.lower() and not res.via_fallback else None
            if existing is not None and not existing.key.startswith("overrides/"):
                target_key = existing.key
                if ov.effective_from == float("-inf"):
                    entry = _rekey(entry, target_key)
                    self.catalog.add(entry, replace=True)
                else:
                    dated.setdefault(target_key, [(float("-inf"), existing)]).append(
                        (ov.effective_from, _rekey(entry, target_key)))
            else:  # a model the catalog does not have
                key = entry.key
                if ov.effective_from == float("-inf") or key not in self.catalog.entries:
                    self.catalog.add(entry, replace=True)
                dated.setdefault(key, []).append((ov.effective_from, entry))
            self.resolver.clear_cache()
        for key, versions in dated.items():
            if not any(ts == float("-inf") for ts, _ in versions):
                versions.append((float("-inf"), None))  # not priced before its first date
            if len(versions) <= 1:
                continue
            # Sorted by date; for one date the entry given last in the file wins.
            by_date: dict[float, CatalogEntry | None] = {}
            for ts, e in versions:
                by_date[ts] = e
            times = sorted(by_date)
            self._history[key] = (times, [by_date[t] for t in times])
        for d in self.overrides.discounts:
            self._discounts.setdefault((d.provider, d.model), []).append((d.effective_from, d.percent))
        for v in self._discounts.values():
            v.sort()

    # -- pricing -----------------------------------------------------------------------

    def resolve(self, provider: str, model: str) -> Resolution:
        return self.resolver.resolve(provider, model)

    def price(self, usage: UsageRecord) -> CostResult:
        res = self.resolver.resolve(usage.provider, usage.model)
        entry = res.entry
        if entry is None:
            return CostResult(PricingStatus.UNPRICED, None, catalog_version=self.version,
                              service_tier=usage.service_tier, self_hosted=usage.self_hosted)
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

    def _compute(self, entry: CatalogEntry, u: UsageRecord, ts: float | None) -> CostResult:
        notes: list[str] = []
        tier = u.service_tier or "standard"
        base = entry.prices.get("standard", _EMPTY)
        if tier != "standard":
            tp = entry.prices.get(tier)
            if tp is None:
                notes.append(f"no {tier} prices; standard prices used")
                p = base
            else:
                p = dict(base)
                p.update(tp)
        else:
            p = base
        above = None
        if entry.tiers and u.input_tokens:
            for threshold, tprices in entry.tiers:
                if u.input_tokens > threshold:
                    above = threshold
                    lc = tprices.get(tier) or (tprices.get("standard") if tier == "standard" else None)
                    if lc is None:
                        lc = tprices.get("standard", _EMPTY)
                        if lc and tier != "standard":
                            notes.append(f"no {tier} long-context prices; standard long-context prices used")
                    merged = dict(p)
                    merged.update(lc)
                    selected = merged
            if above is not None:
                p = selected

        partial = False
        get = p.get
        in_price = get("input")
        out_price = get("output")

        # Input side.
        cache_read = u.cache_read_tokens
        w5 = u.cache_write_5m_tokens
        w1 = u.cache_write_1h_tokens
        text_in = u.input_tokens - cache_read - w5 - w1
        if text_in < 0:
            notes.append("cached tokens exceed input tokens; input taken as the cached part")
            text_in = 0
        audio_cost = 0.0
        image_cost = 0.0
        if u.audio_input_tokens:
            ap = get("input_audio")
            if ap is not None:
                n = min(u.audio_input_tokens, text_in)
                audio_cost += n * ap
                text_in -= n
        if u.image_input_tokens:
            ip = get("input_image")
            if ip is not None:
                n = min(u.image_input_tokens, text_in)
                image_cost += n * ip
                text_in -= n

        components: dict[str, float] = {}
        if in_price is None:
            if text_in or cache_read or w5 or w1:
                partial = True
                notes.append("no input price")
            in_price_or_zero = 0.0
        else:
            in_price_or_zero = in_price
        components["input"] = text_in * in_price_or_zero

        cr_price = get("cache_read")
        if cr_price is None:
            cr_price = in_price_or_zero
            if cache_read and in_price is not None:
                notes.append("no cache-read price; input price used")
        components["cache_read"] = cache_read * cr_price

        w5_price = get("cache_write_5m")
        if w5_price is None:
            w5_price = in_price_or_zero
        w1_price = get("cache_write_1h")
        if w1_price is None:
            w1_price = w5_price
            if w1:
                notes.append("no 1-hour cache-write price; 5-minute price used")
        components["cache_write"] = w5 * w5_price + w1 * w1_price

        # Output side.
        out_total = u.output_tokens
        reasoning = u.reasoning_tokens if u.reasoning_tokens <= out_total else out_total
        text_out = out_total - reasoning
        if u.audio_output_tokens:
            ap = get("output_audio")
            if ap is not None:
                n = min(u.audio_output_tokens, text_out)
                audio_cost += n * ap
                text_out -= n
        if u.image_output_tokens:
            ip = get("output_image")
            if ip is not None:
                n = min(u.image_output_tokens, text_out)
                image_cost += n * ip
                text_out -= n
        if out_price is None:
            if text_out or reasoning:
                partial = True
                notes.append("no output price")
            out_price = 0.0
        r_price = get("reasoning")
        components["reasoning"] = reasoning * (out_price if r_price is None else r_price)
        components["output"] = text_out * out_price
        components["audio"] = audio_cost
        components["image"] = image_cost
        per_req = get("per_request")
        components["request"] = u.requests * per_req if per_req is not None else 0.0

        discount = 0.0
        if self._discounts:
            discount = self._discount_for(entry, u, ts)
            if discount:
                factor = 1.0 - discount / 100.0
                for k in components:
                    components[k] *= factor

        total = sum(components.values())
        return CostResult(
            PricingStatus.PARTIAL if partial else PricingStatus.PRICED,
            total,
            components,
            entry.key,
            self.version,
            entry.provider,
            entry.model,
            tier,
            above,
            discount,
            entry.self_hosted or u.self_hosted,
            tuple(notes),
        )

    def _discount_for(self, entry: CatalogEntry, u: UsageRecord, ts: float | None) -> float:
        t = time.time() if ts is None else ts
        providers = {normalize_provider(u.provider), entry.provider}
        for model in (u.model, entry.model):
            for prov in providers:
                pct = _in_force(self._discounts.get((prov, model)), t)
                if pct is not None:
                    return pct
        for prov in providers:
            pct = _in_force(self._discounts.get((prov, "")), t)
            if pct is not None:
                return pct
        return 0.0


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
