from __future__ import annotations

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware

from sluicegate.config.live import LiveConfig
from sluicegate.config.service import ConfigService
from sluicegate.model.identity import Principal
from sluicegate.server.admin_auth import admin_app
from sluicegate.server.admin_config import config_routes
from tests.config.documents import BOTH, BUDGET, RATE_LIMITS
from tests.config.racing import RivalWritesFirst


class AsPrincipal(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        if "x-test-principal" in request.headers:
            request.state.principal = Principal(
                key_id="k1", name=request.headers["x-test-principal"]
            )
        return await call_next(request)


@pytest.fixture
async def live(service, registry):
    live = LiveConfig(service, registry, poll_interval=60)
    await live.start()
    yield live
    await live.stop()


@pytest.fixture
async def client(service, live):
    app = admin_app(
        config_routes(lambda r: service, lambda r: live), middleware=[Middleware(AsPrincipal)]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield client


YAML = {"content-type": "application/yaml"}


async def test_apply_yaml(client, live, store):
    response = await client.post("/api/config", content=BOTH, headers=YAML)
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["changed"], body["applied"]) == (1, True, True)
    assert body["documents"] == [
        {"type": "test-rate-limit", "name": "team-limits", "action": "created"},
        {"type": "test-budget", "name": "eng-budget", "action": "created"},
    ]
    assert "+name: team-limits" in body["diff"]
    assert (body["live_version"], body["live_error"], live.version) == (1, None, 1)
    assert (await store.latest()).applied_by == "admin"
    assert response.headers["content-type"] == "application/json"


async def test_apply_json_and_no_change(client):
    doc = '{"name": "b", "type": "test-budget", "ceiling_usd": 5}'
    headers = {"content-type": "application/json"}
    assert (await client.post("/api/config", content=doc, headers=headers)).json()["version"] == 1
    again = (await client.post("/api/config", content=doc, headers=headers)).json()
    assert (again["version"], again["changed"], again["diff"]) == (1, False, "no changes\n")


async def test_dry_run_and_replace(client, store):
    await client.post("/api/config", content=BOTH)
    dry = (await client.post("/api/config?dry_run=true&replace=true", content=BUDGET)).json()
    assert (dry["dry_run"], dry["changed"], dry["version"]) == (True, True, 1)
    assert {"type": "test-rate-limit", "name": "team-limits", "action": "deleted"} in dry[
        "documents"
    ]
    assert await store.latest_version_number() == 1
    done = (await client.post("/api/config?replace=1&comment=only+budgets", content=BUDGET)).json()
    assert done["version"] == 2
    assert (await store.latest()).comment == "only budgets"


async def test_invalid_config_is_a_400_with_problems(client, store):
    response = await client.post(
        "/api/config", content=RATE_LIMITS.replace("1m", "fortnight") + "extra: 1\n"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_config"
    assert error["problems"] == [
        {
            "document": "team-limits",
            "type": "test-rate-limit",
            "path": "rules[0].limit.window",
            "message": "'fortnight' is not a window; use 1m, 1h, 1d, ...",
        },
        {
            "document": "team-limits",
            "type": "test-rate-limit",
            "path": "",
            "message": "unknown field 'extra'",
        },
    ]
    assert "rules[0].limit.window" in error["message"]
    assert await store.latest_version_number() == 0


async def test_bad_requests(client):
    assert (await client.post("/api/config?dry_run=maybe", content=BOTH)).status_code == 400
    assert (await client.post("/api/config", content=b"\xff\xfe")).status_code == 400
    assert (await client.get("/api/config/history?limit=0")).status_code == 400
    assert (await client.get("/api/config/history?limit=x")).status_code == 400
    response = await client.post("/api/config/rollback", json={"version": "one"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "version"


async def test_show_history_rollback_delete(client, store):
    await client.post("/api/config", content=BOTH)
    await client.post(
        "/api/config?comment=hourly",
        content=RATE_LIMITS.replace("1m", "1h"),
        headers={"x-test-principal": "ops", "x-sluice-actor": "alice"},
    )
    shown = (await client.get("/api/config")).json()
    assert (shown["version"], shown["applied_by"], shown["comment"]) == (2, "ops (alice)", "hourly")
    assert {d["name"] for d in shown["documents"]} == {"team-limits", "eng-budget"}
    assert shown["live_version"] == 2
    history = (await client.get("/api/config/history?limit=5")).json()["versions"]
    assert [(v["version"], v["document_count"]) for v in history] == [(2, 2), (1, 2)]
    assert history[0]["documents"][0] == {"type": "test-rate-limit", "name": "team-limits"}
    v1 = (await client.get("/api/config/versions/1")).json()
    assert v1["version"] == 1 and len(v1["documents"]) == 2
    assert (await client.get("/api/config/versions/9")).status_code == 404

    rolled = (await client.post("/api/config/rollback", json={"version": 1})).json()
    assert (rolled["version"], rolled["live_version"]) == (3, 3)
    assert (await store.latest()).comment == "rollback to v1"
    missing = await client.post("/api/config/rollback", json={"version": 42})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "config_not_found"

    deleted = (await client.delete("/api/config/test-budget/eng-budget")).json()
    assert deleted["version"] == 4
    assert deleted["documents"] == [
        {"type": "test-budget", "name": "eng-budget", "action": "deleted"}
    ]
    assert (await client.delete("/api/config/test-budget/eng-budget")).status_code == 404


async def test_a_version_that_does_not_go_live_is_reported(client, live):
    def refuse(snapshot):
        if snapshot.get("test-budget", "eng-budget"):
            raise ValueError("no budgets on this replica")

    live.subscribe(refuse)
    body = (await client.post("/api/config", content=BOTH)).json()
    assert (body["version"], body["live_version"]) == (1, 0)
    assert "no budgets on this replica" in body["live_error"]


async def test_changes_that_lose_every_race_are_a_409(sqlite_store, registry):
    # Two real replicas cannot be made to collide five times in a row on demand, so a rival
    # write is forced in front of every append (RivalWritesFirst). The conflicts are still
    # the SQLite store's own: its primary key refuses each version the rival took first.
    racing = RivalWritesFirst(sqlite_store)
    service = ConfigService(racing, registry)
    live = LiveConfig(service, registry, poll_interval=60)
    await live.start()
    app = admin_app(config_routes(lambda r: service, lambda r: live))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client:
            response = await client.post("/api/config", content=BOTH, headers=YAML)
            assert response.status_code == 409
            assert response.json() == {
                "error": {
                    "message": "config changed concurrently; retry (another change was written "
                    "first 5 times in a row; nothing was applied)",
                    "type": "config_conflict",
                    "param": None,
                    "code": "config_conflict",
                }
            }
            assert racing.rival_versions == [1, 2, 3, 4, 5]
            assert {v.applied_by for v in await sqlite_store.history()} == {"rival"}

            deleted = await client.delete("/api/config/test-budget/rival-5")
            assert deleted.status_code == 409
            assert deleted.json()["error"]["type"] == "config_conflict"
            rolled = await client.post("/api/config/rollback", json={"version": 1})
            assert rolled.status_code == 409
            assert await sqlite_store.latest_version_number() == 15

            # a change that loses only a few races is rebased and applied: no error at all
            racing.times = len(racing.rival_versions) + 2
            applied = await client.post("/api/config", content=BOTH, headers=YAML)
            assert applied.status_code == 200
            body = applied.json()
            assert (body["version"], body["previous_version"], body["applied"]) == (18, 17, True)
            assert body["live_version"] == 18
    finally:
        await live.stop()
