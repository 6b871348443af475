"""Keys that pin envelope fields, and rotation that never undoes a revocation (issue 10,
items 7 and 8), through a real gateway on SQLite and on PostgreSQL: the pins and the
rotation links are stored in the key table, so both dialects are exercised."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.e2e.policy_support import (
    budget_rows,
    chat,
    cli,
    events,
    hammer,
    prices_doc,
    replace_config,
    rows_for,
    uid,
)
from tests.support import fresh_postgres_database

LONG = "tell me a long story about rivers and mountains " * 3


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("pins") / "sluicegate.db"
        with run_gateway(f"sqlite:///{db}") as running:
            yield running
    else:
        with fresh_postgres_database() as url, run_gateway(url) as running:
            yield running


def messages(gw: RunningGateway, key: str, headers: dict[str, str]) -> httpx.Response:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return httpx.post(
        gw.url + "/v1/messages", json=body, timeout=30, headers={"x-api-key": key, **headers}
    )


def rotate(gw: RunningGateway, key_id: str, grace: float = 3600) -> httpx.Response:
    return gw.admin.post(f"/api/keys/{key_id}/rotate", json={"grace_seconds": grace})


def listed(gw: RunningGateway, key_id: str) -> dict:
    return next(k for k in gw.admin.get("/api/keys").json()["data"] if k["id"] == key_id)


# --- item 7: pins ------------------------------------------------------------------
def test_an_intern_key_pinned_to_its_project_cannot_escape_the_hard_budget(gw):
    """$0.01 a call (10 output tokens at $1000 per million), a $0.02 hard cap on the
    `intern-sandbox` project: two calls, then 429; a header naming another project is
    refused (403, in the client's format, naming the field), never served uncapped."""
    replace_config(
        gw,
        prices_doc("intern-prices", **{"gpt-4o-mini": (0, 1000)}),
        """name: intern-budget
type: gateway-budget-config
budgets:
  - id: intern-sandbox-cap
    scope: {metadata: {project: intern-sandbox}}
    ceiling_usd: 0.02
    window: daily
    on_exceed: hard_block
""",
    )
    intern = gw.create_key(
        user_id=f"intern-{uid()}", project="intern-sandbox", pinned=["project"], name="intern"
    )
    assert listed(gw, intern["id"])["pinned"] == ["user_id", "project"]
    key = intern["key"]
    spent = [chat(gw, key, max_tokens=10, content=LONG) for _ in range(2)]
    assert [r.status_code for r in spent] == [200, 200]
    assert chat(gw, key, max_tokens=10, content=LONG).status_code == 429

    escape = chat(gw, key, max_tokens=10, headers={"X-Sluice-Project": "other"})
    assert escape.status_code == 403, escape.text
    error = escape.json()["error"]
    assert error["code"] == "envelope_conflict" and error["param"] == "project"
    assert "intern-sandbox" in error["message"] and "other" in error["message"]
    legacy = chat(gw, key, max_tokens=10, headers={"X-TFY-Project": "other"})
    assert legacy.status_code == 403
    anthropic_escape = messages(gw, key, {"X-Sluice-Project": "other"})
    assert anthropic_escape.status_code == 403
    assert anthropic_escape.json()["error"]["type"] == "permission_error"
    assert "project" in anthropic_escape.json()["error"]["message"]

    # the pinned value itself is fine as a header: the budget still binds it
    same = chat(gw, key, max_tokens=10, headers={"X-Sluice-Project": "intern-sandbox"})
    assert same.status_code == 429
    assert same.json()["error"]["code"] == "budget_exceeded"

    rows = rows_for(gw, [*spent, escape, anthropic_escape, same])
    assert [r["status_code"] for r in rows] == [200, 200, 403, 403, 429]
    assert {r["key_id"] for r in rows} == {intern["id"]}
    assert {r["project"] for r in rows if r["status_code"] != 403} == {"intern-sandbox"}
    assert events(rows[-1]) == [("intern-sandbox-cap", "hard_block")]
    served = [r for r in gw.requests(key_id=intern["id"]) if r["status_code"] == 200]
    assert sum(r["cost_usd"] for r in served) == pytest.approx(0.02)
    assert budget_rows(gw, "intern-sandbox-cap")["daily"]["spent_usd"] == pytest.approx(0.02)


def test_any_envelope_field_can_be_a_pin_or_a_default(gw):
    created = gw.create_key(
        user_id=f"u-{uid()}",
        team="ml",
        project="etl",
        environment="dev",
        workflow_tag="nightly",
        cost_center="cc-7",
        pinned=["environment", "cost_center"],
    )
    key = created["key"]
    row = listed(gw, created["id"])
    assert row["pinned"] == ["user_id", "team", "environment", "cost_center"]
    assert (row["environment"], row["workflow_tag"], row["cost_center"]) == (
        "dev",
        "nightly",
        "cc-7",
    )

    plain = chat(gw, key)
    moved = chat(gw, key, headers={"X-Sluice-Project": "adhoc", "X-Sluice-Workflow-Tag": "manual"})
    matching = chat(gw, key, headers={"X-Sluice-Environment": "dev"})
    assert [r.status_code for r in (plain, moved, matching)] == [200, 200, 200]
    first, second, third = rows_for(gw, [plain, moved, matching])
    assert (first["project"], first["environment"], first["workflow_tag"]) == (
        "etl",
        "dev",
        "nightly",
    )
    assert first["cost_center"] == "cc-7"
    assert (second["project"], second["workflow_tag"], second["environment"]) == (
        "adhoc",  # defaults a header may change
        "manual",
        "dev",
    )
    assert third["environment"] == "dev"

    for header, field in [
        ({"X-Sluice-Environment": "production"}, "environment"),
        ({"X-Sluice-Cost-Center": "cc-1"}, "cost_center"),
        ({"X-Sluice-Team": "ads"}, "team"),
        ({"X-Sluice-User-ID": "someone-else"}, "user_id"),
    ]:
        refused = chat(gw, key, headers=header)
        assert refused.status_code == 403, (header, refused.text)
        assert refused.json()["error"]["param"] == field


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"pinned": ["project"]}, "pinned"),  # a pin needs a value on the key
        ({"project": "p", "pinned": ["session_id"]}, "pinned"),  # not pinnable
        ({"project": "p", "pinned": ["colour"]}, "pinned"),
        ({"project": "p", "pinned": "project"}, "pinned"),
        ({"environment": "bad value!"}, "environment"),  # what no header could match
        ({"cost_center": 7}, "cost_center"),
    ],
)
def test_bad_pins_are_400_naming_the_field(gw, fields, param):
    response = gw.admin.post("/api/keys", json={"user_id": "x", **fields})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_rotation_keeps_the_pins(gw):
    created = gw.create_key(project="locked", pinned=["project"], environment="ci")
    rotated = rotate(gw, created["id"])
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert (new["project"], new["pinned"], new["environment"]) == ("locked", ["project"], "ci")
    assert chat(gw, new["key"], headers={"X-Sluice-Project": "free"}).status_code == 403


