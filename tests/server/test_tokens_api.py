"""Admin API tokens, roles and the audit trail through the gateway's real app (in process,
the emulator as upstream), on SQLite and PostgreSQL: a token is shown once and works with
its role at once; bad requests are 400s naming the field; a member sees its own ledger
rows only; an admin's ledger listing is in the trail before the rows are read, and is
refused when the trail cannot be written; a team lead sees its teams' budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from sluicegate.server.app import Gateway
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import fresh_postgres_database

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def gw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        gateway = Gateway(settings_for(tmp_path, database_url=url), upstream=emulator_upstream())
        async with serving(gateway) as running:
            yield running


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def admin_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


async def make_token(gw: InProcessGateway, **body: Any) -> dict[str, Any]:
    response = await gw.http.post("/api/tokens", json=body, headers=gw.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def audit_rows(gw: InProcessGateway, **query: str) -> list[dict[str, Any]]:
    response = await gw.http.get("/api/audit", params=query, headers=gw.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_a_token_is_shown_once_and_works_with_its_role(gw: InProcessGateway) -> None:
    created = await make_token(gw, name="finance-bot", role="finance")
    token = created["token"]
    assert token.startswith("sga-")
    assert {k: created[k] for k in ("name", "role", "teams", "user_id", "state")} == {
        "name": "finance-bot",
        "role": "finance",
        "teams": [],
        "user_id": None,
        "state": "active",
    }
    assert created["created_by"] == "admin" and token.startswith(created["token_prefix"])

    assert (await gw.http.get("/api/budgets", headers=bearer(token))).status_code == 200
    assert (await gw.http.get("/api/config", headers={"x-api-key": token})).status_code == 200
    refused = admin_error(await gw.http.get("/api/keys", headers=bearer(token)), 403)
    assert refused["code"] == "role_forbidden"
    assert refused["message"] == ("the finance role may not GET /api/keys (roles allowed: admin)")

    listing = (await gw.http.get("/api/tokens", headers=gw.admin)).json()
    (shown,) = listing["data"]
    assert "token" not in shown and "token_hash" not in shown and token not in str(listing)
    assert shown["id"] == created["id"] and shown["last_used_at"] is not None  # just used


BAD_BODIES = [
    ({"name": "x", "role": "owner"}, "role"),
    ({"role": "finance"}, "name"),
    ({"name": "x"}, "role"),
    ({"name": "x", "role": "team-lead"}, "teams"),
    ({"name": "x", "role": "team-lead", "teams": "search"}, "teams"),
    ({"name": "x", "role": "team-lead", "teams": [1]}, "teams"),
    ({"name": "x", "role": "member"}, "user_id"),
    ({"name": "x", "role": "member", "user_id": 7}, "user_id"),
    ({"name": "x", "role": "finance", "teams": ["search"]}, "teams"),
    ({"name": "x", "role": "security", "user_id": "ana"}, "user_id"),
    ({"name": "x", "role": "admin", "expires_at": 1}, "expires_at"),
    ({"name": ["x"], "role": "admin"}, "name"),
]


@pytest.mark.parametrize("body,param", BAD_BODIES)
async def test_a_bad_token_request_is_a_400_naming_the_field(
    gw: InProcessGateway, body: dict[str, Any], param: str
) -> None:
    error = admin_error(await gw.http.post("/api/tokens", json=body, headers=gw.admin), 400)
    assert error["param"] == param
    assert (await gw.http.get("/api/tokens", headers=gw.admin)).json()["data"] == []


async def test_a_body_that_is_not_an_object_is_a_400(gw: InProcessGateway) -> None:
    for content in (b"[]", b"{", b'"finance"'):
        response = await gw.http.post("/api/tokens", content=content, headers=gw.admin)
        admin_error(response, 400)


async def test_the_gate_tells_credentials_apart(gw: InProcessGateway) -> None:
    key = await gw.create_key(user_id="ana", name="ana-laptop")
    error = admin_error(await gw.http.get("/api/budgets", headers=bearer(key)), 403)
    assert error["code"] == "admin_required"  # a model-call key is no admin credential
    error = admin_error(await gw.http.get("/api/budgets", headers=bearer("sga-made-up")), 401)
    assert error["code"] == "invalid_admin_token"
    admin_error(await gw.http.get("/api/budgets"), 401)

    token = (await make_token(gw, name="ops", role="platform"))["token"]
    assert (await gw.http.get("/api/targets", headers=bearer(token))).status_code == 200
    (listed,) = (await gw.http.get("/api/tokens", headers=gw.admin)).json()["data"]
    revoked = await gw.http.delete(f"/api/tokens/{listed['id']}", headers=gw.admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    error = admin_error(await gw.http.get("/api/targets", headers=bearer(token)), 401)
    assert error["code"] == "invalid_admin_token"  # at once, on this replica
    again = await gw.http.delete(f"/api/tokens/{listed['id']}", headers=gw.admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = admin_error(await gw.http.delete("/api/tokens/tok_none", headers=gw.admin), 404)
    assert missing["code"] == "token_not_found"
    # a model call with an admin token is no model call
    call = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO},
        headers=bearer(token),
    )
    assert call.status_code == 401


async def test_an_admin_token_manages_tokens_and_the_trail_names_it(gw: InProcessGateway) -> None:
    root = await make_token(gw, name="second-admin", role="admin")
    member = await gw.http.post(
        "/api/tokens",
        json={"name": "ana", "role": "member", "user_id": "ana"},
        headers=bearer(root["token"]),
    )
    assert member.status_code == 201, member.text
    member_id = member.json()["id"]
    assert member.json()["created_by"] == "second-admin"
    revoked = await gw.http.delete(f"/api/tokens/{member_id}", headers=bearer(root["token"]))
    assert revoked.status_code == 200

    security = (await make_token(gw, name="sec", role="security"))["token"]
    listed = await gw.http.get("/api/audit", headers=bearer(security))
    assert listed.status_code == 200
    trail = [
        (r["action"], r["principal"], r["role"], r["token_id"], r["target"], r["path"])
        for r in reversed(listed.json()["data"])
    ]
    sec_id = trail[-1][4]
    assert trail == [
        ("token.create", "admin", "admin", None, root["id"], "/api/tokens"),
        ("token.create", "second-admin", "admin", root["id"], member_id, "/api/tokens"),
        (
            "token.revoke",
            "second-admin",
            "admin",
            root["id"],
            member_id,
            f"/api/tokens/{member_id}",
        ),
        ("token.create", "admin", "admin", None, sec_id, "/api/tokens"),
    ]
    platform = (await make_token(gw, name="ops", role="platform"))["token"]
    admin_error(await gw.http.get("/api/audit", headers=bearer(platform)), 403)
    admin_error(await gw.http.post("/api/tokens", json={}, headers=bearer(security)), 403)


async def call_as(gw: InProcessGateway, key: str, n: int) -> None:
    for _ in range(n):
        response = await gw.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": HELLO},
            headers=bearer(key),
        )
        assert response.status_code == 200, response.text


async def test_a_member_sees_its_own_requests_and_an_admin_s_look_is_audited(
    gw: InProcessGateway,
) -> None:
    await call_as(gw, await gw.create_key(user_id="ana", team="search"), 2)
    await call_as(gw, await gw.create_key(user_id="bob", team="search"), 3)
    ana = (await make_token(gw, name="ana", role="member", user_id="ana"))["token"]
    before = len(await audit_rows(gw, action="people.view"))

    own = await gw.http.get("/api/requests", headers=bearer(ana))
    assert own.status_code == 200
    assert [row["user_id"] for row in own.json()["data"]] == ["ana", "ana"]
    asked = await gw.http.get("/api/requests", params={"user_id": "ana"}, headers=bearer(ana))
    assert len(asked.json()["data"]) == 2
    other = admin_error(
        await gw.http.get("/api/requests", params={"user_id": "bob"}, headers=bearer(ana)), 403
    )
    assert other["param"] == "user_id" and other["code"] == "role_forbidden"
    assert len(await audit_rows(gw, action="people.view")) == before  # its own: no view

    everyone = await gw.http.get("/api/requests", params={"team": "search"}, headers=gw.admin)
    assert sorted(row["user_id"] for row in everyone.json()["data"]) == ["ana"] * 2 + ["bob"] * 3
    newest = (await audit_rows(gw, action="people.view"))[0]
    assert (newest["principal"], newest["role"], newest["path"]) == (
        "admin",
        "admin",
        "/api/requests?team=search",
    )


async def test_no_trail_no_rows(gw: InProcessGateway) -> None:
    """A people view the audit trail cannot record is refused, not served unrecorded."""
    await call_as(gw, await gw.create_key(user_id="ana"), 1)
    engine = gw.gateway.engine
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE admin_audit RENAME TO admin_audit_away"))
    try:
        response = await gw.http.get("/api/requests", headers=gw.admin)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE admin_audit_away RENAME TO admin_audit"))
    error = admin_error(response, 503)
    assert error["code"] == "store_unavailable"
    assert "ana" not in response.text
    assert (await gw.http.get("/api/requests", headers=gw.admin)).status_code == 200


@pytest.mark.parametrize(
    "query,param",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"action": "login"}, "action"),
        ({"cursor": "nope"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"principal": "x" * 300}, "principal"),
    ],
)
async def test_bad_audit_queries_are_400s(
    gw: InProcessGateway, query: dict[str, str], param: str
) -> None:
    response = await gw.http.get("/api/audit", params=query, headers=gw.admin)
    assert admin_error(response, 400)["param"] == param


async def test_bad_token_listing_queries_are_400s(gw: InProcessGateway) -> None:
    for query, param in (({"state": "gone"}, "state"), ({"limit": "0"}, "limit")):
        response = await gw.http.get("/api/tokens", params=query, headers=gw.admin)
        assert admin_error(response, 400)["param"] == param


async def test_the_trail_pages_with_its_cursor(gw: InProcessGateway) -> None:
    made = [(await make_token(gw, name=f"t{i}", role="finance"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", "action": "token.create", **({"cursor": cursor} if cursor else {})}
        page = (await gw.http.get("/api/audit", params=query, headers=gw.admin)).json()
        assert len(page["data"]) <= 2
        seen += [row["target"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


BUDGETS = """\
name: team-budgets
type: gateway-budget-config
budgets:
  - {id: search-monthly, scope: {subjects: ["team:search"]}, ceiling_usd: 100, window: monthly}
  - {id: search-header, scope: {metadata: {X-TFY-Team: [search]}}, ceiling_usd: 50, window: daily}
  - id: search-and-ads
    scope: {subjects: ["team:search", "team:ads"]}
    ceiling_usd: 9
    window: daily
  - {id: ads-monthly, scope: {subjects: ["team:ads"]}, ceiling_usd: 100, window: monthly}
  - {id: org-wide, ceiling_usd: 1000, window: monthly}
  - {id: bob, scope: {subjects: ["user:bob"]}, ceiling_usd: 5, window: daily}
  - id: bob-in-search
    scope: {subjects: ["team:search"], metadata: {X-TFY-User-ID: [bob]}}
    ceiling_usd: 5
    window: daily
"""


async def budget_ids(gw: InProcessGateway, token: str) -> list[str]:
    response = await gw.http.get("/api/budgets", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


async def test_each_role_sees_the_budgets_its_scope_allows(gw: InProcessGateway) -> None:
    await gw.apply(BUDGETS)
    everything = [
        "search-monthly",
        "search-header",
        "search-and-ads",
        "ads-monthly",
        "org-wide",
        "bob",
        "bob-in-search",
    ]
    lead = await make_token(gw, name="lead", role="team-lead", teams=["search"])
    both = await make_token(gw, name="lead2", role="team-lead", teams=["search", "ads"])
    finance = await make_token(gw, name="fin", role="finance")
    assert await budget_ids(gw, lead["token"]) == ["search-monthly", "search-header"]
    assert await budget_ids(gw, both["token"]) == [
        "search-monthly",
        "search-header",
        "search-and-ads",
        "ads-monthly",
    ]
    assert await budget_ids(gw, finance["token"]) == everything[:5]  # no one person's spend
    assert await budget_ids(gw, "in-process-admin-key") == everything
