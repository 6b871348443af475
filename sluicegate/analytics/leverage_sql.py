"""The leverage score computed in SQL: the newest sessions of a selection scored where
they are stored, and handed back grouped by (workflow tag, score).

    picked    the newest `limit` sessions (the columns the score reads, no others)
    inputs    + their outcomes; eval pass rate, unused context ratio, token rate, loop
    parts     outcome points, governance penalty, waste penalty, cost dampener
    scored    the score, clamped to 0..100
    result    per (workflow tag, score): how many sessions, and the sums that explain it

Every step is `leverage_score.leverage_score` and `loop_baseline` term for term, in the
same order of operations on doubles (a session's score here equals the one its listing
shows, which Python computes; tests/analytics/test_leverage_panel.py holds them equal).
Each step is a MATERIALIZED CTE, computed once per session: as subqueries, both databases
inline them, and each reference to a step's column repeats its whole expression (the
score's clamp reads the raw score three times, the loop threshold a CASE per workflow),
several times slower. A workflow's sessions share few distinct scores (every session
with no outcome scores 0), so the rows handed back are far fewer than the sessions, and
each workflow's mean and median come exactly from them (`leverage_sessions.Tally.add_group`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Double, Select, case, cast, func, literal, null, select

from sluicegate.analytics.leverage_score import (
    COST_EXPONENT,
    GOVERNANCE_PENALTY,
    LOOP_PENALTY,
    MAX_SCORE,
    MIN_DAMPENER,
    OUTCOME_POINTS,
    RETRY_TOKENS_PER_POINT,
    UNUSED_CONTEXT_WEIGHT,
)
from sluicegate.analytics.loop_baseline import LOOP_FACTOR, RATE_FLOOR_S, Baseline
from sluicegate.analytics.session_sql import S, SessionSelection, collated, conditions, outcomes_of
from sluicegate.outcomes.model import OutcomeKind

# what a score reads of a session row (besides its key, times and workflow)
READ = (
    "input_tokens",
    "output_tokens",
    "retry_tokens",
    "wasted_input_tokens",
    "rate_limit_hits",
    "budget_hits",
    "guardrail_blocks",
    "cost_usd",
)
COUNTED: tuple[str, ...] = ("outcomes", "tokens", "retry_tokens", "rate_limit_hits")
COUNTED += ("budget_hits", "guardrail_blocks", "traced", "loops", "unchecked")
SUMMED = ("cost_usd", "unused", "points", "governance", "waste")


def _double(value: float) -> ColumnElement[float]:
    return literal(value, Double())


def _real(column: ColumnElement[Any]) -> ColumnElement[float]:
    return cast(column, Double())


def _clamped(value: ColumnElement[Any], low: float, high: float) -> ColumnElement[float]:
    """min(max(value, low), high), as Python's: a value equal to a bound stays itself."""
    return case((value < low, _double(low)), (value > high, _double(high)), else_=value)


