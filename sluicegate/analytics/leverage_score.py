"""The leverage score of one session (seed 000, "A Diagnostic Score, Not a Leaderboard"),
written from its specification: a pure function of a session's figures.

    outcome points       25 per incident resolved, 15 per PR merged, 10 per ticket
                         closed, 20 x the mean pass rate of its eval runs (0..1)
    governance penalty   2 per budget hit, 1 per rate-limit hit, 3 per guardrail block
                         (information, not a moral failing: small)
    waste penalty        retry tokens / 10,000 + 10 x unused context ratio + 15 when the
                         session is flagged as a loop
    cost dampener        cost ** 0.4 (sub-linear: an expensive session is not punished
                         for its size), at least 0.01
    score                (outcome points - governance - waste) / dampener, clamped to 0..100

A session is scored, never a person: the panel aggregates scores by workflow tag only.
Every input is defined in docs/analytics.md; the weights are the tables below, so a
reader sees the whole formula in one place.
"""

from __future__ import annotations

import msgspec

from sluicegate.outcomes.model import OutcomeKind

# points per outcome of each kind (an eval run counts its pass rate, 0..1, times this)
OUTCOME_POINTS: dict[OutcomeKind, float] = {
    OutcomeKind.INCIDENT_RESOLVED: 25.0,
    OutcomeKind.PR_MERGED: 15.0,
    OutcomeKind.TICKET_CLOSED: 10.0,
    OutcomeKind.EVAL_RUN: 20.0,
}
# penalty per request a control acted on
GOVERNANCE_PENALTY: dict[str, float] = {
    "budget_hits": 2.0,
    "rate_limit_hits": 1.0,
    "guardrail_blocks": 3.0,
}
RETRY_TOKENS_PER_POINT = 10_000.0
UNUSED_CONTEXT_WEIGHT = 10.0
LOOP_PENALTY = 15.0
COST_EXPONENT = 0.4
MIN_DAMPENER = 0.01
MAX_SCORE = 100.0


class ScoreInputs(msgspec.Struct, kw_only=True, frozen=True):
    """What the score reads of one session."""

    incidents_resolved: int = 0
    prs_merged: int = 0
    tickets_closed: int = 0
    eval_pass_rate: float = 0.0  # mean over its eval runs; 0 without one
    budget_hits: int = 0
    rate_limit_hits: int = 0
    guardrail_blocks: int = 0
    retry_tokens: int = 0
    unused_context_ratio: float = 0.0  # 0..1
    loop: bool = False
    cost_usd: float = 0.0


class Score(msgspec.Struct, kw_only=True, frozen=True):
    """The score and the parts it was made of (what a reader needs to see why)."""

    score: float
    outcome_points: float
    governance_penalty: float
    waste_penalty: float
    cost_dampener: float


def leverage_score(inputs: ScoreInputs) -> Score:
    outcome = (
        OUTCOME_POINTS[OutcomeKind.INCIDENT_RESOLVED] * inputs.incidents_resolved
        + OUTCOME_POINTS[OutcomeKind.PR_MERGED] * inputs.prs_merged
        + OUTCOME_POINTS[OutcomeKind.TICKET_CLOSED] * inputs.tickets_closed
        + OUTCOME_POINTS[OutcomeKind.EVAL_RUN] * inputs.eval_pass_rate
    )
    governance = (
        GOVERNANCE_PENALTY["budget_hits"] * inputs.budget_hits
        + GOVERNANCE_PENALTY["rate_limit_hits"] * inputs.rate_limit_hits
        + GOVERNANCE_PENALTY["guardrail_blocks"] * inputs.guardrail_blocks
    )
    waste = (
        inputs.retry_tokens / RETRY_TOKENS_PER_POINT
        + UNUSED_CONTEXT_WEIGHT * inputs.unused_context_ratio
        + (LOOP_PENALTY if inputs.loop else 0.0)
    )
    # A session with no cost (nothing priced) is divided by the floor, as the seed does.
    dampener = max(max(inputs.cost_usd, 0.0) ** COST_EXPONENT, MIN_DAMPENER)
    raw = (outcome - governance - waste) / dampener
    return Score(
        score=min(max(raw, 0.0), MAX_SCORE),
        outcome_points=outcome,
        governance_penalty=governance,
        waste_penalty=waste,
        cost_dampener=dampener,
    )


def unused_context_ratio(wasted_input_tokens: int, input_tokens: int) -> float:
    """The share of a session's input tokens sent in requests whose answer nobody used (it
    failed, or its client left before the end); 0 for a session with no input."""
    if input_tokens <= 0:
        return 0.0
    return min(max(wasted_input_tokens / input_tokens, 0.0), 1.0)
