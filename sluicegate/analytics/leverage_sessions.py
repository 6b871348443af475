"""Sessions scored, and scores summarised: what the leverage panel shows per workflow.

    SessionFigures + the workflow's Baseline --score_session--> ScoredSession
    [ScoredSession] --summarise--> ScoreSummary (mean, median, and what they rest on)

Each input of the score is derived from one session's row (docs/analytics.md):
outcome counts and the mean eval pass rate from `outcomes`; rate-limit hits, budget
hits and guardrail blocks, retry tokens and the unused context ratio from
`rollup_sessions`; the loop flag from its token rate against its workflow's baseline.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import msgspec

from sluicegate.analytics.leverage_score import (
    Score,
    ScoreInputs,
    leverage_score,
    unused_context_ratio,
)
from sluicegate.analytics.loop_baseline import Baseline, is_loop, tokens_per_hour
from sluicegate.analytics.sessions import SessionFigures

DIGITS = 6  # scores and means as shown (the figures under them are exact)


class ScoredSession(msgspec.Struct, kw_only=True, frozen=True):
    session: SessionFigures
    inputs: ScoreInputs
    result: Score
    tokens_per_hour: float
    loop: bool | None  # None: its workflow had no baseline to compare with


def score_session(session: SessionFigures, baseline: Baseline | None) -> ScoredSession:
    rate = tokens_per_hour(
        session.input_tokens + session.output_tokens, session.first_ts, session.last_ts
    )
    loop = is_loop(rate, baseline)
    inputs = ScoreInputs(
        incidents_resolved=session.incident_resolved,
        prs_merged=session.pr_merged,
        tickets_closed=session.ticket_closed,
        eval_pass_rate=session.eval_pass_rate or 0.0,
        budget_hits=session.budget_hits,
        rate_limit_hits=session.rate_limit_hits,
        guardrail_blocks=session.guardrail_blocks,
        retry_tokens=session.retry_tokens,
        unused_context_ratio=unused_context_ratio(
            session.wasted_input_tokens, session.input_tokens
        ),
        loop=bool(loop),
        cost_usd=session.cost_usd,
    )
    return ScoredSession(
        session=session,
        inputs=inputs,
        result=leverage_score(inputs),
        tokens_per_hour=rate,
        loop=loop,
    )


class ScoreSummary(msgspec.Struct, kw_only=True, frozen=True):
    """Sessions' scores summarised, with the figures a reader needs to see why."""

    sessions: int
    score_mean: float | None
    score_median: float | None
    traced_sessions: int  # with at least one outcome
    loop_sessions: int
    unchecked_sessions: int  # no baseline: not checked for a loop
    outcomes: int
    cost_usd: float
    tokens: int  # input + output
    retry_tokens: int
    rate_limit_hits: int
    budget_hits: int
    guardrail_blocks: int
    unused_context_share: float | None  # the mean of the sessions' unused context ratios
    outcome_points_mean: float | None
    governance_penalty_mean: float | None
    waste_penalty_mean: float | None


def summarise(scored: Sequence[ScoredSession]) -> ScoreSummary:
    sessions = [s.session for s in scored]
    return ScoreSummary(
        sessions=len(scored),
        score_mean=_mean([s.result.score for s in scored]),
        score_median=_median([s.result.score for s in scored]),
        traced_sessions=sum(1 for s in sessions if s.outcomes),
        loop_sessions=sum(1 for s in scored if s.loop),
        unchecked_sessions=sum(1 for s in scored if s.loop is None),
        outcomes=sum(s.outcomes for s in sessions),
        cost_usd=round(sum(s.cost_usd for s in sessions), 9) + 0.0,
        tokens=sum(s.input_tokens + s.output_tokens for s in sessions),
        retry_tokens=sum(s.retry_tokens for s in sessions),
        rate_limit_hits=sum(s.rate_limit_hits for s in sessions),
        budget_hits=sum(s.budget_hits for s in sessions),
        guardrail_blocks=sum(s.guardrail_blocks for s in sessions),
        unused_context_share=_mean([s.inputs.unused_context_ratio for s in scored]),
        outcome_points_mean=_mean([s.result.outcome_points for s in scored]),
        governance_penalty_mean=_mean([s.result.governance_penalty for s in scored]),
        waste_penalty_mean=_mean([s.result.waste_penalty for s in scored]),
    )


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), DIGITS) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), DIGITS) if values else None