def scored_statement(
    selection: SessionSelection,
    dialect: str,
    known: Mapping[str, Baseline],
    *,
    limit: int,
) -> Select[Any]:
    """The newest `limit` sessions of the selection scored, one row per (workflow_tag,
    score): `n` sessions, COUNTED and SUMMED summed, `oldest` (their first last_ts)."""
    sid = collated(S.session_id, dialect)
    columns = [S[name] for name in ("session_id", "first_ts", "last_ts", "workflow_tag", *READ)]
    picked = (
        select(*columns)
        .where(*conditions(selection))
        .order_by(S.last_ts.desc(), sid.desc())
        .limit(limit)
        .cte("picked")
    )
    P = picked.c
    joined = outcomes_of(select(P.session_id))
    J = joined.c
    kinds = {kind: func.coalesce(J[f"n_{kind.value}"], 0) for kind in OutcomeKind}
    rated = func.coalesce(J.rated, 0)
    span = P.last_ts - P.first_ts
    floor = _double(RATE_FLOOR_S)
    tokens = P.input_tokens + P.output_tokens
    rate = _real(tokens) * _double(3600.0) / case((span > floor, span), else_=floor)
    inputs = (
        select(
            P.workflow_tag,
            P.last_ts,
            *(P[name] for name in READ if name != "cost_usd"),
            tokens.label("tokens"),
            func.coalesce(P.cost_usd, _double(0.0)).label("cost_usd"),
            func.coalesce(J.outcomes, 0).label("outcomes"),
            *(kinds[kind].label(kind.value) for kind in OutcomeKind),
            case((rated > 0, _real(J.pass_rate_sum) / rated), else_=_double(0.0)).label(
                "pass_rate"
            ),
            case(
                (P.input_tokens <= 0, _double(0.0)),
                else_=_clamped(_real(P.wasted_input_tokens) / P.input_tokens, 0.0, 1.0),
            ).label("unused"),
            rate.label("rate"),
            _threshold(P.workflow_tag, known).label("threshold"),
        )
        .select_from(picked.outerjoin(joined, J.session_id == P.session_id))
        .cte("inputs")
        .prefix_with("MATERIALIZED")
    )
    I = inputs.c  # noqa: E741  (as S and P: a step's initial)
    looping = I.rate > I.threshold  # NULL (neither) with no baseline
    points = (
        _double(OUTCOME_POINTS[OutcomeKind.INCIDENT_RESOLVED]) * I.incident_resolved
        + _double(OUTCOME_POINTS[OutcomeKind.PR_MERGED]) * I.pr_merged
        + _double(OUTCOME_POINTS[OutcomeKind.TICKET_CLOSED]) * I.ticket_closed
        + _double(OUTCOME_POINTS[OutcomeKind.EVAL_RUN]) * I.pass_rate
    )
    governance = (
        _double(GOVERNANCE_PENALTY["budget_hits"]) * I.budget_hits
        + _double(GOVERNANCE_PENALTY["rate_limit_hits"]) * I.rate_limit_hits
        + _double(GOVERNANCE_PENALTY["guardrail_blocks"]) * I.guardrail_blocks
    )
    waste = (
        _real(I.retry_tokens) / _double(RETRY_TOKENS_PER_POINT)
        + _double(UNUSED_CONTEXT_WEIGHT) * I.unused
        + case((looping, _double(LOOP_PENALTY)), else_=_double(0.0))
    )
    cost = case((I.cost_usd > 0.0, I.cost_usd), else_=_double(0.0))
    damped = func.power(cost, _double(COST_EXPONENT))
    parts = (
        select(
            *(I[name] for name in ("workflow_tag", "last_ts", "cost_usd", "unused")),
            *(I[name] for name in ("outcomes", "tokens", "retry_tokens", "rate_limit_hits")),
            *(I[name] for name in ("budget_hits", "guardrail_blocks")),
            case((looping, 1), else_=0).label("loops"),
            case((I.threshold.is_(None), 1), else_=0).label("unchecked"),
            points.label("points"),
            governance.label("governance"),
            waste.label("waste"),
            case((damped < MIN_DAMPENER, _double(MIN_DAMPENER)), else_=damped).label("dampener"),
        )
        .cte("parts")
        .prefix_with("MATERIALIZED")
    )
    R = parts.c
    raw = (R.points - R.governance - R.waste) / R.dampener
    scored = select(
        *R,
        _clamped(raw, 0.0, MAX_SCORE).label("score"),
        case((R.outcomes > 0, 1), else_=0).label("traced"),
    ).subquery("scored")
    C = scored.c
    workflow = collated(C.workflow_tag, dialect)
    return (
        select(
            workflow.label("workflow_tag"),
            C.score,
            func.count().label("n"),
            *(func.sum(C[name]).label(name) for name in (*COUNTED, *SUMMED)),
            func.min(C.last_ts).label("oldest"),
        )
        .group_by(workflow, C.score)
        .order_by(workflow, C.score)
        .limit(limit)
    )


def _threshold(workflow: ColumnElement[str], known: Mapping[str, Baseline]) -> ColumnElement[Any]:
    """LOOP_FACTOR x the workflow's baseline (multiplied here, as `loop_baseline.is_loop`
    does), NULL with none: a session is a loop when its rate is over it."""
    if not known:
        return cast(null(), Double())
    return case(
        {name: _double(LOOP_FACTOR * b.tokens_per_hour) for name, b in known.items()},
        value=workflow,
        else_=null(),
    )
