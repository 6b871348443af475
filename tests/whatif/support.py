"""Ledgers whose what-if answer is known by construction, and a WhatIf over them built
from the same parts the gateway composes (config service with its review, the compiler,
the SQL ledger), without a server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.identity.envelope import DEFAULT_PREFIXES
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.server.config_review import CompiledConfig, ConfigReview, compile_config
from sluicegate.whatif.assemble import WhatIfReport
from sluicegate.whatif.service import WhatIf, WhatIfLimits
from sluicegate.whatif.window import replay_window

WED = datetime(2025, 1, 1, tzinfo=UTC).timestamp()  # Wednesday 1 January 2025, 00:00 UTC
HOUR, DAY = 3600.0, 86400.0


async def _never_called(method: str, url: str, headers: Any, body: Any) -> UpstreamResponse:
    raise AssertionError("a what-if never calls a provider")


def compiler() -> Any:
    upstream = FakeUpstream(_never_called)

    def compile(snapshot: ConfigSnapshot) -> CompiledConfig:
        return compile_config(
            snapshot, upstream, emulator_url=None, header_prefixes=DEFAULT_PREFIXES
        )

    return compile


@dataclass
class Bench:
    """A WhatIf over one database, with its config service and ledger."""

    what_if: WhatIf
    config: ConfigService
    ledger: SqlLedgerStore

    async def write(self, records: Iterable[LedgerRecord]) -> None:
        batch = list(records)
        for start in range(0, len(batch), 5000):
            await self.ledger.write_batch(batch[start : start + 5000])

    async def apply(self, text: str) -> None:
        await self.config.apply(text, applied_by="test")

    async def run(
        self, text: str, window: str = "7d", *, until: float, replace: bool = False
    ) -> WhatIfReport:
        return await self.what_if.run(
            text, replay_window(window, until), applied_by="test", replace=replace
        )


async def _no_writes_pending() -> None:
    return None


def bench(
    engine: AsyncEngine, *, flush: Callable[[], Awaitable[None]] | None = None, **limits: Any
) -> Bench:
    compile = compiler()
    config = ConfigService(
        SqlConfigVersionStore(engine), DocumentRegistry(), review=ConfigReview(compile)
    )
    ledger = SqlLedgerStore(engine)
    what_if = WhatIf(
        engine=engine,
        config=config,
        compile=compile,
        sum_cost=ledger.sum_cost,
        flush=flush or _no_writes_pending,
        limits=WhatIfLimits(**limits),
    )
    return Bench(what_if, config, ledger)


def served(
    n: int,
    ts: float,
    *,
    model: str = "gpt-4o-mini",
    team: str | None = None,
    input_tokens: int | None = 100,
    output_tokens: int | None = 50,
    cost: float | None = 0.001,
    key: str | None = "key-a",
    provider: str = "openai",
    events: list[PolicyEvent] | None = None,
    **fields: Any,
) -> LedgerRecord:
    """A request as the ledger records one that was served (or, with `events` and no
    usage, refused)."""
    return LedgerRecord(
        request_id=f"req-{n:07d}",
        ts=ts,
        key_id=key,
        team=team,
        project="alpha",
        client_api="openai",
        requested_model=model,
        provider=provider,
        model=model,
        status_code=200,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        usage_source="provider" if input_tokens is not None else None,
        attempt_count=1,
        policy_events=events or [],
        **fields,
    )


def refused(n: int, ts: float, rule_id: str, *, kind: str = "rate_limit", **fields: Any):
    """A request the live policy refused: no provider call, no usage."""
    record = served(
        n,
        ts,
        input_tokens=None,
        output_tokens=None,
        cost=None,
        events=[PolicyEvent(kind=kind, rule_id=rule_id, action="hard_block", detail="over")],
        **fields,
    )
    record.status_code, record.error_type = 429, "rate_limit_exceeded"
    record.provider = record.model = None
    record.attempt_count = 0
    return record


def rule(report: WhatIfReport, rule_id: str) -> Any:
    (found,) = [r for r in report.rules if r.id == rule_id]
    return found
