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
    rollback = await gw_db.http.post(
        "/api/config/rollback", json={"version": 2**40}, headers=admin
    )
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