def test_the_cli_creates_and_lists_pinned_keys(gw):
    created = cli(
        gw, "keys", "create", "--project", "intern-sandbox", "--environment", "dev",
        "--pin", "project", "--pin", "environment", "--name", "cli-intern",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("id:")[1].split()[0]
    raw = created.stdout.split("key:")[1].split()[0]
    assert listed(gw, key_id)["pinned"] == ["project", "environment"]
    assert chat(gw, raw, headers={"X-Sluice-Environment": "prod"}).status_code == 403
    table = cli(gw, "keys", "list")
    line = next(line for line in table.stdout.splitlines() if key_id in line)
    assert "project,environment" in line
    narrow = cli(gw, "keys", "list", columns=80)  # a default terminal: the id stays whole
    assert narrow.returncode == 0 and max(map(len, narrow.stdout.splitlines())) <= 80
    assert any(key_id in line for line in narrow.stdout.splitlines())
    assert listed(gw, key_id)["key_prefix"] + "…" in narrow.stdout
    bad = cli(gw, "keys", "create", "--pin", "project")
    assert bad.returncode == 1 and "pinned" in bad.stderr


# --- item 8: rotation ----------------------------------------------------------------
def test_a_revoked_key_cannot_be_rotated_back_to_life(gw):
    created = gw.create_key(user_id=f"leaker-{uid()}")
    gw.admin.delete(f"/api/keys/{created['id']}").raise_for_status()
    refused = rotate(gw, created["id"])
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "key_revoked" and "revoked" in error["message"]
    assert "key" not in refused.json()
    assert chat(gw, created["key"]).status_code == 401
    assert [
        k for k in gw.admin.get("/api/keys").json()["data"] if k["rotated_from"] == created["id"]
    ] == []


def test_a_replaced_key_cannot_be_rotated_again(gw):
    created = gw.create_key(user_id=f"rotator-{uid()}")
    first = rotate(gw, created["id"], grace=0.5)
    assert first.status_code == 200
    during = rotate(gw, created["id"])
    assert during.status_code == 409 and during.json()["error"]["code"] == "key_replaced"
    assert first.json()["id"] in during.json()["error"]["message"]  # rotate that one instead
    time.sleep(0.7)
    assert chat(gw, created["key"]).status_code == 401
    after = rotate(gw, created["id"], grace=3600)
    assert after.status_code == 409, after.text
    assert chat(gw, created["key"]).status_code == 401  # the grace is not brought back
    assert listed(gw, created["id"])["state"] == "rotated"
    assert chat(gw, first.json()["key"]).status_code == 200
    assert rotate(gw, first.json()["id"]).status_code == 200  # the live one rotates


def test_concurrent_rotations_of_one_key_issue_one_replacement(gw):
    created = gw.create_key(user_id=f"racer-{uid()}")
    responses = hammer([lambda: rotate(gw, created["id"]) for _ in range(8)], workers=8)
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    children = [
        k for k in gw.admin.get("/api/keys").json()["data"] if k["rotated_from"] == created["id"]
    ]
    assert len(children) == 1 and listed(gw, created["id"])["replaced_by"] == children[0]["id"]


def test_the_cli_refuses_to_rotate_a_revoked_key(gw):
    created = gw.create_key(user_id=f"cli-{uid()}")
    assert cli(gw, "keys", "revoke", created["id"]).returncode == 0
    refused = cli(gw, "keys", "rotate", created["id"])
    assert refused.returncode == 1, refused.stdout
    assert "revoked" in refused.stderr and "new key" not in refused.stdout
    assert chat(gw, created["key"]).status_code == 401
