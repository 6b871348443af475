"""Who may export what (principle 1): rows that name people (ledger rows hold user ids; the
users and sessions rollups are per user) are for admins, and each such export is
audited; the usage and metadata rollups are also for finance, platform and team leads
(confined to their teams' rows: test_export_rollups.py). Every other role gets a 403 in
the admin error shape, whatever it asks for."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.schema import admin_audit
from sluicegate.server.roles import Role
from tests.export.support import export_client

PATHS = {
    "requests": "/api/export/requests",
    **{t: f"/api/export/rollups/{t}" for t in ("usage", "users", "metadata", "sessions")},
}
ALLOWED = {
    "requests": {Role.ADMIN},
    "users": {Role.ADMIN},
    "sessions": {Role.ADMIN},
    "usage": {Role.ADMIN, Role.FINANCE, Role.PLATFORM, Role.TEAM_LEAD},
    "metadata": {Role.ADMIN, Role.FINANCE, Role.PLATFORM, Role.TEAM_LEAD},
}


@pytest.mark.parametrize("what", list(PATHS))
async def test_each_role_may_export_only_what_it_may_see(engine: AsyncEngine, what: str) -> None:
    for role in Role:
        async with engine.begin() as conn:
            await conn.execute(admin_audit.delete())
        async with export_client(engine, role) as client:
            # a bad parameter too: the role is refused before the query is read
            response = await client.get(PATHS[what], params={"format": "parquet"})
            refused_first = await client.get(PATHS[what], params={"limit": "0"})
        async with engine.connect() as conn:
            audited = (await conn.execute(select(admin_audit))).mappings().all()
        if role in ALLOWED[what]:
            assert response.status_code == 200, (what, role, response.text)
            assert refused_first.status_code == 400
            people = what in ("requests", "users", "sessions")
            assert len(audited) == (1 if people else 0), (what, role)  # not the 400
            if people:
                assert audited[0]["path"].startswith(PATHS[what])
                assert audited[0]["action"] == "people.view"
        else:
            for answer in (response, refused_first):
                assert answer.status_code == 403, (what, role, answer.text)
                error = answer.json()["error"]
                assert error["type"] == "permission_error" and error["code"] == "role_forbidden"
                assert str(role) in error["message"]
            assert audited == []
