"""POST /api/config/what-if through the gateway's real app: validated as apply is (the
same 400), nothing applied, bad parameters a clear 400, and only admin and platform
may ask."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Scope

from sluicegate.server.admin_auth import AdminGate, admin_app
from sluicegate.server.admin_whatif import what_if_routes
from sluicegate.server.app import Gateway
from sluicegate.server.roles import AdminPrincipal, Role
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import fresh_postgres_database
from tests.whatif.support import DAY, WED, bench, served

YAML = {"content-type": "application/yaml"}
FIVE_AN_HOUR = """
name: team-limits
type: gateway-rate-limit-config
rules:
  - id: five-an-hour
    limit: {requests: 5, window: 1h, scope: team}
"""
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def gw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A fresh gateway on each database, the emulator its upstream."""
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        gateway = Gateway(settings_for(tmp_path, database_url=url), upstream=emulator_upstream())
        async with serving(gateway) as running:
            yield running


async def what_if(gw: InProcessGateway, body: str, **params: str) -> httpx.Response:
    return await gw.http.post(
        "/api/config/what-if", content=body, params=params, headers={**gw.admin, **YAML}
    )


async def test_traffic_through_the_gateway_replayed_under_a_proposal(gw):
    """8 calls of team search through the gateway; a proposed 5 an hour per team would
    have refused the last 3. Nothing is applied."""
    key = await gw.create_key(name="search-bot", team="search", user_id="bot")
    for _ in range(8):
        answer = await gw.http.post(
            "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200, answer.text
    before = (await gw.http.get("/api/config/history", headers=gw.admin)).json()

    response = await what_if(gw, FIVE_AN_HOUR, window="1h")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows_read"] == report["rows_replayed"] == 8
    assert report["truncated"] is False
    (limit,) = report["rules"]
    assert limit["id"] == "five-an-hour" and limit["change"] == "added"
    assert limit["proposed"]["refused"]["requests"] == 3
    assert limit["proposed"]["first_trip"]["nth_match"] == 6
    assert limit["proposed"]["first_trip"]["scope"] == "team=search"
    assert limit["live"]["refused"]["requests"] == 0
    assert report["findings"][0].startswith("rule five-an-hour would have refused 3 requests")
    assert report["config"]["live_version"] == 0
    assert "+name: team-limits" in report["config"]["diff"]

    assert (await gw.http.get("/api/config/history", headers=gw.admin)).json() == before
    assert (await gw.http.get("/api/config", headers=gw.admin)).json()["version"] == 0
    still = await gw.http.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert still.status_code == 200  # the limit was never applied


async def test_an_invalid_proposal_is_the_400_apply_gives(gw):
    bad = FIVE_AN_HOUR.replace("window: 1h", "window: fortnightly").replace(
        "requests: 5", "requests: -1"
    )
    refused = await what_if(gw, bad)
    applied = await gw.http.post(
        "/api/config", content=bad, params={"dry_run": "true"}, headers={**gw.admin, **YAML}
    )
    assert refused.status_code == applied.status_code == 400
    assert refused.json() == applied.json()
    assert len(refused.json()["error"]["problems"]) == 2


async def test_strict_refuses_a_proposal_with_warnings_as_apply_does(gw):
    budget = """
name: b
type: gateway-budget-config
budgets:
  - id: x
    ceiling_usd: 5
    window: daily
    alerts: [{at_pct: 80, notify: [nobody]}]
"""
    strict = await what_if(gw, budget, strict="true")
    assert strict.status_code == 400
    assert strict.json()["error"]["code"] == "config_warnings"
    relaxed = await what_if(gw, budget)
    assert relaxed.status_code == 200
    assert "nobody" in relaxed.json()["config"]["warnings"][0]["message"]


@pytest.mark.parametrize(
    ("params", "param", "says"),
    [
        ({"window": "40d"}, "window", "longer than the 31 days"),
        ({"window": "monthly"}, "window", "not a duration"),
        ({"window": "soon"}, "window", "not a duration"),
        ({"until": "yesterday"}, "until", "is not a time"),
        ({"until": "9999-12-31T00:00:00Z"}, "until", "within a year from now"),
        ({"replace": "maybe"}, "replace", "true or false"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(gw, params, param, says):
    response = await what_if(gw, FIVE_AN_HOUR, **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"]


async def test_an_empty_body_is_the_400_apply_gives(gw):
    response = await what_if(gw, "")
    assert response.status_code == 400
    assert response.json()["error"]["problems"][0]["message"] == "no documents found"


class FixedCaller:
    def __init__(self, principal: AdminPrincipal) -> None:
        self._principal = principal

    def resolve(self, scope: Scope) -> AdminPrincipal:
        return self._principal


async def _as(engine: Any, principal: AdminPrincipal) -> httpx.Response:
    b = bench(engine)
    await b.write([served(n, WED + n) for n in range(3)])
    gate = AdminGate(
        admin_app([]), admin_app(what_if_routes(lambda r: b.what_if)), FixedCaller(principal)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://gw"
    ) as http:
        return await http.post(
            "/api/config/what-if",
            content=FIVE_AN_HOUR,
            params={"window": "1d", "until": str(WED + DAY)},
            headers=YAML,
        )


@pytest.mark.parametrize("role", [Role.ADMIN, Role.PLATFORM])
async def test_admin_and_platform_may_ask(engine, role):
    response = await _as(engine, AdminPrincipal("someone", role))
    assert response.status_code == 200, response.text
    assert response.json()["rows_read"] == 3


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SECURITY, Role.TEAM_LEAD, Role.MEMBER])
async def test_other_roles_are_refused(engine, role):
    principal = AdminPrincipal("someone", role, teams=("search",), user_id="u1")
    response = await _as(engine, principal)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "role_forbidden"
    assert "roles allowed: admin, platform" in error["message"]
