"""The controls beside a panel's rows (principle 3): the budgets and rate-limit rules in
force that govern each row (`governing.py`), as the caller may see them, with each
budget's live spend from the policy engine and its projection (`projection.py`).

What a caller sees follows `GET /api/budgets`: an admin every rule; a team lead the
budgets confined to its teams; a member no budget; nobody but an admin a rule that names
particular users. Rate-limit rules are shown to every caller who sees the row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from sluicegate.analytics.panels.base import Column, PanelContext
from sluicegate.analytics.panels.governing import Coverage, Rule
from sluicegate.analytics.panels.projection import BudgetState, budget_state
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.errors import StoreUnavailable

MAX_CONTROLS = 12  # beside one row
STATUS_TIMEOUT_S = 5.0  # for the budgets' live spend (the counter store: memory or Redis)


BUDGET_COLUMNS = [
    Column("label", "budget"),
    Column("state.window", "window"),
    Column("state.ceiling_usd", "ceiling $"),
    Column("state.spent_usd", "spent $"),
    Column("state.projected_usd", "projected $"),
    Column("state.over", "over"),
]


class RowControl(msgspec.Struct, kw_only=True):
    """A budget or rate-limit rule in force that governs a row, as it is written."""

    kind: Literal["budget", "rate_limit"]
    document: str
    type: str  # the document's type: where it is changed
    id: str
    limit: str
    window: str
    per: str | None  # rate limits: each counter's scope (user, project, global...)
    action: str  # on_exceed / on_breach
    coverage: Coverage  # whole: every request of the row; part: some of them
    status: list[BudgetState] | None = None  # budgets: live, per window (None: not known)


class BudgetRow(msgspec.Struct, kw_only=True):
    """A budget window listed beside some row (the `budgets` breakdown)."""

    label: str  # the budget id
    document: str
    state: BudgetState
    governs: list[str]  # the labels of the rows it is listed beside


async def budget_statuses(
    context: PanelContext, notes: list[str]
) -> dict[tuple[str, str], list[Any]]:
    """The live state of each budget the caller may see, by (document, id)."""
    if context.budget_status is None:
        return {}
    try:
        async with asyncio.timeout(STATUS_TIMEOUT_S):
            rows = await context.budget_status()
    except StoreUnavailable as exc:
        notes.append(f"budget spend not shown: {exc.message}")
        return {}
    except TimeoutError:
        notes.append(
            f"budget spend not shown: the counter store did not answer in {STATUS_TIMEOUT_S:g} s"
        )
        return {}
    found: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        found.setdefault((str(row["document"]), str(row["id"])), []).append(row)
    return found


def summary(row_controls: list[RowControl]) -> str:
    parts = []
    for c in row_controls:
        text = f"{c.id} {c.limit}/{c.window}"
        if c.per and c.per != "global":
            text += f" per {c.per}"
        for state in c.status or []:
            text += f" {state.pct:.0f}%"
            if state.projected_pct is not None:
                text += f" ->{state.projected_pct:.0f}%"
            if state.over:
                text += " OVER"
        if c.coverage == "part":
            text += " (part)"
        parts.append(text)
    return "; ".join(parts) or "-"


class ControlLister:
    """The rules beside each row, as the caller may see them, with budgets' live state;
    remembers every budget listed, for the breakdown and the actions."""

    def __init__(
        self,
        rules: list[Rule],
        query: ScopedQuery,
        statuses: Mapping[tuple[str, str], list[Any]],
        now: float,
    ) -> None:
        self._rules = [r for r in rules if visible(r, query)]
        self._statuses = statuses
        self._now = now
        self.budgets: dict[tuple[str, str], tuple[list[BudgetState], list[str]]] = {}
        self.notes: list[str] = []

    def beside(self, governed: Mapping[str, str | None], label: str) -> list[RowControl]:
        found = []
        for rule in self._rules:
            coverage = rule.coverage(governed)
            if coverage is None:
                continue
            states = self._states(rule) if rule.kind == "budget" else None
            if states is not None:
                seen = self.budgets.setdefault((rule.document, rule.id), (states, []))
                seen[1].append(label)
            found.append(
                RowControl(
                    kind=rule.kind,
                    document=rule.document,
                    type=rule.document_type,
                    id=rule.id,
                    limit=rule.limit,
                    window=", ".join(rule.windows),
                    per=rule.per,
                    action=rule.action,
                    coverage=coverage,
                    status=states,
                )
            )
        if len(found) > MAX_CONTROLS:
            self.notes.append(
                f"{label}: {len(found)} rules govern it; the first {MAX_CONTROLS} are shown"
            )
        return found[:MAX_CONTROLS]

    def _states(self, rule: Rule) -> list[BudgetState] | None:
        rows = self._statuses.get((rule.document, rule.id))
        if rows is None:
            return None
        return [budget_state(row, self._now) for row in rows]

    def budget_rows(self) -> list[BudgetRow]:
        return [
            BudgetRow(label=budget_id, document=document, state=state, governs=labels)
            for (document, budget_id), (states, labels) in self.budgets.items()
            for state in states
        ]


def visible(rule: Rule, query: ScopedQuery) -> bool:
    """The rules a caller may see beside its rows: as `GET /api/budgets` shows budgets
    (a team lead those confined to its teams, a member none), and no rule that names
    particular users to anyone but an admin."""
    if query.sees_everyone:
        return True
    if rule.names_users:
        return False
    if rule.kind == "budget":
        if query.user_id is not None:
            return False
        if query.teams is not None:
            return rule.teams is not None and rule.teams <= set(query.teams)
    return True
