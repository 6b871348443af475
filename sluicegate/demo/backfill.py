"""History for the demo: `days` past days of the organisation's requests written straight
into the ledger with the gateway's own store code (`SqlLedgerStore.write_batch`, which
adds the rollups in the same transaction), so 7-day baselines and 30-day windows have
data. Each day is planned like live traffic (seed + day) and priced with the gateway's
price book; tokens, latency and statuses are drawn from the same seeded generator."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade_engine
from sluicegate.demo.plan import PlannedCall, PlannedSession, plan
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook

DAY_S = 86_400.0
WORKDAY_START_H, WORKDAY_HOURS = 8, 10  # sessions start in working hours (UTC)
ROLLUP_KEYS = ("customer_id", "feature")  # as examples/demo/analytics.yaml rolls up
BATCH = 500  # records per write_batch: one transaction each


async def backfill(
    database_url: str, days: int, requests_per_day: int, seed: int, now: float | None = None
) -> int:
    """Write the history; the number of records written."""
    now = time.time() if now is None else now
    engine = create_engine_for(database_url)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(ROLLUP_KEYS)
    written = 0
    try:
        await upgrade_engine(engine)
        for day in range(days, 0, -1):
            day_start = (now // DAY_S - day) * DAY_S
            records = list(day_records(seed, day, day_start, requests_per_day))
            for i in range(0, len(records), BATCH):
                await store.write_batch(records[i : i + BATCH])
            written += len(records)
    finally:
        await store.close()
        await engine.dispose()
    return written


def day_records(seed: int, day: int, day_start: float, requests: int) -> Iterator[LedgerRecord]:
    """One past day's records (request ids unique per seed and day: a rerun adds none)."""
    rng = random.Random(f"{seed}:{day}")
    prices = PriceBook()
    day_plan = plan(seed * 1000 + day, requests)
    for session in day_plan.sessions:
        begin = day_start + (WORKDAY_START_H + rng.random() * WORKDAY_HOURS) * 3600
        gap = rng.choice((20.0, 60.0, 300.0))  # seconds between a session's turns
        for turn, call in enumerate(session.calls):
            request_id = f"{session.session_id}-d{day}-{turn}"
            yield _record(rng, prices, session, call, request_id, begin + turn * gap)


def _record(
    rng: random.Random,
    prices: PriceBook,
    session: PlannedSession,
    call: PlannedCall,
    request_id: str,
    ts: float,
) -> LedgerRecord:
    provider = "anthropic" if call.model.startswith("claude") else "openai"
    status = rng.choice((200,) * 30 + (429, 503))
    blocked = session.looping and rng.random() < 0.4
    status = 429 if blocked else status
    ok = status == 200
    usage = Usage(
        input_tokens=rng.randint(300, 6000) * (8 if session.looping else 1),
        output_tokens=min(call.max_tokens, rng.randint(20, 600)),
    )
    priced = prices.price(provider, call.model, usage) if ok else None
    workflow = session.workflow
    return LedgerRecord(
        request_id=request_id,
        ts=ts,
        user_id=session.user.user_id,
        team=session.user.team,
        project=session.project,
        session_id=f"{session.session_id}-d",
        workflow_tag=workflow.tag if workflow else None,
        metadata=dict(call.metadata),
        client_api="anthropic_messages" if session.tool.client == "anthropic" else "openai_chat",
        client_tool=session.tool.name,
        requested_model=call.model,
        provider=provider if not blocked else None,
        model=call.model,
        status_code=status,
        error_type=None if ok else ("rate_limited" if status == 429 else "upstream_error"),
        input_tokens=usage.input_tokens if ok else None,
        output_tokens=usage.output_tokens if ok else None,
        usage_source="provider" if ok else None,
        cost_usd=priced.cost_usd if priced else None,
        price_id=priced.price_id if priced else None,
        price_version=priced.price_version if priced else None,
        latency_ms=rng.lognormvariate(6.5, 0.6),
        ttft_ms=rng.lognormvariate(5.5, 0.5) if call.stream else None,
        stream=call.stream,
        attempt_count=0 if blocked else 1,
        policy_events=[
            PolicyEvent(kind="rate_limit", rule_id="refactor-agent-loop-guard", action="hard_block")
        ]
        if blocked
        else [],
    )
