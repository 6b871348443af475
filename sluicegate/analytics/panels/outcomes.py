"""`outcomes`: the outcome join (seed 000, panel 6: "did it ship anything?"). Sessions'
cost (`rollup_sessions`) joined by session id with what they produced (`outcomes`), read
summed per group and day from `rollup_session_groups` unless a member's own sessions:
merged PRs, closed tickets, resolved incidents, eval runs and their pass rate, and the
cost per outcome, by workflow (or team, project, client tool).

A session belongs to the window of its last request and counts with its whole cost; an
outcome counts for its session whenever it arrived (a PR merged two days after the
session still counts). Sessions with no outcome are untraced; a group with spend and no
outcome at all is flagged `untraced`: its usage cannot be tied to anything it produced.

Actions: instrument the outcome join of an untraced workflow (or of one whose spend is
mostly untraced), tag sessions that carry no workflow, check session ids of outcomes
that match no session, and review the route of a workflow whose cost per outcome is far
above the others'.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels import controls, session_actions
from sluicegate.analytics.panels.base import (
    Action,
    Column,
    Control,
    Layer,
    PanelAnswer,
    PanelContext,
    Where,
)
from sluicegate.analytics.panels.common import answer_of, group_of, label_of, usd
from sluicegate.analytics.panels.session_listing import SessionAsk, SessionListing, listing
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.session_sql import OUTCOME_COUNTS, SESSION_FIGURES
from sluicegate.analytics.sessions import (
    GroupFigures,
    SessionFigures,
    SessionReader,
    grouping_of,
    selection_of,
)

GROUPABLE = ("workflow_tag", "team", "project", "client_tool")
UNTRACED_SHARE_ALERT = 0.5  # of a group's spend, in sessions with no outcome
MIN_SESSIONS = 5  # fewer untraced sessions than this say little about a workflow
MIN_OUTCOMES = 3  # a cost per outcome resting on fewer is noise
COSTLY_FACTOR = 3.0  # cost per outcome this many times the others' median
MAX_ACTIONS = 5  # of each kind, the costliest first
SUMMED_GROUPS = 1000  # up to this many groups, the total is their sum (no second statement)

RowKind = Literal["group", "other", "total"]


class OutcomeRow(msgspec.Struct, kw_only=True):
    group: dict[str, str | None]
    label: str
    kind: RowKind
    sessions: int
    traced_sessions: int  # with at least one outcome
    untraced_sessions: int
    requests: int
    tokens: int  # input + output
    cost_usd: float
    traced_cost_usd: float
    untraced_cost_usd: float
    outcomes: int
    pr_merged: int
    ticket_closed: int
    incident_resolved: int
    eval_runs: int
    eval_pass_rate: float | None  # the mean over its eval runs
    cost_per_outcome_usd: float | None  # cost_usd / outcomes
    untraced: bool  # spend, and no outcome at all


COLUMNS = [
    Column("label", "group"),
    Column("sessions", "sessions"),
    Column("untraced_sessions", "untraced"),
    Column("cost_usd", "cost $"),
    Column("outcomes", "outcomes"),
    Column("pr_merged", "PRs merged"),
    Column("ticket_closed", "tickets"),
    Column("incident_resolved", "incidents"),
    Column("eval_runs", "evals"),
    Column("eval_pass_rate", "eval pass rate"),
    Column("cost_per_outcome_usd", "$ / outcome"),
]


class OutcomesPanel:
    name = "outcomes"
    title = "Outcome join"
    layer = Layer.OUTCOME
    question = (
        "What does each workflow's AI spend produce (merged PRs, closed tickets, resolved "
        "incidents, passed evals), at what cost per outcome, and which spend is untraced?"
    )
    default_limit = 20

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "workflow_tag"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        q = query.query
        group = grouping_of(q.group_by, self.name, GROUPABLE)
        selection = selection_of(query, self.name)
        sessions = SessionReader(context.reader)
        names = [d.name for d in group]
        # Every group in one pass when they are few (the usual case): the total is their
        # sum; past SUMMED_GROUPS the total is a second statement.
        every = await sessions.groups(selection, names, limit=max(q.limit, SUMMED_GROUPS) + 1)
        if len(every) > SUMMED_GROUPS:
            total = await sessions.total(selection)
        else:
            total = _add_up(every)
        groups = every[: q.limit]
        rows = [_row(group_of(group, g.values), label_of(g.values), g, "group") for g in groups]
        if len(every) > q.limit:
            rest = _subtract(total, groups)
            if rest.sessions:
                rows.append(_row({}, "other", rest, "other"))
        totals = _row({}, "total", total, "total")
        notes = [
            "a session counts in the window of its last request, with its whole cost; its "
            "outcomes count whenever they arrived"
        ]
        actions = _join_actions(rows, names)
        unrestricted = query.teams is None and query.user_id is None and not q.filters
        if unrestricted:  # an outcome with no session has no team: only an unscoped view
            orphaned = await sessions.orphan_outcomes(q.window)
            if orphaned:
                notes.append(f"{orphaned} outcomes in the window name no session of the ledger")
                actions.append(session_actions.orphans(orphaned))
        actions += _costly(rows)
        answer = answer_of(
            self, query, source=sessions.source(selection), columns=COLUMNS, rows=rows,
            totals=totals, notes=notes, group_by=group,
        )  # fmt: skip
        answer.actions = actions
        return answer

    async def sessions(
        self, context: PanelContext, query: ScopedQuery, ask: SessionAsk
    ) -> SessionListing:
        async def describe(page: Sequence[SessionFigures]) -> list[Any]:
            return list(page)

        return await listing(self.name, context, query, ask, describe)


PANEL = OutcomesPanel()


def _row(group: dict[str, str | None], label: str, g: GroupFigures, kind: RowKind) -> OutcomeRow:
    cost, traced_cost = usd(g.cost_usd), usd(g.traced_cost_usd)
    eval_runs = g.counts["eval_run"]
    return OutcomeRow(
        group=group,
        label=label,
        kind=kind,
        sessions=g.sessions,
        traced_sessions=g.traced_sessions,
        untraced_sessions=g.sessions - g.traced_sessions,
        requests=g.figures["requests"],
        tokens=g.figures["input_tokens"] + g.figures["output_tokens"],
        cost_usd=cost,
        traced_cost_usd=traced_cost,
        untraced_cost_usd=usd(max(cost - traced_cost, 0.0)),
        outcomes=g.outcomes,
        pr_merged=g.counts["pr_merged"],
        ticket_closed=g.counts["ticket_closed"],
        incident_resolved=g.counts["incident_resolved"],
        eval_runs=eval_runs,
        eval_pass_rate=(
            round(g.pass_rate_sum / g.eval_runs_rated, 6) if g.eval_runs_rated else None
        ),
        cost_per_outcome_usd=usd(cost / g.outcomes) if g.outcomes else None,
        untraced=cost > 0 and g.outcomes == 0,
    )


def _add_up(parts: Sequence[GroupFigures]) -> GroupFigures:
    """Groups summed into one (the total of a grouping that holds every session)."""
    return GroupFigures(
        values=(),
        sessions=sum(p.sessions for p in parts),
        traced_sessions=sum(p.traced_sessions for p in parts),
        figures={n: sum(p.figures[n] for p in parts) for n in SESSION_FIGURES},
        cost_usd=sum(p.cost_usd for p in parts),
        traced_cost_usd=sum(p.traced_cost_usd for p in parts),
        outcomes=sum(p.outcomes for p in parts),
        counts={k: sum(p.counts[k] for p in parts) for k in OUTCOME_COUNTS},
        pass_rate_sum=sum(p.pass_rate_sum for p in parts),
        eval_runs_rated=sum(p.eval_runs_rated for p in parts),
    )


def _subtract(total: GroupFigures, parts: Sequence[GroupFigures]) -> GroupFigures:
    """The groups past the limit: the total less the rows shown."""

    def less(name: str) -> Any:
        return getattr(total, name) - sum(getattr(p, name) for p in parts)

    return GroupFigures(
        values=(),
        sessions=less("sessions"),
        traced_sessions=less("traced_sessions"),
        figures={n: total.figures[n] - sum(p.figures[n] for p in parts) for n in SESSION_FIGURES},
        cost_usd=max(less("cost_usd"), 0.0),
        traced_cost_usd=max(less("traced_cost_usd"), 0.0),
        outcomes=less("outcomes"),
        counts={k: total.counts[k] - sum(p.counts[k] for p in parts) for k in OUTCOME_COUNTS},
        pass_rate_sum=max(less("pass_rate_sum"), 0.0),
        eval_runs_rated=less("eval_runs_rated"),
    )


def _join_actions(rows: list[OutcomeRow], names: list[str]) -> list[Action]:
    """Untraced groups (spend, no outcome), then groups whose spend is mostly untraced,
    the costliest first; sessions with no workflow tag are to be tagged first."""
    groups = sorted(
        (r for r in rows if r.kind == "group"), key=lambda r: r.untraced_cost_usd, reverse=True
    )
    untagged = [
        r
        for r in groups
        if "workflow_tag" in names and r.group["workflow_tag"] is None and r.cost_usd > 0
    ]
    actions = []
    if untagged:
        cost = usd(sum(r.cost_usd for r in untagged))
        actions.append(session_actions.tag_workflows(sum(r.sessions for r in untagged), cost))
    tagged = [r for r in groups if r not in untagged]
    untraced = [r for r in tagged if r.untraced]
    actions += [
        session_actions.instrument(
            session_actions.named(r.group),
            f"{r.sessions} sessions spent ${r.cost_usd:.2f} in the window and none has an outcome",
        )
        for r in untraced[:MAX_ACTIONS]
    ]
    partly = [
        r
        for r in tagged
        if not r.untraced
        and r.untraced_sessions >= MIN_SESSIONS
        and r.cost_usd > 0
        and r.untraced_cost_usd / r.cost_usd >= UNTRACED_SHARE_ALERT
    ]
    actions += [
        session_actions.instrument(
            session_actions.named(r.group),
            f"{r.untraced_sessions} of its {r.sessions} sessions (${r.untraced_cost_usd:.2f} of "
            f"${r.cost_usd:.2f}) have no outcome",
        )
        for r in partly[:MAX_ACTIONS]
    ]
    return actions


def _costly(rows: list[OutcomeRow]) -> list[Action]:
    """A group paying far more per outcome than the others: its models and route."""
    priced = {
        r.label: r.cost_per_outcome_usd
        for r in rows
        if r.kind == "group"
        and None not in r.group.values()  # a group without a value has no route to name
        and r.outcomes >= MIN_OUTCOMES
        and r.cost_per_outcome_usd
    }
    actions = []
    for row in rows:
        value = priced.get(row.label) if row.kind == "group" else None
        others = [v for label, v in priced.items() if label != row.label]
        if value is None or len(others) < 2:
            continue
        typical = statistics.median(others)
        if typical > 0 and value >= COSTLY_FACTOR * typical:
            what = session_actions.named(row.group)
            actions.append(
                Action(
                    f"{what} costs ${value:.2f} per outcome, {value / typical:.1f}x the median "
                    f"of the others (${typical:.2f}): see the premium-review panel for a "
                    "cheaper model on its route",
                    Control("route", what),
                    Where(controls.ROUTING),
                )
            )
    return actions[:MAX_ACTIONS]
