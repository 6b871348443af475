"""Which budgets a team lead sees, and which no role but admin sees, read from the
budget's scope as written in a config document."""

from __future__ import annotations

import pytest

from sluicegate.identity.envelope import DEFAULT_PREFIXES
from sluicegate.policy.budget_audience import confined_teams, names_users
from sluicegate.policy.documents import BudgetScope

CASES = [
    ({}, None, False),
    ({"subjects": ["team:search"]}, {"search"}, False),
    ({"subjects": ["team:search", "team:ads"]}, {"search", "ads"}, False),
    ({"subjects": ["team:search", "user:bob"]}, None, True),  # bob's requests from any team
    ({"subjects": {"type": "team"}}, None, False),  # every team's requests, each counted
    ({"metadata": {"X-TFY-Team": ["search"]}}, {"search"}, False),
    ({"metadata": {"X-Sluice-Team": ["search", "ads"]}}, {"search", "ads"}, False),
    ({"metadata": {"team": ["ads"]}, "subjects": ["team:ads", "team:web"]}, {"ads"}, False),
    ({"metadata": {"X-TFY-Project": ["platform-search"]}}, None, False),
    ({"metadata": {"X-TFY-User-ID": ["ana"]}}, None, True),
    ({"metadata": {"team": ["search"], "user_id": ["ana"]}}, {"search"}, True),
    ({"subjects": ["user:ana"]}, None, True),
    ({"subjects": ["team:search"], "models": ["gpt-4o"]}, {"search"}, False),
]


@pytest.mark.parametrize("scope,teams,users", CASES)
def test_a_scope_says_which_teams_it_is_confined_to_and_whether_it_names_users(
    scope: dict, teams: set[str] | None, users: bool
) -> None:
    parsed = BudgetScope.model_validate(scope)
    confined = confined_teams(parsed, DEFAULT_PREFIXES)
    assert (None if confined is None else set(confined)) == teams
    assert names_users(parsed, DEFAULT_PREFIXES) is users
