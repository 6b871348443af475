"""What the session panels should say, computed apart from them: each session's figures
by direct SQL over the raw `requests` rows (grouped by session id, its last request in
the window), the JSON event lists read back and counted here, the outcomes table read
row by row, and the seed's score function written out again from its text."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.schema import outcomes, requests

R = requests.c


@dataclass
class RefSession:
    session_id: str
    first_ts: float
    last_ts: float
    team: str
    project: str
    workflow: str
    user_id: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    retry_tokens: int
    wasted_input_tokens: int
    rate_limit_hits: int = 0
    budget_hits: int = 0
    guardrail_blocks: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pass_rates: list[float] = field(default_factory=list)

    @property
    def outcomes(self) -> int:
        return sum(self.kinds.values())


async def raw_sessions(engine: AsyncEngine, since: float, until: float) -> dict[str, RefSession]:
    """Sessions whose last request is in [since, until), from raw rows."""
    error = ~R.status_code.between(200, 399)
    inputs = func.coalesce(R.input_tokens, 0)
    outputs = func.coalesce(R.output_tokens, 0)
    resent = inputs * case((R.attempt_count > 1, R.attempt_count - 1), else_=0)
    stmt = (
        select(
            R.session_id,
            func.min(R.ts).label("first_ts"),
            func.max(R.ts).label("last_ts"),
            func.max(func.coalesce(R.team, "")).label("team"),
            func.max(func.coalesce(R.project, "UNTAGGED")).label("project"),
            func.max(func.coalesce(R.workflow_tag, "")).label("workflow"),
            func.max(func.coalesce(R.user_id, "")).label("user_id"),
            func.count().label("requests"),
            func.sum(cast(error, Integer)).label("errors"),
            func.sum(inputs).label("input_tokens"),
            func.sum(outputs).label("output_tokens"),
            func.sum(func.coalesce(R.cost_usd, 0.0)).label("cost_usd"),
            func.sum(resent + case((error, inputs + outputs), else_=0)).label("retry_tokens"),
            func.sum(case((error | R.client_disconnected, inputs), else_=0)).label("wasted"),
        )
        .where(R.session_id.is_not(None))
        .group_by(R.session_id)
        .having(func.max(R.ts) >= since, func.max(R.ts) < until)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
        found = {
            row["session_id"]: RefSession(
                session_id=row["session_id"],
                first_ts=float(row["first_ts"]),
                last_ts=float(row["last_ts"]),
                team=row["team"],
                project=row["project"],
                workflow=row["workflow"],
                user_id=row["user_id"],
                requests=int(row["requests"]),
                errors=int(row["errors"]),
                input_tokens=int(row["input_tokens"]),
                output_tokens=int(row["output_tokens"]),
                cost_usd=float(row["cost_usd"]),
                retry_tokens=int(row["retry_tokens"]),
                wasted_input_tokens=int(row["wasted"]),
            )
            for row in rows
        }
        events = await conn.execute(
            select(R.session_id, R.policy_events, R.guardrail_events).where(
                R.session_id.in_(list(found))
            )
        )
        for session_id, policy, guardrail in events:
            ref = found[session_id]
            kinds = {event["kind"] for event in policy}
            ref.rate_limit_hits += "rate_limit" in kinds
            ref.budget_hits += "budget" in kinds
            ref.guardrail_blocks += any(g.get("action") == "block" for g in guardrail)
        for session_id, kind, pass_rate in await conn.execute(
            select(outcomes.c.session_id, outcomes.c.kind, outcomes.c.pass_rate)
        ):
            if session_id in found:
                found[session_id].kinds[kind] += 1
                if pass_rate is not None:
                    found[session_id].pass_rates.append(float(pass_rate))
    return found


def tokens_per_hour(s: RefSession) -> float:
    return (s.input_tokens + s.output_tokens) * 3600.0 / max(s.last_ts - s.first_ts, 3600.0)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def seed_score(session: dict[str, Any]) -> float:
    """Seed 000's `ai_leverage_score`, as its text gives it (the specification)."""
    outcome_score = (
        session.get("incidents_resolved", 0) * 25
        + session.get("prs_merged", 0) * 15
        + session.get("tickets_closed", 0) * 10
        + session.get("eval_pass_rate", 0) * 20
    )
    governance_penalty = (
        session.get("budget_limit_hits", 0) * 2
        + session.get("rate_limit_hits", 0) * 1
        + session.get("guardrail_blocks", 0) * 3
    )
    retry_tokens = session.get("retry_token_count", 0)
    context_waste = session.get("unused_context_ratio", 0.0)
    loop_flag = 1 if session.get("tokens_per_hr", 0) > 3 * session.get("p95_baseline", 1) else 0
    waste_penalty = (retry_tokens / 10000) + (context_waste * 10) + (loop_flag * 15)
    cost_usd = session.get("total_cost_usd", 0.01)
    cost_dampener = cost_usd**0.4
    raw = (outcome_score - governance_penalty - waste_penalty) / max(cost_dampener, 0.01)
    return max(0.0, min(100.0, raw))


def seed_inputs(s: RefSession, baseline: float | None) -> dict[str, Any]:
    """A session as the seed's function reads it (no baseline: never a loop)."""
    values: dict[str, Any] = {
        "incidents_resolved": s.kinds.get("incident_resolved", 0),
        "prs_merged": s.kinds.get("pr_merged", 0),
        "tickets_closed": s.kinds.get("ticket_closed", 0),
        "eval_pass_rate": sum(s.pass_rates) / len(s.pass_rates) if s.pass_rates else 0.0,
        "budget_limit_hits": s.budget_hits,
        "rate_limit_hits": s.rate_limit_hits,
        "guardrail_blocks": s.guardrail_blocks,
        "retry_token_count": s.retry_tokens,
        "unused_context_ratio": s.wasted_input_tokens / s.input_tokens if s.input_tokens else 0.0,
        "tokens_per_hr": tokens_per_hour(s),
        "total_cost_usd": s.cost_usd,
    }
    if baseline is not None:
        values["p95_baseline"] = baseline
    else:
        values["tokens_per_hr"] = 0
    return values
