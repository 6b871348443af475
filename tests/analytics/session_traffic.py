"""Agent sessions and what they produced, for the outcome-join and leverage panels: each
session one workflow, team and project, a few to many requests over minutes to hours
(errors, retries, clients leaving, rate-limit and budget events, guardrail blocks),
some sessions looping (far more tokens an hour than their workflow's usual), and
outcomes of every kind joined by session id (some arriving long after the session,
some naming a session the ledger never saw). Seeded, so a failure replays."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.outcomes.model import NewOutcome, OutcomeKind, OutcomeSource
from sluicegate.outcomes.store import SqlOutcomeStore
from tests.analytics.landing import land

# workflow -> the outcome its sessions produce, and how often
WORKFLOWS: dict[str | None, tuple[OutcomeKind | None, float]] = {
    "review": (OutcomeKind.PR_MERGED, 0.6),
    "triage": (OutcomeKind.TICKET_CLOSED, 0.5),
    "oncall": (OutcomeKind.INCIDENT_RESOLVED, 0.4),
    "evals": (OutcomeKind.EVAL_RUN, 0.8),
    "sandbox": (None, 0.0),  # spend, never an outcome: untraced
    None: (OutcomeKind.PR_MERGED, 0.3),  # sessions that send no workflow tag
}
TEAMS = ("search", "data", "infra")
PROJECTS = ("alpha", "beta", None)
USERS = ("ana", "bo", "cy", "di")
STATUSES = (*[200] * 14, 429, 500, 502, 499)
LENGTHS_S = (30.0, 600.0, 1800.0, 3 * 3600.0, 9 * 3600.0)


@dataclass
class Sessions:
    records: list[LedgerRecord] = field(default_factory=list)
    outcomes: list[NewOutcome] = field(default_factory=list)


def session_traffic(
    sessions: int,
    *,
    start: float,
    span_s: float,
    seed: int = 5,
    prefix: str = "s",
    loop_share: float = 0.08,
    workflows: tuple[str | None, ...] = tuple(WORKFLOWS),
) -> Sessions:
    """`sessions` sessions beginning in [start, start + span_s), with their outcomes."""
    rng = random.Random(seed)
    out = Sessions()
    for i in range(sessions):
        session_id = f"{prefix}-{i:04d}"
        workflow = rng.choice(workflows)
        identity = {
            "session_id": session_id,
            "workflow_tag": workflow,
            "team": rng.choice(TEAMS),
            "project": rng.choice(PROJECTS),
            "user_id": rng.choice(USERS),
            "client_tool": rng.choice(("cursor", "claude-code")),
        }
        begin = start + rng.random() * span_s
        length = rng.choice(LENGTHS_S)
        looping = rng.random() < loop_share
        for j in range(rng.randint(1, 9)):
            ts = begin + (length * j / 8 if j else 0.0)
            out.records.append(_request(rng, f"{session_id}-{j}", ts, looping, identity))
        kind, chance = WORKFLOWS[workflow]
        if kind is not None and rng.random() < chance:
            for n in range(rng.choice((1, 1, 1, 2, 3))):
                late = rng.choice((0.0, 0.0, 2 * 86400.0))  # merged two days later
                out.outcomes.append(
                    NewOutcome(
                        source=OutcomeSource.API,
                        external_id=f"{session_id}-out-{n}",
                        kind=kind,
                        session_id=session_id,
                        pass_rate=round(rng.random(), 3) if kind is OutcomeKind.EVAL_RUN else None,
                        ts=begin + length + late,
                    )
                )
    return out


def _request(
    rng: random.Random, request_id: str, ts: float, looping: bool, identity: dict[str, str | None]
) -> LedgerRecord:
    status = rng.choice(STATUSES)
    ok = 200 <= status < 400
    has_usage = ok or status == 499  # a client that left is billed what it consumed
    scale = 40 if looping else 1
    kinds = rng.sample(("rate_limit", "budget"), rng.choice((0, 0, 0, 0, 1)))
    return LedgerRecord(
        request_id=request_id,
        ts=ts,
        **identity,  # type: ignore[arg-type]
        client_api="openai_chat",
        requested_model="gpt-4o",
        provider="openai" if status else None,
        model="gpt-4o",
        status_code=status,
        error_type=None if ok else "upstream_error",
        input_tokens=rng.randint(200, 6000) * scale if has_usage else None,
        output_tokens=rng.randint(10, 900) * scale if has_usage else None,
        cost_usd=round(rng.random() / 10 * scale, 6) if has_usage else None,
        latency_ms=rng.uniform(100, 4000),
        attempt_count=rng.choice((1, 1, 1, 2, 3)),
        retry_used=rng.random() < 0.2,
        client_disconnected=status == 499,
        policy_events=[
            PolicyEvent(kind=k, rule_id=f"{k}-rule", action="hard_block") for k in kinds
        ],
        guardrail_events=[{"guardrail": "pii", "phase": "input", "action": "block"}]
        if rng.random() < 0.03
        else [],
    )


def orphan_outcomes(count: int, *, ts: float) -> list[NewOutcome]:
    """Outcomes naming sessions no request ever carried."""
    return [
        NewOutcome(
            source=OutcomeSource.API,
            external_id=f"ghost-{i}",
            kind=OutcomeKind.PR_MERGED,
            session_id=f"ghost-session-{i}",
            ts=ts + i,
        )
        for i in range(count)
    ]


async def land_sessions(
    engine: AsyncEngine, *parts: Sessions, orphans: int = 0, ts: float = 0.0
) -> None:
    """The records landed with their rollups, and the outcomes recorded by the store."""
    records = [r for part in parts for r in part.records]
    await land(engine, records)
    store = SqlOutcomeStore(engine)
    for outcome in [
        *(o for part in parts for o in part.outcomes),
        *orphan_outcomes(orphans, ts=ts),
    ]:
        await store.record(outcome)
