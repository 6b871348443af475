"""`/api/analytics` through the whole gateway in process: the panel list, answers from
landed ledger rows, the analytics config in force, and every refusal in the admin error
shape; then each role's view and 403s through the admin gate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Scope

from sluicegate.analytics.rebuild import RollupRebuild
from sluicegate.analytics.window import DAY, iso
from sluicegate.server.admin_auth import AdminGate, admin_app
from sluicegate.server.analytics_api import analytics_routes
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.landing import land
from tests.analytics.traffic import traffic
from tests.server.inprocess import InProcessGateway

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = {"since": iso(DAY0), "until": iso(DAY0 + 2 * DAY)}
ANALYTICS = "name: analytics\ntype: gateway-analytics-config\nrollup_metadata_keys: [customer_id]\n"
RECORDS = traffic(600, start=DAY0, span_s=2 * DAY)


@pytest.fixture
async def landed(gw: InProcessGateway) -> InProcessGateway:
    await land(gw.gateway.engine, RECORDS, ("customer_id",))
    return gw


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return dict(error)


async def test_the_panels_are_listed(gw: InProcessGateway) -> None:
    response = await gw.http.get("/api/analytics", headers=gw.admin)
    assert response.status_code == 200
    panels = {p["name"]: p for p in response.json()["data"]}
    assert panels["latency"]["layer"] == "control" and panels["tags"]["layer"] == "activity"
    assert panels["tags"]["path"] == "/api/analytics/tags"
    assert all(p["title"] and p["question"].endswith("?") for p in panels.values())


async def test_a_panel_answers_from_the_ledger(landed: InProcessGateway) -> None:
    response = await landed.http.get("/api/analytics/latency", params=WINDOW, headers=landed.admin)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["panel"] == "latency" and answer["window"]["since"] == WINDOW["since"]
    assert answer["totals"]["requests"] == len(RECORDS)
    assert sum(row["requests"] for row in answer["rows"]) == len(RECORDS)
    assert answer["columns"][0] == {"key": "label", "title": "group"}
    assert answer["scope"] == {"teams": None, "user_id": None}


async def test_the_analytics_config_in_force_decides_the_source(gw: InProcessGateway) -> None:
    """A key is read from raw rows until it is configured and its rollups cover the window:
    configured today, last week's rows have none until `rebuild-rollups` fills them."""
    await land(gw.gateway.engine, RECORDS)  # written while no key was rolled up

    async def tags(**extra: str) -> dict[str, Any]:
        response = await gw.http.get(
            "/api/analytics/tags", params={**WINDOW, **extra}, headers=gw.admin
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    before = await tags(group_by="metadata.customer_id")
    assert before["source"] == "requests"
    await gw.apply(ANALYTICS)
    configured = await tags()
    assert configured["group_by"] == ["metadata.customer_id"]
    assert configured["source"] == "requests"  # the rollup starts now, the window is older
    assert any("rolled up since" in note for note in configured["notes"])
    await RollupRebuild(gw.gateway.engine).run()
    rebuilt = await tags()
    assert rebuilt["source"] == "rollup_metadata"
    assert rebuilt["group_by"] == ["metadata.customer_id"]
    assert rebuilt["rows"] == before["rows"] and rebuilt["totals"] == before["totals"]


@pytest.mark.parametrize(
    ("path", "params", "status", "param"),
    [
        ("/api/analytics/nope", {}, 404, "panel"),
        ("/api/analytics/latency", {"since": "soon"}, 400, "since"),
        ("/api/analytics/latency", {"group_by": "colour"}, 400, "group_by"),
        ("/api/analytics/tags", {"limit": "-1"}, 400, "limit"),
        ("/api/analytics/tags", {"favourite": "x"}, 400, "favourite"),
        ("/api/analytics/tags", {"group_by": "metadata.feature", "since": "30d"}, 400, "group_by"),
        ("/api/analytics/tags", {"team": "a\x00b"}, 400, None),
    ],
)
async def test_refusals_are_json_in_the_admin_shape(
    gw: InProcessGateway, path: str, params: dict[str, str], status: int, param: str | None
) -> None:
    error = error_of(await gw.http.get(path, params=params, headers=gw.admin), status)
    assert error["param"] == param
    if status == 404:
        assert error["code"] == "panel_not_found" and "latency, tags" in error["message"]


async def test_a_model_key_is_no_admin_key(gw: InProcessGateway) -> None:
    key = await gw.create_key(user_id="ana", name="laptop")
    response = await gw.http.get("/api/analytics", headers={"authorization": f"Bearer {key}"})
    error_of(response, 403)
    error_of(await gw.http.get("/api/analytics/latency"), 401)


# -- roles, through the admin gate --------------------------------------------------------


class HeaderRoles:
    """An authenticator for tests: the principal is named by x-test-* headers (the
    gateway's own resolves admin API tokens to the same principals)."""

    def resolve(self, scope: Scope) -> AdminPrincipal:
        headers = Request(scope).headers
        teams = headers.get("x-test-teams")
        return AdminPrincipal(
            "tester",
            Role(headers["x-test-role"]),
            teams=tuple(teams.split(",")) if teams else (),
            user_id=headers.get("x-test-user"),
        )


@pytest.fixture
async def as_role(landed: InProcessGateway) -> AsyncIterator[Any]:
    gate = AdminGate(Starlette(), admin_app(analytics_routes(landed.gateway)), HeaderRoles())
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:

        async def get(panel: str, role: str, **params: str) -> httpx.Response:
            headers = {"x-test-role": role}
            for header in ("teams", "user"):
                if header in params:
                    headers[f"x-test-{header}"] = params.pop(header)
            return await http.get(
                f"/api/analytics/{panel}", params={**WINDOW, **params}, headers=headers
            )

        yield get


@pytest.mark.parametrize("role", ["finance", "platform", "security", "team-lead"])
async def test_people_views_are_403_for_every_role_but_admin(as_role: Any, role: str) -> None:
    for panel in ("tags", "latency"):
        for params, param in (
            ({"group_by": "user_id"}, "group_by"),
            ({"user_id": "ana"}, "user_id"),
        ):
            response = await as_role(panel, role, teams="search", **params)
            error = error_of(response, 403)
            assert error["param"] == param and error["code"] == "people_view_forbidden"
        assert (await as_role(panel, role, teams="search")).status_code == 200
    assert (await as_role("nope", role)).status_code == 404  # every role may ask


async def test_a_team_lead_sees_its_teams_and_no_other(as_role: Any) -> None:
    error = error_of(await as_role("tags", "team-lead", teams="search,infra", team="data"), 403)
    assert error["param"] == "team" and error["code"] == "team_forbidden"
    answer = (await as_role("tags", "team-lead", teams="search,infra", group_by="team")).json()
    assert {r["group"].get("team") for r in answer["rows"]} == {"search", "infra"}
    assert answer["totals"]["requests"] == sum(1 for r in RECORDS if r.team in ("search", "infra"))


async def test_a_member_sees_itself_only(as_role: Any) -> None:
    error = error_of(await as_role("tags", "member", user="bo", user_id="ana"), 403)
    assert error["param"] == "user_id"
    answer = (await as_role("tags", "member", user="bo", group_by="user_id")).json()
    assert [r["label"] for r in answer["rows"]] == ["bo"]
    assert answer["totals"]["requests"] == sum(1 for r in RECORDS if r.user_id == "bo")


async def test_an_admin_people_view_is_audited(as_role: Any, landed: InProcessGateway) -> None:
    assert (await as_role("tags", "admin", group_by="team")).status_code == 200
    assert (await as_role("tags", "admin", group_by="user_id")).status_code == 200
    assert (await as_role("tags", "member", user="bo", group_by="user_id")).status_code == 200
    trail = await landed.http.get("/api/audit", headers=landed.admin)
    views = [e for e in trail.json()["data"] if e["action"] == "people.view"]
    assert len(views) == 1 and views[0]["principal"] == "tester"
    assert (
        views[0]["path"].startswith("/api/analytics/tags?")
        and "group_by=user_id" in views[0]["path"]
    )
