"""Gateways and databases for the outcome tests: the real app in process, on SQLite and
PostgreSQL, with both webhooks configured and principals of any role (`as_role`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from starlette.types import Scope

from sluicegate.server.admin_auth import AdminAuthenticator
from sluicegate.server.app import Gateway
from sluicegate.server.roles import AdminPrincipal, Role
from tests.db.databases import databases, engine  # noqa: F401  (fixtures)
from tests.outcomes.payloads import GITHUB_SECRET, HELPDESK_SECRET
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import fresh_postgres_database

SESSION_FIELD = "360001234"  # the helpdesk custom field holding the session id


class RolesForTests:
    """The gateway's own authenticator, wrapped: a request carrying `x-test-role` (and
    `x-test-teams`, comma-separated) is a principal of that role; any other request is
    resolved by the gateway's authenticator as usual. Stands in for role tokens."""

    def __init__(self, inner: AdminAuthenticator) -> None:
        self._inner = inner

    def resolve(self, scope: Scope) -> AdminPrincipal:
        headers = dict(scope["headers"])
        role = headers.get(b"x-test-role")
        if role is None:
            return self._inner.resolve(scope)
        teams = headers.get(b"x-test-teams", b"").decode()
        return AdminPrincipal(
            f"test-{role.decode()}",
            Role(role.decode()),
            teams=tuple(t for t in teams.split(",") if t),
            user_id="u-member" if role == b"member" else None,
        )


def as_role(role: str, *teams: str) -> dict[str, str]:
    headers = {"x-test-role": role}
    if teams:
        headers["x-test-teams"] = ",".join(teams)
    return headers


def outcome_gateway(tmp_path: Path, database_url: str, **overrides: object) -> Gateway:
    settings = settings_for(
        tmp_path,
        database_url=database_url,
        github_webhook_secret=GITHUB_SECRET,
        helpdesk_webhook_secret=HELPDESK_SECRET,
        helpdesk_session_field=SESSION_FIELD,
        **overrides,
    )
    gateway = Gateway(settings, upstream=emulator_upstream())
    gateway.admin_auth = RolesForTests(gateway.admin_auth)
    return gateway


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def gw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A fresh gateway with both webhooks configured, on each database."""
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        async with serving(outcome_gateway(tmp_path, url)) as running:
            yield running


@pytest.fixture
async def gw_sqlite(tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """The same gateway on SQLite only, for what no database changes (parsing, auth)."""
    async with serving(outcome_gateway(tmp_path, f"sqlite:///{tmp_path}/gateway.db")) as running:
        yield running
