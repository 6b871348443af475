"""Which rules in force govern a row (`panels/governing.py`), and where spend is heading
(`panels/projection.py`): pure functions, every case by its rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluicegate.analytics.panels.governing import Rule, rules_in_force
from sluicegate.analytics.panels.projection import budget_state, month_bounds, projected
from sluicegate.analytics.window import DAY, HOUR
from tests.analytics.panel_support import snapshot

CONFIG = """
name: budgets
type: gateway-budget-config
budgets:
  - {id: everything, ceiling_usd: 100, window: monthly}
  - {id: alpha, scope: {metadata: {X-TFY-Project: [alpha, alpha-2]}}, ceiling_usd: 10, window: daily}
  - {id: alpha-prod, scope: {metadata: {project: alpha, environment: prod}}, ceiling_usd: 5, window: daily}
  - {id: teams, scope: {subjects: [team:search, team:data]}, ceiling_usd: 9, window: weekly}
  - {id: search-or-ana, scope: {subjects: [team:search, user:ana]}, ceiling_usd: 9, window: weekly}
  - {id: any-team, scope: {subjects: {type: team}}, ceiling_usd: 9, window: weekly}
  - {id: opus, scope: {models: [claude-opus-*]}, ceiling_usd: 9, window: weekly}
  - {id: customer, scope: {metadata: {customer_id: acme}}, ceiling_usd: 9, window: weekly}
---
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-project
    limit: {requests: 10, window: 1m, scope: project}
    on_breach: queue_then_429
---
name: quotas
type: gateway-rate-limiting-config
rules:
  - id: per-user-daily
    when: {subjects: {type: user}}
    limit_to: 1000
    unit: tokens_per_day
"""  # noqa: E501


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    found, cut = rules_in_force(snapshot(CONFIG))
    assert not cut
    return {r.id: r for r in found}


@pytest.mark.parametrize(
    ("rule", "row", "coverage"),
    [
        ("everything", {}, "whole"),  # no condition: all traffic
        ("everything", {"project": "x"}, "whole"),
        ("alpha", {"project": "alpha"}, "whole"),  # a header name means its field
        ("alpha", {"project": "beta"}, None),
        ("alpha", {"project": None}, None),  # UNTAGGED: no project matches no condition
        ("alpha", {"team": "search"}, None),  # on another dimension: that view's
        ("alpha", {}, None),
        ("alpha-prod", {"project": "alpha"}, "part"),  # prod requests of alpha only
        ("alpha-prod", {"project": "alpha", "environment": "prod"}, "whole"),
        ("alpha-prod", {"project": "alpha", "environment": "dev"}, None),
        ("teams", {"team": "data"}, "whole"),
        ("teams", {"team": "infra"}, None),
        ("search-or-ana", {"team": "search"}, "whole"),  # any one subject
        ("search-or-ana", {"team": "infra"}, None),  # ana's requests: not a team's view
        ("any-team", {"team": "infra"}, "whole"),
        ("any-team", {"team": None}, None),
        ("opus", {"model": "claude-opus-4-1"}, "whole"),  # a pattern
        ("opus", {"model": "gpt-4o"}, None),
        ("opus", {"requested_model": "claude-opus-4-7", "model": "gpt-4o"}, "whole"),
        ("opus", {"project": "alpha"}, None),
        ("customer", {"metadata.customer_id": "acme"}, "whole"),
        ("per-project", {"project": "beta"}, "whole"),
        ("per-user-daily", {"project": "beta"}, None),
    ],
)
def test_coverage(
    rules: dict[str, Rule], rule: str, row: dict[str, str | None], coverage: str
) -> None:
    assert rules[rule].coverage(row) == coverage


def test_what_each_rule_shows(rules: dict[str, Rule]) -> None:
    alpha = rules["alpha"]
    assert (alpha.kind, alpha.document_type, alpha.limit, alpha.windows) == (
        "budget", "gateway-budget-config", "$10.00", ("daily",),
    )  # fmt: skip
    assert rules["search-or-ana"].names_users and not rules["teams"].names_users
    assert rules["teams"].teams == frozenset({"search", "data"})
    assert rules["everything"].teams is None
    limit = rules["per-project"]
    assert (limit.limit, limit.windows, limit.per, limit.action) == (
        "10 requests", ("1m",), "project", "queue_then_429",
    )  # fmt: skip
    quota = rules["per-user-daily"]
    assert (quota.limit, quota.windows, quota.per, quota.document_type) == (
        "1,000 tokens", ("1d",), "user", "gateway-rate-limiting-config",
    )  # fmt: skip
    assert quota.names_users is False  # any user: a kind, not a person


def test_month_bounds_and_the_year_end() -> None:
    december = datetime(2026, 12, 15, 9, tzinfo=UTC).timestamp()
    start, end = month_bounds(december)
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    start, end = month_bounds(datetime(2028, 2, 29, 23, 59, tzinfo=UTC).timestamp())
    assert (end - start) / DAY == 29


def test_projection_waits_for_a_basis() -> None:
    start, end = 0.0, 30 * DAY
    assert projected(10.0, start, end, start + 23 * HOUR) is None  # under a day of a month
    assert projected(10.0, start, end, start + 10 * DAY) == pytest.approx(30.0)
    assert projected(1.0, 0.0, DAY, 3 * HOUR) == pytest.approx(8.0)  # a tenth of a day
    assert projected(1.0, 0.0, DAY, 2 * HOUR) is None
    assert projected(5.0, start, end, end + DAY) == pytest.approx(5.0)  # over: as it ended


def test_budget_state_from_the_engines_status() -> None:
    status = {
        "window": "monthly",
        "timezone": "America/New_York",
        "ceiling_usd": 100.0,
        "spent_usd": 40.0,
        "pct": 40.0,
        "window_start": "2026-03-01T00:00:00-05:00",
        "resets_at": "2026-04-01T00:00:00-04:00",
    }
    now = datetime(2026, 3, 11, 5, tzinfo=UTC).timestamp()  # 10 days in, New York time
    state = budget_state(status, now)
    length = datetime(2026, 4, 1, 4, tzinfo=UTC).timestamp() - (now - 10 * DAY)
    assert state.elapsed_days == pytest.approx(10.0)
    assert state.projected_usd == pytest.approx(40.0 / (10 * DAY) * length)
    assert state.over and state.projected_pct == pytest.approx(state.projected_usd, abs=0.01)
    rolling = budget_state({**status, "window": "rolling_7d", "resets_at": None}, now)
    assert rolling.projected_usd is None and not rolling.over
    spent = budget_state({**status, "spent_usd": 100.0, "pct": 100.0}, now)
    assert spent.over
