"""Principle 1 in the query layer: what each role may read, proved with the figures it
gets and the 403s it meets (the HTTP side is in tests/server/test_analytics_api.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.query import parse_query
from sluicegate.analytics.scope import ScopedQuery, scoped
from sluicegate.analytics.window import DAY, iso
from sluicegate.errors import PermissionDenied
from sluicegate.model.record import LedgerRecord
from sluicegate.server.roles import AdminPrincipal, Role, analytics_scope
from tests.analytics.landing import land
from tests.analytics.panel_support import ADMIN, ask, context
from tests.analytics.traffic import traffic

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = (("since", iso(DAY0)), ("until", iso(DAY0 + 2 * DAY)))
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search", "infra"))
MEMBER = AdminPrincipal("bo", Role.MEMBER, user_id="bo")
NOBODY = AdminPrincipal("ghost", Role.MEMBER)  # a member token without a user
OTHERS = [AdminPrincipal(r.value, r) for r in (Role.FINANCE, Role.PLATFORM, Role.SECURITY)]


@pytest.fixture
async def records(engine: AsyncEngine) -> list[LedgerRecord]:
    landed = traffic(900, start=DAY0, span_s=2 * DAY)
    await land(engine, landed)
    return landed


def _scoped(
    principal: AdminPrincipal, *params: tuple[str, str], panel: str = "tags"
) -> ScopedQuery:
    query = parse_query(
        list(params), panel=panel, default_group_by="project", default_limit=20, now=DAY0
    )
    return scoped(query, analytics_scope(principal))


@pytest.mark.parametrize("principal", [*OTHERS, LEAD], ids=lambda p: p.role.value)
@pytest.mark.parametrize("param", ["group_by", "user_id"])
def test_no_role_but_admin_and_the_member_itself_sees_people(
    principal: AdminPrincipal, param: str
) -> None:
    asked = ("group_by", "team,user_id") if param == "group_by" else ("user_id", "ana")
    for panel in ("tags", "latency"):
        with pytest.raises(PermissionDenied) as caught:
            _scoped(principal, asked, panel=panel)
        assert caught.value.status == 403 and caught.value.code == "people_view_forbidden"
        assert caught.value.param == param


def test_a_member_may_not_name_another_user_and_a_lead_another_team() -> None:
    with pytest.raises(PermissionDenied) as caught:
        _scoped(MEMBER, ("user_id", "ana"))
    assert caught.value.param == "user_id" and caught.value.status == 403
    with pytest.raises(PermissionDenied) as caught:
        _scoped(LEAD, ("team", "data"))
    assert caught.value.param == "team" and caught.value.code == "team_forbidden"
    assert _scoped(LEAD, ("team", "search")).teams == ("search", "infra")
    assert _scoped(MEMBER, ("user_id", "bo")).user_id == "bo"


def test_only_someone_elses_view_of_people_is_audited() -> None:
    assert _scoped(ADMIN, ("group_by", "user_id")).people_view
    assert not _scoped(ADMIN, ("group_by", "team")).people_view
    assert not _scoped(MEMBER, ("group_by", "user_id")).people_view  # its own figures


async def test_a_team_lead_gets_its_teams_only(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    ctx = context(engine)
    answer = await ask(ctx, "tags", *WINDOW, ("group_by", "team"), principal=LEAD)
    assert answer.scope.teams == ["search", "infra"]
    assert {r.group.get("team") for r in answer.rows if r.kind == "group"} == {"search", "infra"}
    assert answer.totals.requests == sum(1 for r in records if r.team in ("search", "infra"))
    by_model = await ask(ctx, "latency", *WINDOW, ("group_by", "model"), principal=LEAD)
    assert by_model.totals.requests == answer.totals.requests
    one = await ask(ctx, "tags", *WINDOW, ("team", "search"), principal=LEAD)
    assert one.totals.requests == sum(1 for r in records if r.team == "search")


async def test_a_member_gets_its_own_figures_only(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    ctx = context(engine)
    answer = await ask(ctx, "tags", *WINDOW, ("group_by", "project"), principal=MEMBER)
    assert answer.source == "rollup_users" and answer.scope.user_id == "bo"
    own = [r for r in records if r.user_id == "bo"]
    assert answer.totals.requests == len(own)
    assert answer.totals.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in own), abs=1e-8)
    mine = await ask(ctx, "tags", *WINDOW, ("group_by", "user_id"), principal=MEMBER)
    assert [r.label for r in mine.rows] == ["bo"] and mine.totals.requests == len(own)
    nothing = await ask(ctx, "tags", *WINDOW, principal=NOBODY)
    assert nothing.totals.requests == 0 and nothing.rows == []


async def test_an_admin_sees_people_ordered_by_name_never_ranked(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(context(engine), "tags", *WINDOW, ("group_by", "user_id"))
    assert answer.source == "rollup_tool_users"  # the smallest rollup with user_id
    groups = [r.label for r in answer.rows if r.kind == "group"]
    assert groups == ["ana", "bo", "cy"]
    (nobody,) = [r for r in answer.rows if r.kind == "no_value"]
    assert nobody.requests == sum(1 for r in records if r.user_id is None)
    assert sum(r.requests for r in answer.rows) == answer.totals.requests == len(records)
    latency = await ask(context(engine), "latency", *WINDOW, ("group_by", "user_id"))
    assert [r.label for r in latency.rows] == ["(no value)", "ana", "bo", "cy"]
