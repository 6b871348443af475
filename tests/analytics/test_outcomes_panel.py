"""The outcome-join panel against a direct computation over the same raw rows (each
session's requests grouped by session id, its outcomes read row by row), on SQLite and
PostgreSQL: cost per outcome by workflow, untraced sessions and workflows, the actions
that name them, and the caller's scope."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.panels import outcomes as outcomes_panel
from sluicegate.analytics.panels.outcomes import OutcomeRow
from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.errors import InvalidRequest, PermissionDenied
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.panel_support import ask, context
from tests.analytics.session_reference import RefSession, raw_sessions
from tests.analytics.session_traffic import land_sessions, session_traffic

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
SINCE, UNTIL = DAY0 + 5 * HOUR + 17 * 60, DAY0 + 2 * DAY + 3 * HOUR - 1
WINDOW = (("since", iso(SINCE)), ("until", iso(UNTIL)))
EFFECTIVE = (DAY0 + 5 * HOUR, DAY0 + 2 * DAY + 3 * HOUR)  # snapped outward to whole hours
ORPHANS = 3
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search", "infra"))
MEMBER = AdminPrincipal("bo", Role.MEMBER, user_id="bo")


@pytest.fixture
async def landed(engine: AsyncEngine) -> AsyncEngine:
    before = session_traffic(150, start=DAY0 - 7 * DAY, span_s=6 * DAY, seed=3, prefix="old")
    during = session_traffic(260, start=DAY0, span_s=2 * DAY + 3 * HOUR, seed=4, prefix="now")
    await land_sessions(engine, before, during, orphans=ORPHANS, ts=DAY0 + DAY)
    return engine


def _expected(sessions: list[RefSession]) -> dict[str, Any]:
    kinds: dict[str, int] = defaultdict(int)
    rates = [rate for s in sessions for rate in s.pass_rates]
    for s in sessions:
        for kind, n in s.kinds.items():
            kinds[kind] += n
    traced = [s for s in sessions if s.outcomes]
    cost = sum(s.cost_usd for s in sessions)
    outcomes = sum(s.outcomes for s in sessions)
    return {
        "sessions": len(sessions),
        "traced_sessions": len(traced),
        "untraced_sessions": len(sessions) - len(traced),
        "requests": sum(s.requests for s in sessions),
        "tokens": sum(s.input_tokens + s.output_tokens for s in sessions),
        "cost_usd": cost,
        "traced_cost_usd": sum(s.cost_usd for s in traced),
        "outcomes": outcomes,
        "pr_merged": kinds["pr_merged"],
        "ticket_closed": kinds["ticket_closed"],
        "incident_resolved": kinds["incident_resolved"],
        "eval_runs": kinds["eval_run"],
        "eval_pass_rate": sum(rates) / len(rates) if rates else None,
        "cost_per_outcome_usd": cost / outcomes if outcomes else None,
    }


def _assert_row(row: OutcomeRow, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = getattr(row, name)
        if isinstance(value, float):
            places = 5e-7 if name == "eval_pass_rate" else 1e-8  # shown to 6 places
            assert got == pytest.approx(value, abs=places, rel=1e-9), (row.label, name)
        else:
            assert got == value, (row.label, name)


def _by_workflow(sessions: dict[str, RefSession]) -> dict[str, list[RefSession]]:
    grouped: dict[str, list[RefSession]] = defaultdict(list)
    for s in sessions.values():
        grouped[s.workflow].append(s)
    return grouped


async def test_cost_per_outcome_by_workflow_equals_the_raw_rows(landed: AsyncEngine) -> None:
    answer = await ask(context(landed), "outcomes", *WINDOW)
    assert answer.source == "rollup_session_groups" and answer.layer == "outcome"
    assert (answer.window.since_unix, answer.window.until_unix) == EFFECTIVE
    assert answer.group_by == ["workflow_tag"]
    sessions = await raw_sessions(landed, *EFFECTIVE)
    grouped = _by_workflow(sessions)
    assert {r.label for r in answer.rows} == {w or "(no value)" for w in grouped}
    assert len(answer.rows) == 6  # every workflow, and the sessions with none
    for row in answer.rows:
        assert row.kind == "group"
        assert row.group == {"workflow_tag": row.label if row.label != "(no value)" else None}
        _assert_row(row, _expected(grouped[row.group["workflow_tag"] or ""]))
    _assert_row(answer.totals, _expected(list(sessions.values())))
    costs = [r.cost_usd for r in answer.rows]
    assert costs == sorted(costs, reverse=True)
    # outcomes arriving two days after their session count for it
    assert any(s.kinds for s in sessions.values() if s.last_ts > EFFECTIVE[1] - 2 * DAY)
    for name in ("sessions", "traced_sessions", "untraced_sessions", "outcomes", "requests"):
        assert sum(getattr(r, name) for r in answer.rows) == getattr(answer.totals, name)


async def test_untraced_spend_is_flagged_with_the_join_to_instrument(landed: AsyncEngine) -> None:
    answer = await ask(context(landed), "outcomes", *WINDOW)
    rows = {r.label: r for r in answer.rows}
    sandbox = rows["sandbox"]
    assert sandbox.untraced and sandbox.outcomes == 0 and sandbox.cost_usd > 0
    assert sandbox.untraced_sessions == sandbox.sessions
    assert sandbox.cost_per_outcome_usd is None
    assert [r.label for r in answer.rows if r.untraced] == ["sandbox"]
    actions = [msgspec.to_builtins(a) for a in answer.actions]
    (join,) = [a for a in actions if a["control"]["name"] == "outcome join: workflow sandbox"]
    assert join["control"]["kind"] == "config"
    assert join["where"] == {"type": "trailer", "name": "Sluice-Session"}
    assert join["message"].startswith(
        f"instrument the outcome join for workflow sandbox: {sandbox.sessions} sessions spent "
        f"${sandbox.cost_usd:.2f} in the window and none has an outcome"
    )
    assert "Sluice-Session: <session id>" in join["message"]
    assert "docs/outcomes.md" in join["message"]
    untagged = rows["(no value)"]
    (tag,) = [a for a in actions if a["control"] == {"kind": "config", "name": "workflow_tag"}]
    assert tag["where"] == {"type": "header", "name": "X-Sluice-Workflow-Tag"}
    assert tag["message"].startswith(f"{untagged.sessions} sessions (${untagged.cost_usd:.2f})")
    (orphans,) = [a for a in actions if a["control"]["name"] == "session id"]
    assert orphans["message"].startswith(f"{ORPHANS} outcomes recorded in the window")
    assert orphans["where"] == {"type": "header", "name": "X-Sluice-Session-ID"}


async def test_grouped_by_team_with_a_limit_the_other_row_adds_up(
    landed: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = (*WINDOW, ("group_by", "team,workflow_tag"), ("limit", "4"))
    answer = await ask(context(landed), "outcomes", *question)
    monkeypatch.setattr(outcomes_panel, "SUMMED_GROUPS", 5)  # the total read apart
    apart = await ask(context(landed), "outcomes", *question)
    assert msgspec.to_builtins(apart) == msgspec.to_builtins(answer)
    assert [r.kind for r in answer.rows] == ["group"] * 4 + ["other"]
    sessions = await raw_sessions(landed, *EFFECTIVE)
    for row in answer.rows[:4]:
        team, workflow = row.group["team"], row.group["workflow_tag"] or ""
        same = [s for s in sessions.values() if (s.team, s.workflow) == (team, workflow)]
        _assert_row(row, _expected(same))
    for name in ("sessions", "traced_sessions", "outcomes", "pr_merged", "eval_runs", "tokens"):
        assert sum(getattr(r, name) for r in answer.rows) == getattr(answer.totals, name), name
    assert sum(r.cost_usd for r in answer.rows) == pytest.approx(answer.totals.cost_usd, abs=1e-8)


async def test_filters_and_scopes_narrow_the_sessions(landed: AsyncEngine) -> None:
    sessions = await raw_sessions(landed, *EFFECTIVE)
    ctx = context(landed)
    filtered = await ask(ctx, "outcomes", *WINDOW, ("project", "UNTAGGED"), ("team", "data"))
    _assert_row(
        filtered.totals,
        _expected([s for s in sessions.values() if (s.project, s.team) == ("UNTAGGED", "data")]),
    )
    assert filtered.filters == {"project": "UNTAGGED", "team": "data"}
    lead = await ask(ctx, "outcomes", *WINDOW, principal=LEAD)
    _assert_row(
        lead.totals, _expected([s for s in sessions.values() if s.team in ("search", "infra")])
    )
    assert lead.scope.teams == ["search", "infra"]
    member = await ask(ctx, "outcomes", *WINDOW, principal=MEMBER)
    _assert_row(member.totals, _expected([s for s in sessions.values() if s.user_id == "bo"]))
    # outcomes naming no session have no team or user: only an unscoped view counts them
    for scoped in (filtered, lead, member):
        assert not [a for a in scoped.actions if a.control.name == "session id"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ((("group_by", "model"),), "group_by"),
        ((("group_by", "metadata.customer_id"),), "group_by"),
        ((("provider", "openai"),), "provider"),
        ((("metadata.customer_id", "acme"),), "metadata.customer_id"),
        ((("user_id", "bo"),), "user_id"),
        ((("group_by", "user_id"),), "group_by"),
    ],
)
async def test_what_a_session_does_not_carry_is_a_400(
    engine: AsyncEngine, params: tuple[tuple[str, str], ...], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await ask(context(engine), "outcomes", *WINDOW, *params)
    assert refused.value.param == param


async def test_a_team_lead_asking_for_another_team_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await ask(context(engine), "outcomes", ("team", "data"), principal=LEAD)
    assert refused.value.param == "team"


async def test_no_sessions_is_an_empty_answer(engine: AsyncEngine) -> None:
    answer = await ask(context(engine), "outcomes", *WINDOW)
    assert answer.rows == [] and answer.totals.sessions == 0
    assert answer.totals.cost_per_outcome_usd is None and answer.totals.eval_pass_rate is None
    assert answer.actions == []
