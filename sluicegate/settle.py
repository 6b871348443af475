"""Settle a finished call: usage -> cost -> reconcile reservations -> ledger fields.

`Settlement` is the pipeline's settle stage: it prices the usage at the served model's
price (or as the budget that admitted an unpriced call says), writes the ledger's usage
and cost fields, and queues the reconciliation of what admission reserved.

When the provider's usage report never arrived (the client left a stream before its last
event, or the provider cut it), the usage is estimated rather than left unknown: what was
delivered was consumed, and a budget that saw nothing would let a client that always
leaves early spend without limit. Input tokens are the provider's own figure when the
stream's first event carried it (Anthropic's `message_start`), else the request's estimate;
output tokens are the content the gateway received and relayed (text, tool-call arguments,
thinking), at CHARS_PER_TOKEN characters per token. No tokenizer runs here: the one
tokenizer package on hand (tiktoken) fetches its encodings at run time, and none would
match every provider's models. For English prose and code the rule is usually within
about 25% of a real tokenizer; text in other scripts can count double or half.
"""

from __future__ import annotations

from collections.abc import Callable

from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.policy.engine import Admission, PolicyEngine
from sluicegate.pricing import Priced, price_at
from sluicegate.providers.catalog import Catalog
from sluicegate.router.plan import Target
from sluicegate.wire.common import CHARS_PER_TOKEN  # the request estimate's rule too

PROVIDER = "provider"  # usage_source: the provider's own report
ESTIMATED = "estimated"  # usage_source: the gateway's estimate (see the module docstring)


def estimate_usage(reported: Usage, content_chars: int, estimated_input_tokens: int) -> Usage:
    """The usage of a call whose final report is missing: what the provider did report
    (a partial output count is a floor), completed from the request and the relay."""
    counted = -(-content_chars // CHARS_PER_TOKEN)  # rounded up: any content is a token
    input_tokens = reported.input_tokens
    return Usage(
        input_tokens=estimated_input_tokens if input_tokens is None else input_tokens,
        output_tokens=max(reported.output_tokens or 0, counted),
        cache_read_tokens=reported.cache_read_tokens,
        cache_write_tokens=reported.cache_write_tokens,
        reasoning_tokens=reported.reasoning_tokens,
    )


def write_usage(record: LedgerRecord, usage: Usage, priced: Priced, source: str = PROVIDER) -> None:
    record.input_tokens = usage.input_tokens
    record.output_tokens = usage.output_tokens
    record.cache_read_tokens = usage.cache_read_tokens
    record.cache_write_tokens = usage.cache_write_tokens
    record.reasoning_tokens = usage.reasoning_tokens
    reported = usage.input_tokens is not None or usage.output_tokens is not None
    record.usage_source = source if reported else None
    record.cost_usd = priced.cost_usd
    record.price_id = priced.price_id
    record.price_version = priced.price_version


class Settlement:
    """Prices finished calls with the catalog in force and reconciles their reservations."""

    def __init__(self, policy: PolicyEngine, catalog: Callable[[], Catalog]) -> None:
        self._policy = policy
        self._catalog = catalog  # the live catalog; swapped on config change

    def settle(
        self,
        admission: Admission | None,
        record: LedgerRecord,
        usage: Usage,
        target: Target | None,
        source: str = PROVIDER,
    ) -> None:
        """Price the usage (estimated usage like reported) and reconcile the reservation
        with it. Reconciling is queued, not awaited: the client need not wait for a Redis
        round trip. An unpriced call a budget prices as another model (`unpriced:
        {price_as: M}`) is recorded at M's price, with `priced_as` saying so; each budget
        settles by its own setting."""
        cost = self._price(record, usage, target, source)
        if admission is None:
            return
        if cost is None and admission.priced_as is not None:
            model, rate = admission.priced_as
            priced = price_at(rate, usage)
            if priced.cost_usd is not None:
                write_usage(record, usage, priced, source)
                record.priced_as = model
        self._policy.settle_soon(admission, usage, cost)

    def release(self, admission: Admission | None) -> None:
        """Give back what admission reserved (a no-op once settled)."""
        if admission is not None:
            self._policy.settle_soon(admission, None, None)

    def _price(
        self, record: LedgerRecord, usage: Usage, target: Target | None, source: str
    ) -> float | None:
        """The cost at the served model's price; a price set for the configured name the
        client asked for applies whatever the upstream name (None: unpriced)."""
        catalog = self._catalog()
        rate = None
        if target is not None and record.model is not None:
            configured = catalog.resolve_alias(record.requested_model or "")
            rate = catalog.rate(target.provider, record.model, configured)
        priced = price_at(rate, usage)
        write_usage(record, usage, priced, source)
        return priced.cost_usd
