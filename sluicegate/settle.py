"""Settle a finished call: usage -> cost -> reconcile reservations -> ledger fields."""

from __future__ import annotations

from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.pricing import UNPRICED, PriceBook, Priced


def price_usage(
    prices: PriceBook, provider_kind: str | None, model: str | None, usage: Usage
) -> Priced:
    if provider_kind is None or model is None:
        return UNPRICED
    return prices.price(provider_kind, model, usage)


def write_usage(record: LedgerRecord, usage: Usage, priced: Priced) -> None:
    record.input_tokens = usage.input_tokens
    record.output_tokens = usage.output_tokens
    record.cache_read_tokens = usage.cache_read_tokens
    record.cache_write_tokens = usage.cache_write_tokens
    record.reasoning_tokens = usage.reasoning_tokens
    record.cost_usd = priced.cost_usd
    record.price_id = priced.price_id
    record.price_version = priced.price_version
