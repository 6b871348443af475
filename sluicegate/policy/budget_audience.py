"""Who may see a budget's status besides admins (`GET /api/budgets`), read from its scope:
the teams its traffic is confined to (a team lead of those teams sees it), and whether
it names individual users (then its spend is one person's, for admins only).

A scope confines a budget to teams when it matches the team field (`team`, or its header
`X-TFY-Team` / `X-Sluice-Team`) against a list of values, or lists only `team:` subjects;
both given, to the teams in both. Anything else (no team condition, `{type: team}`,
subjects of other kinds beside teams) may count any team's requests: None.
"""

from __future__ import annotations

from collections.abc import Sequence

from sluicegate.identity.envelope import envelope_field
from sluicegate.policy.documents import BudgetScope


def confined_teams(scope: BudgetScope, prefixes: Sequence[str]) -> frozenset[str] | None:
    teams: frozenset[str] | None = None
    for name, values in (scope.metadata or {}).items():
        if envelope_field(name, prefixes) == "team":
            teams = _narrow(teams, values)
    subjects = scope.subjects
    if isinstance(subjects, list) and subjects:
        kinds = {subject.partition(":")[0] for subject in subjects}
        if kinds == {"team"}:
            teams = _narrow(teams, [subject.partition(":")[2] for subject in subjects])
    return teams


def names_users(scope: BudgetScope, prefixes: Sequence[str]) -> bool:
    """Whether the scope picks out particular users (`user:` subjects, or a condition on
    the user field)."""
    if any(envelope_field(name, prefixes) == "user_id" for name in scope.metadata or {}):
        return True
    subjects = scope.subjects
    return isinstance(subjects, list) and any(s.startswith("user:") for s in subjects)


def _narrow(teams: frozenset[str] | None, values: Sequence[str]) -> frozenset[str]:
    return frozenset(values) if teams is None else teams & frozenset(values)
