"""Hostile or mistaken admin input, through the gateway's real app: every refusal is a 4xx
in the admin API's JSON error shape, never a 500, a plain-text page, or a 503 that blames
the database for the caller's data. Database-touching cases run on SQLite and PostgreSQL
(PostgreSQL refuses NUL and out-of-range integers itself; SQLite does not)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from sluicegate.server.app import Gateway
from tests.config.documents import billion_laughs
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def gw_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A fresh gateway on each database."""
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        gateway = Gateway(settings_for(tmp_path, database_url=url), upstream=emulator_upstream())
        async with serving(gateway) as running:
            yield running


def admin_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return dict(error)


async def test_a_yaml_alias_bomb_is_refused_fast_and_small(gw: InProcessGateway) -> None:
    bomb = billion_laughs("gateway-budget-config")
    assert len(bomb) < 500
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = await gw.http.post(
            "/api/config", content=bomb, headers={**gw.admin, "content-type": "application/yaml"}
        )
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = admin_error(response, 400)
    assert error["type"] == "invalid_config"
    assert "more than 100000 YAML nodes (counting each alias expanded)" in str(error["message"])
    assert elapsed < 1.0, elapsed
    assert peak < 20 * 1024 * 1024, peak  # the expanded bomb is ~1 GB
    assert (await gw.http.get("/api/config", headers=gw.admin)).json()["version"] == 0


async def test_bad_admin_parameters_are_400_not_a_database_outage(
    gw_db: InProcessGateway,
) -> None:
    admin = gw_db.admin
    for path in ("/api/config/versions/99999999999999999999", "/api/config/versions/3000000000"):
        error = admin_error(await gw_db.http.get(path, headers=admin), 400)
        assert (error["param"], error["type"]) == ("version", "invalid_request_error")
        assert "between 1 and 2147483647" in str(error["message"])
    rollback = await gw_db.http.post("/api/config/rollback", json={"version": 2**40}, headers=admin)
    assert admin_error(rollback, 400)["param"] == "version"

    for method, path in [
        ("GET", "/api/requests?user_id=%00"),
        ("GET", "/api/requests?session_id=a%00b&limit=5"),
        ("DELETE", "/api/keys/key_%00"),
        ("POST", "/api/keys/key_%00/rotate"),
        ("GET", "/api/budgets?team=%00"),
    ]:
        error = admin_error(await gw_db.http.request(method, path, headers=admin), 400)
        assert "NUL" in str(error["message"]), (path, error)
    assert (await gw_db.http.get("/api/requests?user_id=ana", headers=admin)).status_code == 200


BAD_KEY_BODIES: list[tuple[dict[str, object], str]] = [
    ({"metadata": {"tier": 1}}, "metadata.tier"),
    ({"metadata": {"nested": {"a": "b"}}}, "metadata.nested"),
    ({"metadata": "gold"}, "metadata"),
    ({"metadata": ["a", "b"]}, "metadata"),
    ({"metadata": {str(n): "v" for n in range(65)}}, "metadata"),
    ({"metadata": {"note": "x" * 1025}}, "metadata.note"),
    ({"user_id": "ana\x00"}, "user_id"),  # PostgreSQL text cannot hold it
    ({"team": "t" * 257}, "team"),
    ({"models": ["gpt-4o-mini", 4]}, "models"),
    ({"models": "gpt-4o-mini"}, "models"),
]


async def test_a_key_body_of_the_wrong_shape_is_a_400(gw_db: InProcessGateway) -> None:
    for body, param in BAD_KEY_BODIES:
        response = await gw_db.http.post("/api/keys", json=body, headers=gw_db.admin)
        error = admin_error(response, 400)
        assert (error["type"], error["param"]) == ("invalid_request_error", param), body
    listed = (await gw_db.http.get("/api/keys", headers=gw_db.admin)).json()["data"]
    assert listed == []


async def test_a_key_with_string_metadata_is_kept(gw_db: InProcessGateway) -> None:
    response = await gw_db.http.post(
        "/api/keys",
        json={"user_id": "ana", "metadata": {"tier": "gold", "owner": "ops"}},
        headers=gw_db.admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"tier": "gold", "owner": "ops"}


@pytest.mark.parametrize(
    "expires_at",
    ["nan", "NaN", "inf", "-inf", "Infinity", 1e300, -1, "1e309", "99999999999d", "0001-01-01"],
)
async def test_a_key_cannot_expire_never_or_out_of_range(
    gw: InProcessGateway, expires_at: object
) -> None:
    response = await gw.http.post("/api/keys", json={"expires_at": expires_at}, headers=gw.admin)
    error = admin_error(response, 400)
    assert error["param"] == "expires_at"
    assert (await gw.http.get("/api/keys", headers=gw.admin)).json()["data"] == []


async def test_times_in_range_are_still_accepted(gw: InProcessGateway) -> None:
    later = time.time() + 3600
    for expires_at in (later, str(later), "2099-01-01T00:00:00Z"):
        response = await gw.http.post(
            "/api/keys", json={"expires_at": expires_at}, headers=gw.admin
        )
        assert response.status_code == 201, response.text
    for query in ("since=nan", "until=inf", "since=1e400", "since=9999999999d"):
        error = admin_error(await gw.http.get(f"/api/requests?{query}", headers=gw.admin), 400)
        assert error["param"] == query.split("=")[0]
    ok = await gw.http.get("/api/requests?since=7d&until=2099-01-01", headers=gw.admin)
    assert ok.status_code == 200
    key_id = (await gw.http.get("/api/keys", headers=gw.admin)).json()["data"][0]["id"]
    rotate = await gw.http.post(
        f"/api/keys/{key_id}/rotate", json={"grace_seconds": 1e300}, headers=gw.admin
    )
    assert admin_error(rotate, 400)["param"] == "grace_seconds"
