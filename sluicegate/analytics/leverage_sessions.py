"""Sessions scored, and scores tallied: what the leverage panel shows per workflow.

    a session's figures + its workflow's Baseline --score_inputs--> ScoreInputs --> Score
    sessions scored in SQL (leverage_sql), by workflow and score
        --Tally.add_group--> running sums per workflow --Tally.summary--> ScoreSummary

Each input of the score is derived from one session's row (docs/analytics.md):
outcome counts and the mean eval pass rate from `outcomes`; rate-limit hits, budget
hits and guardrail blocks, retry tokens and the unused context ratio from
`rollup_sessions`; the loop flag from its token rate against its workflow's baseline.
A tally keeps each session's score and sums, never the session: the panel scores up to
tens of thousands of sessions per answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

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


def score_inputs(
    figures: Mapping[str, Any], eval_pass_rate: float | None, loop: bool | None
) -> ScoreInputs:
    """A session's score inputs from its figures (a session row, or a `SessionFigures`
    as builtins: the same names)."""
    return ScoreInputs(
        incidents_resolved=int(figures["incident_resolved"]),
        prs_merged=int(figures["pr_merged"]),
        tickets_closed=int(figures["ticket_closed"]),
        eval_pass_rate=eval_pass_rate or 0.0,
        budget_hits=int(figures["budget_hits"]),
        rate_limit_hits=int(figures["rate_limit_hits"]),
        guardrail_blocks=int(figures["guardrail_blocks"]),
        retry_tokens=int(figures["retry_tokens"]),
        unused_context_ratio=unused_context_ratio(
            int(figures["wasted_input_tokens"]), int(figures["input_tokens"])
        ),
        loop=bool(loop),
        cost_usd=float(figures["cost_usd"] or 0.0),
    )


def session_rate(figures: Mapping[str, Any]) -> float:
    tokens = int(figures["input_tokens"]) + int(figures["output_tokens"])
    return tokens_per_hour(tokens, float(figures["first_ts"]), float(figures["last_ts"]))


class ScoredSession(msgspec.Struct, kw_only=True, frozen=True):
    session: SessionFigures
    inputs: ScoreInputs
    result: Score
    tokens_per_hour: float
    loop: bool | None  # None: its workflow had no baseline to compare with


def score_session(session: SessionFigures, baseline: Baseline | None) -> ScoredSession:
    figures = msgspec.structs.asdict(session)
    rate = session_rate(figures)
    loop = is_loop(rate, baseline)
    inputs = score_inputs(figures, session.eval_pass_rate, loop)
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


class Tally:
    """Scores of sessions, and the sums of what explains them."""

    _SUMS = (
        "traced",
        "loops",
        "unchecked",
        "outcomes",
        "cost",
        "tokens",
        "retry",
        "rate_limit",
        "budget",
        "guardrail",
        "unused",
        "points",
        "governance",
        "waste",
    )

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.sums: dict[str, float] = dict.fromkeys(self._SUMS, 0)

    def add_group(self, row: Mapping[str, Any]) -> None:
        """Count in `n` sessions that share one score (a row of
        `leverage_sql.scored_statement`, which scored them)."""
        n = int(row["n"])
        self.scores += [float(row["score"])] * n
        sums = self.sums
        for name, column in _GROUP_COUNTS:  # PostgreSQL sums bigint into numeric
            sums[name] += int(row[column] or 0)
        for name, column in _GROUP_FIGURES:
            sums[name] += float(row[column] or 0.0)

    @classmethod
    def of(cls, tallies: Iterable[Tally]) -> Tally:
        merged = cls()
        for tally in tallies:
            merged.scores += tally.scores
            for name, value in tally.sums.items():
                merged.sums[name] += value
        return merged

    def summary(self) -> ScoreSummary:
        n, s = len(self.scores), self.sums
        return ScoreSummary(
            sessions=n,
            score_mean=_round(statistics.fmean(self.scores)) if n else None,
            score_median=_round(statistics.median(self.scores)) if n else None,
            traced_sessions=int(s["traced"]),
            loop_sessions=int(s["loops"]),
            unchecked_sessions=int(s["unchecked"]),
            outcomes=int(s["outcomes"]),
            cost_usd=round(s["cost"], 9) + 0.0,
            tokens=int(s["tokens"]),
            retry_tokens=int(s["retry"]),
            rate_limit_hits=int(s["rate_limit"]),
            budget_hits=int(s["budget"]),
            guardrail_blocks=int(s["guardrail"]),
            unused_context_share=_round(s["unused"] / n) if n else None,
            outcome_points_mean=_round(s["points"] / n) if n else None,
            governance_penalty_mean=_round(s["governance"] / n) if n else None,
            waste_penalty_mean=_round(s["waste"] / n) if n else None,
        )


# Tally's sums, and the column of a scored row that adds to each: counts, then figures
_GROUP_COUNTS = (
    ("traced", "traced"),
    ("loops", "loops"),
    ("unchecked", "unchecked"),
    ("outcomes", "outcomes"),
    ("tokens", "tokens"),
    ("retry", "retry_tokens"),
    ("rate_limit", "rate_limit_hits"),
    ("budget", "budget_hits"),
    ("guardrail", "guardrail_blocks"),
)
_GROUP_FIGURES = (
    ("cost", "cost_usd"),
    ("unused", "unused"),
    ("points", "points"),
    ("governance", "governance"),
    ("waste", "waste"),
)


def _round(value: float) -> float:
    return round(value, DIGITS) + 0.0
