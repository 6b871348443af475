"""`leverage`: seed 000's diagnostic score per session, aggregated by workflow tag only
(never by user): which workflow patterns turn spend into outcomes, and which loop,
retry, or run into the controls.

Each session in the window (its last request in it) is scored
(`analytics/leverage_score.py`, its inputs `analytics/leverage_sessions.py`), in SQL
(`analytics/leverage_sql.py`: the same function, handed back per workflow and score,
not per session; the listing scores its page in Python); a row is
a workflow with the mean and median score and `sessions`, the count they rest on, then
what explains them (traced sessions, loops, penalties). At most MAX_SCORED sessions are
scored, the newest first; an answer that scored fewer than the window holds says so.

Actions, for workflows with at least MIN_SESSIONS sessions: a share of sessions flagged
as loops (its agent's exit condition, a per-session token limit), no outcome joined
(instrument the join), controls acting on most sessions (the rate limits and budgets),
and tokens lost to retries, failures and abandoned answers (its route's fallbacks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.leverage_sessions import ScoreSummary, Tally, score_session
from sluicegate.analytics.leverage_sql import scored_statement
from sluicegate.analytics.loop_baseline import (
    LOOP_FACTOR,
    MIN_BASELINE_SESSIONS,
    Baseline,
    baselines,
)
from sluicegate.analytics.panels import controls, session_actions
from sluicegate.analytics.panels.base import (
    Action,
    Column,
    Control,
    ControlKind,
    Layer,
    PanelAnswer,
    PanelContext,
    Where,
)
from sluicegate.analytics.panels.common import NO_VALUE_LABEL, answer_of
from sluicegate.analytics.panels.session_listing import SessionAsk, SessionListing, listing
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.sessions import (
    SOURCE,
    SessionFigures,
    SessionReader,
    SessionSelection,
    grouping_of,
    selection_of,
)
from sluicegate.analytics.window import iso

MAX_SCORED = 10_000  # sessions scored per answer, the newest first
MIN_SESSIONS = 10  # a workflow's figures say little on fewer
LOOP_SHARE_ALERT = 0.25  # of a workflow's checked sessions flagged as loops
CONTROL_HITS_ALERT = 1.0  # hits of one kind per session, on average
WASTE_SHARE_ALERT = 0.2  # retry tokens of all tokens, or the mean unused context ratio
MAX_ACTIONS = 5  # of each kind, the costliest workflow first

RowKind = Literal["group", "other", "total"]


class LeverageRow(ScoreSummary, kw_only=True, frozen=True):
    group: dict[str, str | None]
    label: str
    kind: RowKind
    loop_baseline_tokens_per_hour: float | None = None  # the workflow's p95 (groups only)


class ScoredView(msgspec.Struct, kw_only=True, frozen=True):
    """One session as the listing shows it: figures, score and its parts, the loop check."""

    session: SessionFigures
    score: float
    outcome_points: float
    governance_penalty: float
    waste_penalty: float
    cost_dampener: float
    unused_context_ratio: float
    tokens_per_hour: float
    loop: bool | None
    loop_baseline_tokens_per_hour: float | None


COLUMNS = [
    Column("label", "workflow"),
    Column("sessions", "sessions"),
    Column("score_mean", "mean score"),
    Column("score_median", "median score"),
    Column("traced_sessions", "with outcome"),
    Column("outcomes", "outcomes"),
    Column("loop_sessions", "loops"),
    Column("cost_usd", "cost $"),
    Column("retry_tokens", "retry tokens"),
    Column("unused_context_share", "unused context"),
    Column("governance_penalty_mean", "governance"),
]


class LeveragePanel:
    name = "leverage"
    title = "Leverage by workflow"
    layer = Layer.OUTCOME
    question = (
        "Which workflows turn spend into outcomes, and which loop, retry or run into the "
        "controls (a diagnostic score per session, by workflow, never by person)?"
    )
    default_limit = 20

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "workflow_tag"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        q = query.query
        group = grouping_of(q.group_by, self.name, ("workflow_tag",))
        selection = selection_of(query, self.name)
        known = await baselines(context.reader, selection)
        tallies, oldest = await scored(context.reader, selection, known)
        summaries = {w: t.summary() for w, t in tallies.items()}
        ranked = sorted(summaries, key=lambda w: _rank(w, summaries[w]))
        rows = [_row(w, summaries[w], known) for w in ranked[: q.limit]]
        if len(ranked) > q.limit:
            rest = Tally.of(tallies[w] for w in ranked[q.limit :])
            rows.append(_aggregate(rest, "other", "other"))
        scored_n = sum(s.sessions for s in summaries.values())
        # fewer than the bound scored: that was every session of the window
        in_window = scored_n
        if scored_n >= MAX_SCORED:
            in_window = await SessionReader(context.reader).count(selection)
        answer = answer_of(
            self,
            query,
            source=SOURCE,
            columns=COLUMNS,
            rows=rows,
            totals=_aggregate(Tally.of(tallies.values()), "total", "total"),
            notes=_notes(in_window, scored_n, oldest, summaries, known),
            group_by=group,
        )
        answer.actions = _actions(context, [r for r in rows if r.kind == "group"])
        return answer

    async def sessions(
        self, context: PanelContext, query: ScopedQuery, ask: SessionAsk
    ) -> SessionListing:
        known = await baselines(context.reader, selection_of(query, self.name))

        async def describe(page: Sequence[SessionFigures]) -> list[Any]:
            return [_view(s, known.get(s.workflow_tag or "")) for s in page]

        return await listing(self.name, context, query, ask, describe)


PANEL = LeveragePanel()


async def scored(
    reader: AnalyticsReader, selection: SessionSelection, known: dict[str, Baseline]
) -> tuple[dict[str, Tally], float | None]:
    """The newest MAX_SCORED sessions of the selection scored, tallied per workflow ("" for
    none), and the oldest last request among them."""
    stmt = scored_statement(selection, reader.dialect, known, limit=MAX_SCORED)
    groups = await reader.run(stmt)
    tallies: dict[str, Tally] = defaultdict(Tally)
    for group in groups:
        tallies[group["workflow_tag"] or ""].add_group(group)
    return tallies, min((float(g["oldest"]) for g in groups), default=None)


def _rank(workflow: str, summary: ScoreSummary) -> tuple[float, int, str]:
    """The highest mean score first, then the most sessions, then by name."""
    return (-(summary.score_mean or 0.0), -summary.sessions, workflow)


def _row(workflow: str, summary: ScoreSummary, known: dict[str, Baseline]) -> LeverageRow:
    baseline = known.get(workflow)
    return LeverageRow(
        **msgspec.structs.asdict(summary),
        group={"workflow_tag": workflow or None},
        label=workflow or NO_VALUE_LABEL,
        kind="group",
        loop_baseline_tokens_per_hour=round(baseline.tokens_per_hour, 3) if baseline else None,
    )


def _aggregate(tally: Tally, label: str, kind: RowKind) -> LeverageRow:
    return LeverageRow(**msgspec.structs.asdict(tally.summary()), group={}, label=label, kind=kind)


def _view(session: SessionFigures, baseline: Baseline | None) -> ScoredView:
    s = score_session(session, baseline)
    return ScoredView(
        session=s.session,
        score=s.result.score,
        outcome_points=s.result.outcome_points,
        governance_penalty=s.result.governance_penalty,
        waste_penalty=s.result.waste_penalty,
        cost_dampener=s.result.cost_dampener,
        unused_context_ratio=s.inputs.unused_context_ratio,
        tokens_per_hour=s.tokens_per_hour,
        loop=s.loop,
        loop_baseline_tokens_per_hour=round(baseline.tokens_per_hour, 3) if baseline else None,
    )


def _notes(
    in_window: int,
    scored: int,
    oldest: float | None,
    summaries: dict[str, ScoreSummary],
    known: dict[str, Baseline],
) -> list[str]:
    notes = [
        "a session counts in the window of its last request, with its whole figures; "
        "its outcomes count whenever they arrived"
    ]
    if in_window > scored and oldest is not None:
        notes.append(
            f"scored the newest {scored} of the {in_window} sessions in the window "
            f"(last request since {iso(oldest)}): narrow the window or filter to score the rest"
        )
    unchecked = sorted(w or NO_VALUE_LABEL for w in summaries if w not in known)
    if unchecked:
        shown = ", ".join(unchecked[:10]) + (", ..." if len(unchecked) > 10 else "")
        notes.append(
            f"not checked for loops (fewer than {MIN_BASELINE_SESSIONS} sessions in the 7 days "
            f"before the window to take a baseline from): {shown}"
        )
    return notes


# -- actions ---------------------------------------------------------------------------


def _actions(context: PanelContext, rows: list[LeverageRow]) -> list[Action]:
    considered = sorted(
        (r for r in rows if r.sessions >= MIN_SESSIONS and r.group.get("workflow_tag")),
        key=lambda r: r.cost_usd,
        reverse=True,
    )
    loops: list[Action] = []
    untraced: list[Action] = []
    governed: list[Action] = []
    wasted: list[Action] = []
    for row in considered:
        workflow = str(row.group["workflow_tag"])
        head = f"{row.sessions} sessions, mean score {row.score_mean or 0:.1f}"
        checked = row.sessions - row.unchecked_sessions
        if checked and row.loop_sessions / checked >= LOOP_SHARE_ALERT:
            finding = (
                f"{head}, {row.loop_sessions} of them flagged as loops (tokens per hour over "
                f"{LOOP_FACTOR:g}x the workflow's p95 of the previous 7 days)"
            )
            loops += session_actions.bound_loops(context.config, workflow, finding)
        if row.traced_sessions == 0 and row.cost_usd > 0:
            untraced.append(
                session_actions.instrument(
                    f"workflow {workflow}",
                    f"{head}: no session has an outcome, so the score rests on penalties alone",
                )
            )
        governed += _governance(context, workflow, head, row)
        wasted += _waste(workflow, head, row)
    return [
        *loops[:MAX_ACTIONS],
        *untraced[:MAX_ACTIONS],
        *governed[:MAX_ACTIONS],
        *wasted[:MAX_ACTIONS],
    ]


_GOVERNANCE: tuple[tuple[str, ControlKind, tuple[str, ...], str], ...] = (
    ("rate_limit_hits", "rate_limit", controls.RATE_LIMITS, "rate limits"),
    ("budget_hits", "budget", (controls.BUDGETS,), "budgets"),
)


def _governance(context: PanelContext, workflow: str, head: str, row: LeverageRow) -> list[Action]:
    """Controls acting on its sessions again and again: the limit does not fit the work,
    or its agent retries into it."""
    actions = []
    for measure, kind, types, what in _GOVERNANCE:
        hits = int(getattr(row, measure))
        if hits / row.sessions < CONTROL_HITS_ALERT:
            continue
        message = (
            f"workflow {workflow}: {head}; {what} acted on {hits} of its requests "
            f"({hits / row.sessions:.1f} per session): raise them if the work is expected, "
            "or make its agent back off instead of retrying into them"
        )
        docs = controls.documents(context.config, *types)
        if not docs:
            actions.append(Action(message, Control(kind, "none in force"), Where(types[0])))
        actions += [Action(message, Control(kind, name), Where(t, name)) for t, name in docs]
    return actions


def _waste(workflow: str, head: str, row: LeverageRow) -> list[Action]:
    """Tokens spent on failed, retried or abandoned requests."""
    retried = row.retry_tokens / row.tokens if row.tokens else 0.0
    unused = row.unused_context_share or 0.0
    if retried < WASTE_SHARE_ALERT and unused < WASTE_SHARE_ALERT:
        return []
    return [
        Action(
            f"workflow {workflow}: {head}; {row.retry_tokens} retry tokens ({retried:.0%} of its "
            f"tokens) and {unused:.0%} of its input on answers nobody used: its requests "
            "fail or are abandoned; check its providers' errors (latency panel) and give its "
            "routes a fallback",
            Control("route", f"workflow {workflow}"),
            Where(controls.ROUTING),
        )
    ]
