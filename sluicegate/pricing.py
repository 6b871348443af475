"""USD cost of a call from its usage, with `genai-prices` as the catalog.

A catalog look-up (model matching) costs ~150 us, too much per request, so each
(provider, model) is resolved once into a `ModelRate` and the arithmetic is done here.
Tiered prices (rare) fall back to the library's own calculation. A model with no price
yields `cost_usd=None` ("unpriced"), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

import genai_prices
import msgspec
from genai_prices.types import ModelPrice, PriceCalculation, TieredPrices

from sluicegate.model.usage import Usage

CATALOGUE_VERSION = f"genai-prices {genai_prices.__version__}"
_PER_MTOK = 1_000_000


class PriceOverride(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """USD per million tokens, set in config for models the catalog lacks or prices wrong."""

    input_mtok: float
    output_mtok: float
    cache_read_mtok: float | None = None
    cache_write_mtok: float | None = None


class ModelRate(msgspec.Struct, frozen=True):
    price_id: str
    version: str
    input_mtok: float
    output_mtok: float
    cache_read_mtok: float
    cache_write_mtok: float
    tiered: ModelPrice | None = None  # set when the catalogue's prices are tiered


class Priced(msgspec.Struct, frozen=True):
    cost_usd: float | None
    price_id: str | None
    price_version: str | None


UNPRICED = Priced(None, None, None)


class PriceBook:
    """Prices by model name: config overrides first, then the catalogue. `provider_kind`
    None looks a name up under any provider (a budget's `price_as` model)."""

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None):
        self._overrides = {name: _override_rate(name, o) for name, o in (overrides or {}).items()}
        # Bound per instance so a config reload (a new PriceBook) drops stale entries.
        self.rate_for = lru_cache(maxsize=4096)(self._resolve)

    def _resolve(self, provider_kind: str | None, model: str) -> ModelRate | None:
        override = self._overrides.get(model)
        if override is not None:
            return override
        return _catalog_rate(provider_kind, model)

    def override(self, model: str) -> ModelRate | None:
        """The price config sets for this name, if any (no catalogue look-up)."""
        return self._overrides.get(model)

    def price(self, provider_kind: str, model: str, usage: Usage) -> Priced:
        return price_at(self.rate_for(provider_kind, model), usage)

    def worst_case(
        self, provider_kind: str, model: str, input_tokens: int, max_output_tokens: int
    ) -> float | None:
        rate = self.rate_for(provider_kind, model)
        return None if rate is None else worst_case(rate, input_tokens, max_output_tokens)


def price_at(rate: ModelRate | None, usage: Usage) -> Priced:
    """The cost of `usage` at `rate`; unpriced without a rate or without any token count."""
    if rate is None or (usage.input_tokens is None and usage.output_tokens is None):
        return UNPRICED
    return Priced(_cost(rate, usage), rate.price_id, rate.version)


def worst_case(rate: ModelRate, input_tokens: int, max_output_tokens: int) -> float:
    """The most a call can cost: every input token uncached, every output token used."""
    return _cost(rate, Usage(input_tokens=input_tokens, output_tokens=max_output_tokens))


def _override_rate(model: str, override: PriceOverride) -> ModelRate:
    return ModelRate(
        price_id=f"override:{model}",
        version="config",
        input_mtok=override.input_mtok,
        output_mtok=override.output_mtok,
        cache_read_mtok=_default(override.cache_read_mtok, override.input_mtok),
        cache_write_mtok=_default(override.cache_write_mtok, override.input_mtok),
    )


def _default(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


def _cost(rate: ModelRate, usage: Usage) -> float:
    if rate.tiered is not None:
        return _tiered_cost(rate.tiered, usage)
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    uncached = max((usage.input_tokens or 0) - cache_read - cache_write, 0)
    return (
        uncached * rate.input_mtok
        + cache_read * rate.cache_read_mtok
        + cache_write * rate.cache_write_mtok
        + (usage.output_tokens or 0) * rate.output_mtok
    ) / _PER_MTOK


def _tiered_cost(model_price: ModelPrice, usage: Usage) -> float:
    fields = {
        k: v
        for k, v in (
            ("input_tokens", usage.input_tokens),
            ("output_tokens", usage.output_tokens),
            ("cache_read_tokens", usage.cache_read_tokens),
            ("cache_write_tokens", usage.cache_write_tokens),
        )
        if v is not None
    }
    return float(model_price.calc_price(genai_prices.Usage(**fields))["total_price"])


def _lookups(provider_kind: str | None, model: str) -> list[tuple[str, str | None]]:
    """Where to look a model up: under the account's wire kind, then any provider (an
    OpenAI-compatible account serving gemini-2.0-flash), then without a vendor prefix
    (`anthropic.claude-haiku-4-5` on Bedrock, `anthropic/claude-haiku-4-5` on routers)."""
    lookups: list[tuple[str, str | None]] = [(model, provider_kind), (model, None)]
    for separator in ("/", "."):
        vendor, found, rest = model.partition(separator)
        if found and rest and vendor.isalpha():
            lookups += [(rest, vendor), (rest, None)]
    return lookups


def _catalog_rate(provider_kind: str | None, model: str) -> ModelRate | None:
    for model_ref, provider_id in _lookups(provider_kind, model):
        try:
            calc = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=1, output_tokens=1),
                model_ref=model_ref,
                provider_id=provider_id,
            )
        except Exception:  # LookupError for unknown models; other errors for bad ids
            continue
        return _rate_from(calc)
    return None


def _rate_from(calc: PriceCalculation) -> ModelRate | None:
    price = calc.model_price
    price_id = f"{calc.provider.id}:{calc.model.id}"
    values = {
        name: getattr(price, name, None)
        for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    }
    if any(isinstance(v, TieredPrices) for v in values.values()):
        return ModelRate(price_id, CATALOGUE_VERSION, 0, 0, 0, 0, tiered=price)
    if values["input_mtok"] is None and values["output_mtok"] is None:
        return None
    input_mtok = _float(values["input_mtok"])
    return ModelRate(
        price_id=price_id,
        version=CATALOGUE_VERSION,
        input_mtok=input_mtok,
        output_mtok=_float(values["output_mtok"]),
        cache_read_mtok=_float(values["cache_read_mtok"], input_mtok),
        cache_write_mtok=_float(values["cache_write_mtok"], input_mtok),
    )


def _float(value: Decimal | None, fallback: float = 0.0) -> float:
    return fallback if value is None else float(value)
