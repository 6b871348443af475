"""History for the demo: `days` past days of the organisation's requests written straight
into the ledger with the gateway's own store code (`SqlLedgerStore.write_batch`, which
adds the rollups in the same transaction), so 7-day baselines and 30-day windows have
data. Each day is planned like live traffic (seed and date) and priced with the gateway's
price book; tokens, latency and statuses are drawn from the same seeded generator."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade_engine
from sluicegate.demo.plan import DemoPlan, PlannedCall, PlannedSession, plan
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.model.usage import Usage
from sluicegate.outcomes.model import NewOutcome, OutcomeKind, OutcomeSource
from sluicegate.outcomes.store import SqlOutcomeStore
from sluicegate.pricing import PriceBook

DAY_S = 86_400.0
WORKDAY_START_H, WORKDAY_HOURS = 8, 10  # sessions start in working hours (UTC)
ROLLUP_KEYS = ("customer_id", "feature")  # as examples/demo/analytics.yaml rolls up
BATCH = 500  # records per write_batch: one transaction each


async def backfill(
    database_url: str, days: int, requests_per_day: int, seed: int, now: float | None = None
) -> int:
    """Write the history (and the outcomes its sessions produced, recorded by the outcome
    store as `POST /api/outcomes` records them); the number of records written."""
    now = time.time() if now is None else now
    engine = create_engine_for(database_url)
    store = SqlLedgerStore(engine)
    outcomes = SqlOutcomeStore(engine)
    store.set_rollup_keys(ROLLUP_KEYS)
    written = 0
    try:
        await upgrade_engine(engine)
        for day in range(days, 0, -1):
            day_start = (now // DAY_S - day) * DAY_S
            date = time.strftime("%Y%m%d", time.gmtime(day_start))
            # Ids carry the date: a rerun (a restarted `make demo`) adds only new days.
            day_plan = plan(
                f"{seed}-{date}", requests_per_day, looping=False, prefix=f"demo-{seed}-{date}"
            )
            records = list(day_records(day_plan, day_start))
            for i in range(0, len(records), BATCH):
                await store.write_batch(records[i : i + BATCH])
            for outcome in day_outcomes(day_plan, records):
                await outcomes.record(outcome)
            written += len(records)
    finally:
        await store.close()
        await engine.dispose()
    return written


def day_records(day_plan: DemoPlan, day_start: float) -> Iterator[LedgerRecord]:
    """One past day's records."""
    rng = random.Random(f"{day_plan.seed}:records")
    prices = PriceBook()
    for session in day_plan.sessions:
        begin = day_start + (WORKDAY_START_H + rng.random() * WORKDAY_HOURS) * 3600
        gap = rng.choice((20.0, 60.0, 300.0))  # seconds between a session's turns
        for turn, call in enumerate(session.calls):
            request_id = f"{session.session_id}-{turn}"
            yield _record(rng, prices, session, call, request_id, begin + turn * gap, turn)


def day_outcomes(day_plan: DemoPlan, records: list[LedgerRecord]) -> Iterator[NewOutcome]:
    """The planned outcomes of one past day's sessions, an hour after their last call."""
    ended: dict[str, float] = {}
    for record in records:
        if record.session_id is not None:
            ended[record.session_id] = max(ended.get(record.session_id, 0.0), record.ts)
    for session in day_plan.sessions:
        if session.outcome is None or session.session_id not in ended:
            continue
        yield NewOutcome(
            source=OutcomeSource.API,
            external_id=session.outcome.external_id,
            kind=OutcomeKind(session.outcome.kind),
            session_id=session.session_id,
            workflow_tag=session.workflow.tag if session.workflow else None,
            ts=ended[session.session_id] + 3600,
        )


def _record(
    rng: random.Random,
    prices: PriceBook,
    session: PlannedSession,
    call: PlannedCall,
    request_id: str,
    ts: float,
    turn: int,
) -> LedgerRecord:
    provider = "anthropic" if call.model.startswith("claude") else "openai"
    status = rng.choice((200,) * 30 + (429, 503))
    blocked = status == 429  # a rate limit refused it before any provider
    ok = status == 200
    # Live calls' scale (what the emulator counts for the demo's prompts, the
    # conversation growing a turn at a time), so live sessions compare with these days.
    usage = Usage(
        input_tokens=rng.randint(30, 120) * min(turn + 1, 4),
        output_tokens=rng.randint(20, min(call.max_tokens, 300)),
    )
    priced = prices.price(provider, call.model, usage) if ok else None
    workflow = session.workflow
    return LedgerRecord(
        request_id=request_id,
        ts=ts,
        user_id=session.user.user_id,
        team=session.user.team,
        project=session.project,
        session_id=session.session_id,
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
            PolicyEvent(kind="rate_limit", rule_id="per-user-burst", action="hard_block")
        ]
        if blocked
        else [],
    )
