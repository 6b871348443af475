"""Admin API tokens in the store and the service, on SQLite and PostgreSQL: what a token
may be, that only its hash is kept, that a revocation stops it at once here and within a
poll on another replica, that each create and revoke leaves exactly one audit row, and
the bounds (live tokens, pages)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.schema import admin_audit, admin_tokens
from sluicegate.errors import (
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
    StoreUnavailable,
)
from sluicegate.identity import admin_tokens as tokens_module
from sluicegate.identity.admin_token_store import SqlAdminTokenStore
from sluicegate.identity.admin_tokens import AdminTokenService, TokenSpec, token_spec
from sluicegate.model.admin import BOOTSTRAP_ADMIN, Role
from tests.db.databases import databases, engine  # noqa: F401  (fixtures)

BAD_SPECS = [
    ({"role": "owner"}, "role"),
    ({"role": "team-lead"}, "teams"),
    ({"role": "team-lead", "teams": []}, "teams"),
    ({"role": "member"}, "user_id"),
    ({"role": "finance", "teams": ["search"]}, "teams"),
    ({"role": "admin", "user_id": "ana"}, "user_id"),
    ({"role": "team-lead", "teams": ["search"], "user_id": "ana"}, "user_id"),
    ({"role": "member", "user_id": "ana", "teams": ["search"]}, "teams"),
    ({"role": "member", "user_id": ""}, "user_id"),
    ({"role": "team-lead", "teams": ["a\x00b"]}, "teams"),
    ({"role": "team-lead", "teams": [f"t{i}" for i in range(101)]}, "teams"),
    ({"role": "finance", "name": ""}, "name"),
    ({"role": "finance", "name": "x" * 257}, "name"),
]


@pytest.mark.parametrize("fields,param", BAD_SPECS)
def test_a_token_spec_that_breaks_a_rule_names_its_field(fields: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        token_spec(**{"name": "t", **fields})
    assert refused.value.param == param


def test_each_role_takes_its_own_scope_and_no_other() -> None:
    assert token_spec(name="f", role="finance") == TokenSpec("f", Role.FINANCE)
    lead = token_spec(name="l", role="team-lead", teams=["search", "ads", "search"])
    assert lead.teams == ("search", "ads")  # duplicates dropped, order kept
    assert token_spec(name="m", role="member", user_id="ana").user_id == "ana"


async def count(engine: AsyncEngine, table: object, *where: object) -> int:  # noqa: F811
    async with engine.connect() as conn:
        statement = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int((await conn.execute(statement)).scalar_one())


async def test_a_token_is_stored_hashed_and_authenticates_with_its_role(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    service = AdminTokenService(SqlAdminTokenStore(engine))
    await service.load()
    spec = token_spec(name="lead-search", role="team-lead", teams=["search", "ads"])
    row, raw = await service.create(spec, BOOTSTRAP_ADMIN, "/api/tokens")
    assert raw.startswith("sga-") and len(raw) > 40
    assert service.is_token(raw)
    principal = service.authenticate(raw)
    assert (principal.name, principal.role, principal.teams, principal.token_id) == (
        "lead-search",
        Role.TEAM_LEAD,
        ("search", "ads"),
        row.id,
    )
    async with engine.connect() as conn:
        stored = (await conn.execute(select(admin_tokens))).mappings().one()
    assert raw not in {str(value) for value in stored.values()}  # only the hash is kept
    assert stored["token_prefix"] == raw[:10] and stored["created_by"] == "admin"
    # a fresh replica loads it from the database
    other = AdminTokenService(SqlAdminTokenStore(engine))
    await other.load()
    assert other.authenticate(raw).role is Role.TEAM_LEAD
    with pytest.raises(AuthenticationError):
        other.authenticate(raw + "x")


async def test_create_and_revoke_each_write_one_audit_row_and_revoke_is_idempotent(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    service = AdminTokenService(SqlAdminTokenStore(engine))
    await service.load()
    row, raw = await service.create(token_spec(name="fin", role="finance"), BOOTSTRAP_ADMIN, "/p")
    revoked = await service.revoke(row.id, BOOTSTRAP_ADMIN, f"/api/tokens/{row.id}")
    assert revoked.revoked_at is not None
    again = await service.revoke(row.id, BOOTSTRAP_ADMIN, f"/api/tokens/{row.id}")
    assert again.revoked_at == revoked.revoked_at
    async with engine.connect() as conn:
        rows = (await conn.execute(select(admin_audit).order_by(admin_audit.c.id))).mappings()
        trail = [(r["action"], r["target"], r["principal"], r["path"]) for r in rows]
    assert trail == [
        ("token.create", row.id, "admin", "/p"),
        ("token.revoke", row.id, "admin", f"/api/tokens/{row.id}"),
    ]
    with pytest.raises(NotFound):
        await service.revoke("tok_missing", BOOTSTRAP_ADMIN, "/x")
    assert await count(engine, admin_audit) == 2  # nothing recorded for what did not happen


async def test_a_revocation_is_immediate_here_and_within_a_poll_on_another_replica(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    here = AdminTokenService(SqlAdminTokenStore(engine))
    there = AdminTokenService(SqlAdminTokenStore(engine))
    await here.start(poll_interval=0.05)
    await there.start(poll_interval=0.05)
    try:
        row, raw = await here.create(token_spec(name="p", role="platform"), BOOTSTRAP_ADMIN, "/")
        deadline = time.monotonic() + 5
        while True:  # the other replica picks the new token up at its next poll
            try:
                there.authenticate(raw)
                break
            except AuthenticationError:
                assert time.monotonic() < deadline, "never loaded on the other replica"
                await asyncio.sleep(0.02)
        await here.revoke(row.id, BOOTSTRAP_ADMIN, "/")
        with pytest.raises(AuthenticationError) as refused:
            here.authenticate(raw)
        assert refused.value.status == 401
        started = time.monotonic()
        while True:
            try:
                there.authenticate(raw)
            except AuthenticationError:
                break
            assert time.monotonic() - started < 2.0, "still accepted on the other replica"
            await asyncio.sleep(0.01)
    finally:
        await here.stop()
        await there.stop()


async def test_live_tokens_are_bounded_and_a_refused_create_writes_nothing(
    engine: AsyncEngine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens_module, "MAX_LIVE_TOKENS", 2)
    service = AdminTokenService(SqlAdminTokenStore(engine))
    await service.load()
    first, _ = await service.create(token_spec(name="a", role="security"), BOOTSTRAP_ADMIN, "/")
    await service.create(token_spec(name="b", role="security"), BOOTSTRAP_ADMIN, "/")
    with pytest.raises(Conflict) as refused:
        await service.create(token_spec(name="c", role="security"), BOOTSTRAP_ADMIN, "/")
    assert refused.value.code == "too_many_tokens"
    assert await count(engine, admin_tokens) == 2
    assert await count(engine, admin_audit) == 2
    await service.revoke(first.id, BOOTSTRAP_ADMIN, "/")  # a revoked token frees its place
    await service.create(token_spec(name="c", role="security"), BOOTSTRAP_ADMIN, "/")
    assert await count(engine, admin_tokens, admin_tokens.c.revoked_at.is_(None)) == 2


async def test_listing_pages_oldest_first_by_state_and_shows_the_last_use(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    clock = iter(float(t) for t in range(1000, 2000))
    service = AdminTokenService(SqlAdminTokenStore(engine), clock=lambda: next(clock))
    await service.load()
    made = [
        await service.create(token_spec(name=f"t{i}", role="finance"), BOOTSTRAP_ADMIN, "/")
        for i in range(5)
    ]
    await service.revoke(made[1][0].id, BOOTSTRAP_ADMIN, "/")
    service.authenticate(made[3][1])  # a use, written when the listing is read

    names, cursor = [], None
    while True:
        page = await service.list(2, cursor, state=None)
        names += [row.name for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert names == ["t0", "t1", "t2", "t3", "t4"]
    live = await service.list(100, None, state="active")
    assert [row.name for row in live.rows] == ["t0", "t2", "t3", "t4"]
    assert [row.name for row in (await service.list(100, None, state="revoked")).rows] == ["t1"]
    used = {row.name: row.last_used_at for row in live.rows}
    assert used["t3"] is not None and used["t0"] is None
    with pytest.raises(InvalidRequest):
        await service.list(2, "not-a-cursor", state=None)


async def test_a_last_use_is_never_moved_back(engine: AsyncEngine) -> None:  # noqa: F811
    store = SqlAdminTokenStore(engine)
    service = AdminTokenService(store)
    await service.load()
    row, _ = await service.create(token_spec(name="t", role="finance"), BOOTSTRAP_ADMIN, "/")
    await store.touch({row.id: 200.0})
    await store.touch({row.id: 100.0})  # an older use seen later by another replica
    assert (await store.get(row.id)).last_used_at == 200.0  # type: ignore[union-attr]


async def test_uses_are_kept_for_the_next_write_while_the_store_is_away(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    store = SqlAdminTokenStore(engine)
    service = AdminTokenService(store)
    await service.load()
    row, raw = await service.create(token_spec(name="t", role="finance"), BOOTSTRAP_ADMIN, "/")
    service.authenticate(raw)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE admin_tokens RENAME TO admin_tokens_away"))
    try:
        with pytest.raises(StoreUnavailable):
            await service.write_uses()
        assert service.authenticate(raw).token_id == row.id  # the index serves on
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE admin_tokens_away RENAME TO admin_tokens"))
    await service.write_uses()
    assert (await store.get(row.id)).last_used_at is not None  # type: ignore[union-attr]


async def test_an_audit_row_is_written_in_the_token_s_transaction(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    """An audit row that cannot be written takes its token with it."""
    store = SqlAdminTokenStore(engine)
    service = AdminTokenService(store)
    await service.load()
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE admin_audit RENAME TO admin_audit_away"))
    try:
        with pytest.raises(StoreUnavailable):
            await service.create(token_spec(name="t", role="finance"), BOOTSTRAP_ADMIN, "/")
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE admin_audit_away RENAME TO admin_audit"))
    assert await count(engine, admin_tokens) == 0


async def test_an_expiring_token_stops_at_its_time_here_and_on_a_fresh_replica(
    engine: AsyncEngine,  # noqa: F811
) -> None:
    now = [1000.0]
    service = AdminTokenService(SqlAdminTokenStore(engine), clock=lambda: now[0])
    await service.load()
    with pytest.raises(InvalidRequest) as past:
        token_spec(name="old", role="finance", expires_at=999.0, now=now[0])
    assert past.value.param == "expires_at"
    spec = token_spec(name="week", role="finance", expires_at=1060.0, now=now[0])
    row, raw = await service.create(spec, BOOTSTRAP_ADMIN, "/api/tokens")
    forever, _ = await service.create(token_spec(name="f", role="finance"), BOOTSTRAP_ADMIN, "/")
    assert service.authenticate(raw).token_id == row.id

    now[0] = 1060.0  # its expiry: refused from this instant on, without a reload
    with pytest.raises(AuthenticationError) as expired:
        service.authenticate(raw)
    assert expired.value.code == "admin_token_expired"
    other = AdminTokenService(SqlAdminTokenStore(engine), clock=lambda: now[0])
    await other.load()  # a replica starting now does not even load it
    with pytest.raises(AuthenticationError) as unknown:
        other.authenticate(raw)
    assert unknown.value.code == "invalid_admin_token"

    states = {r.name: r.state(now[0]) for r in (await service.list(10, None, state=None)).rows}
    assert states == {"week": "expired", "f": "active"}
    assert [r.id for r in (await service.list(10, None, state="expired")).rows] == [row.id]
    assert [r.id for r in (await service.list(10, None, state="active")).rows] == [forever.id]
