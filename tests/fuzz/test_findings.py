"""What the fuzzers found, kept as regression tests through the gateway's real app:

- `GET /api/requests?status=²` was a plain-text 500 (`'²'.isdigit()` is true, `int('²')`
  raises); now a 400 in the admin error shape, on SQLite and PostgreSQL;
- any unexpected exception in a routed handler was Starlette's plain-text
  "Internal Server Error"; now a JSON 500 with an `error` object in the API's format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from sluicegate.server.app import Gateway
from tests.server.conftest import settings_for
from tests.server.inprocess import ADMIN_KEY, emulator_upstream, lifespan
from tests.support import fresh_postgres_database

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def app_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A started gateway and a client that gets the app's answer even when the app then
    raises (as a server would send it), instead of the exception."""
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        gateway = Gateway(settings_for(tmp_path, database_url=url), upstream=emulator_upstream())
        app = gateway.asgi()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            lifespan(app),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
        ):
            yield gateway, http


def json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    error = response.json()["error"]
    assert isinstance(error, dict) and error["message"], response.text
    return error


@pytest.mark.parametrize("status", ["²", "¹²³", "٢٠٠x", "2²"])
async def test_a_status_filter_of_unicode_digits_is_a_400(
    app_client: tuple[Gateway, httpx.AsyncClient], status: str
) -> None:
    _, http = app_client
    response = await http.get("/api/requests", params={"status": status}, headers=ADMIN)
    assert json_error(response, 400)["param"] == "status"
    ascii_digits = await http.get("/api/requests", params={"status": "200"}, headers=ADMIN)
    assert ascii_digits.status_code == 200, ascii_digits.text


async def test_a_bug_in_an_admin_handler_is_a_json_500(
    app_client: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, http = app_client

    async def broken(limit: int) -> list[object]:
        raise RuntimeError("a bug")

    gateway.alert_store.list = broken  # type: ignore[method-assign]
    error = json_error(await http.get("/api/alerts", headers=ADMIN), 500)
    assert error["type"] == "api_error"
    assert error["code"] == "internal_error"
    assert "a bug" not in str(error)  # the cause goes to the log, not to the client


async def test_a_bug_outside_the_admin_api_is_a_json_500(
    app_client: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, http = app_client

    async def broken() -> None:
        raise RuntimeError("a bug")

    gateway.policy.check_store = broken  # type: ignore[method-assign]
    assert json_error(await http.get("/readyz"), 500)["code"] == "internal_error"
