"""`POST /api/outcomes` and `GET /api/outcomes` through the whole gateway in process, on
SQLite and PostgreSQL: recording (201, then 200 with the stored row for the same external
id), every bad field a 400 naming it, the listing's filters and cursor, and who may do
what (roles)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sluicegate.model.record import LedgerRecord
from tests.outcomes.conftest import as_role
from tests.server.inprocess import InProcessGateway


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return dict(error)


PR = {
    "external_id": "acme/search#42",
    "kind": "pr_merged",
    "session_id": "sess-abc-123",
    "workflow_tag": "code-review",
    "url": "https://github.com/acme/search/pull/42",
    "value": 3,
    "ts": "2026-05-04T15:21:18Z",
    "extra": {"repo": "acme/search", "number": 42},
}


async def test_an_outcome_is_recorded_once_and_listed(gw: InProcessGateway) -> None:
    created = await gw.http.post("/api/outcomes", json=PR, headers=gw.admin)
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["id"].startswith("out_")
    assert {k: row[k] for k in ("source", "kind", "session_id", "workflow_tag", "value")} == {
        "source": "api",
        "kind": "pr_merged",
        "session_id": "sess-abc-123",
        "workflow_tag": "code-review",
        "value": 3.0,
    }
    assert (row["ts"], row["ts_unix"]) == ("2026-05-04T15:21:18.000Z", 1777908078.0)
    assert row["extra"] == {"repo": "acme/search", "number": 42}
    assert abs(row["received_at_unix"] - time.time()) < 60

    again = await gw.http.post(
        "/api/outcomes", json={**PR, "value": 8, "session_id": "other"}, headers=gw.admin
    )
    assert again.status_code == 200, again.text
    assert again.json() == row  # the stored row, unchanged

    listed = await gw.http.get("/api/outcomes", headers=gw.admin)
    assert listed.status_code == 200
    assert listed.json() == {"data": [row], "next_cursor": None}


async def test_an_eval_run_carries_its_pass_rate(gw: InProcessGateway) -> None:
    body = {"external_id": "eval-7", "kind": "eval_run", "session_id": "s1", "pass_rate": 0.875}
    created = await gw.http.post("/api/outcomes", json=body, headers=gw.admin)
    assert created.status_code == 201, created.text
    assert created.json()["pass_rate"] == 0.875
    assert created.json()["ts_unix"] == created.json()["received_at_unix"]  # ts: now


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({**PR, "kind": "deployed"}, "kind", "Invalid enum value 'deployed'"),
        ({k: v for k, v in PR.items() if k != "kind"}, "kind", "missing required field"),
        ({k: v for k, v in PR.items() if k != "external_id"}, "external_id", "missing"),
        ({**PR, "external_id": ""}, "external_id", "length >= 1"),
        ({**PR, "external_id": "x" * 257}, "external_id", "length <= 256"),
        ({**PR, "external_id": "a\u0000b"}, "external_id", "NUL"),
        ({**PR, "session_id": "has space"}, "session_id", "1-128 characters"),
        ({**PR, "session_id": "s" * 129}, "session_id", "1-128 characters"),
        ({**PR, "session_id": 7}, "session_id", "Expected `str`, got `int`"),
        ({**PR, "workflow_tag": "a\u0000"}, "workflow_tag", "1-128 characters"),
        ({**PR, "url": "javascript:alert(1)"}, "url", "http(s) URL"),
        ({**PR, "url": "https://x/" + "a" * 2048}, "url", "length <= 2048"),
        ({**PR, "value": "3"}, "value", "Expected `float | null`, got `str`"),
        ({**PR, "value": 1e300}, "value", "<= 1000000000000000.0"),
        ({**PR, "value": True}, "value", "got `bool`"),
        ({**PR, "pass_rate": 0.5}, "pass_rate", "eval_run outcomes only"),
        ({**PR, "kind": "eval_run"}, "pass_rate", "needs pass_rate"),
        ({**PR, "kind": "eval_run", "pass_rate": 1.5}, "pass_rate", "<= 1.0"),
        ({**PR, "kind": "eval_run", "pass_rate": -0.1}, "pass_rate", ">= 0.0"),
        ({**PR, "ts": "yesterday"}, "ts", "not a time"),
        ({**PR, "ts": -5}, "ts", ">= 0.0"),
        ({**PR, "ts": time.time() + 3 * 86400}, "ts", "a day from now"),
        ({**PR, "ts": "2999-01-01T00:00:00Z"}, "ts", "a day from now"),
        ({**PR, "extra": [1, 2]}, "extra", "a JSON object"),
        ({**PR, "extra": {"a": "x" * 5000}}, "extra", "at most 4096 bytes"),
        ({**PR, "extra": {"a\u0000": 1}}, "extra", "NUL"),
        ({**PR, "team": "search"}, "team", "unknown field `team`"),
    ],
)
async def test_every_bad_field_is_a_400_naming_it(
    gw_sqlite: InProcessGateway, body: dict[str, Any], param: str, says: str
) -> None:
    response = await gw_sqlite.http.post("/api/outcomes", json=body, headers=gw_sqlite.admin)
    error = error_of(response, 400)
    assert error["param"] == param, error
    assert says in error["message"], error


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b'{"extra": {"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}", "nests too deeply"),
    ],
)
async def test_a_body_that_is_not_an_outcome_is_a_400(
    gw_sqlite: InProcessGateway, content: bytes, says: str
) -> None:
    response = await gw_sqlite.http.post("/api/outcomes", content=content, headers=gw_sqlite.admin)
    assert says in error_of(response, 400)["message"]


async def test_an_outcome_body_is_bounded(gw_sqlite: InProcessGateway) -> None:
    body = {**PR, "extra": {"pad": "x" * 70_000}}
    response = await gw_sqlite.http.post("/api/outcomes", json=body, headers=gw_sqlite.admin)
    assert error_of(response, 413)["type"] == "request_too_large"


async def test_the_listing_filters_and_pages(gw: InProcessGateway) -> None:
    for i in range(5):
        body = {
            "external_id": f"t-{i}",
            "kind": "ticket_closed" if i % 2 else "incident_resolved",
            "session_id": f"s{i % 2}",
            "ts": 1_760_000_000 + i,
        }
        assert (await gw.http.post("/api/outcomes", json=body, headers=gw.admin)).status_code == 201

    async def external_ids(**params: Any) -> list[str]:
        response = await gw.http.get("/api/outcomes", params=params, headers=gw.admin)
        assert response.status_code == 200, response.text
        return [row["external_id"] for row in response.json()["data"]]

    assert await external_ids() == ["t-4", "t-3", "t-2", "t-1", "t-0"]
    assert await external_ids(kind="ticket_closed") == ["t-3", "t-1"]
    assert await external_ids(session_id="s0", source="api") == ["t-4", "t-2", "t-0"]
    assert await external_ids(since="1760000001", until="2025-10-09T08:53:23Z") == ["t-2", "t-1"]
    assert await external_ids(source="github") == []

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await gw.http.get("/api/outcomes", params=params, headers=gw.admin)).json()
        pages.append([row["external_id"] for row in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["t-4", "t-3"], ["t-2", "t-1"], ["t-0"]]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("kind=deployed", "kind"),
        ("source=jira", "source"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("since=soon", "since"),
        ("until=1e400", "until"),
        ("session_id=has%20space", "session_id"),
        ("cursor=%%%", "cursor"),
        ("cursor=WzEsMl0", "cursor"),  # base64 of [1,2]: not a cursor this API made
    ],
)
async def test_bad_listing_parameters_are_400s_naming_them(
    gw_sqlite: InProcessGateway, query: str, param: str
) -> None:
    response = await gw_sqlite.http.get(f"/api/outcomes?{query}", headers=gw_sqlite.admin)
    assert error_of(response, 400)["param"] == param


async def test_who_may_record_and_list(gw_sqlite: InProcessGateway) -> None:
    http = gw_sqlite.http
    body = {"external_id": "r-1", "kind": "pr_merged", "session_id": "s1"}
    for role in ("finance", "security", "team-lead", "member"):
        error = error_of(await http.post("/api/outcomes", json=body, headers=as_role(role)), 403)
        assert error["code"] == "role_forbidden"
        assert f"the {role} role may not POST /api/outcomes" in error["message"]
    assert (
        await http.post("/api/outcomes", json=body, headers=as_role("platform"))
    ).status_code == 201
    for role in ("security", "member"):
        error = error_of(await http.get("/api/outcomes", headers=as_role(role)), 403)
        assert error["code"] == "role_forbidden"
    for role in ("admin", "platform", "finance"):
        listed = await http.get("/api/outcomes", headers=as_role(role))
        assert [r["external_id"] for r in listed.json()["data"]] == ["r-1"]
    # without a key, or with a gateway key, the admin gate refuses as everywhere under /api/
    assert error_of(await http.post("/api/outcomes", json=body), 401)["code"] == "invalid_api_key"
    key = await gw_sqlite.create_key(name="k", user_id="alice")
    refused = await http.get("/api/outcomes", headers={"authorization": f"Bearer {key}"})
    assert error_of(refused, 403)["code"] == "admin_required"


async def test_a_team_lead_sees_the_outcomes_of_its_teams_sessions(gw: InProcessGateway) -> None:
    ledger = gw.gateway.ledger_store
    await ledger.write_batch(
        [
            LedgerRecord(
                request_id="r1", ts=1.0, status_code=200, session_id="s-search", team="search"
            ),
            LedgerRecord(
                request_id="r2", ts=2.0, status_code=200, session_id="s-billing", team="billing"
            ),
        ]
    )
    for session in ("s-search", "s-billing", "s-untraced"):
        body = {"external_id": session, "kind": "pr_merged", "session_id": session}
        assert (await gw.http.post("/api/outcomes", json=body, headers=gw.admin)).status_code == 201

    async def sessions(*teams: str) -> list[str]:
        response = await gw.http.get("/api/outcomes", headers=as_role("team-lead", *teams))
        assert response.status_code == 200, response.text
        return sorted(row["session_id"] for row in response.json()["data"])

    assert await sessions("search") == ["s-search"]
    assert await sessions("search", "billing") == ["s-billing", "s-search"]
    assert await sessions() == []
