"""The audit trail's store on SQLite and PostgreSQL: rows come back newest first, filtered,
page by page with the cursor it gives; a cursor it did not give is a
400, and a very long path is kept cut rather than refused."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.audit.store import (
    MAX_PATH_CHARS,
    AuditAction,
    AuditEntry,
    AuditFilters,
    SqlAuditStore,
)
from sluicegate.errors import InvalidRequest
from tests.db.databases import databases, engine  # noqa: F401  (fixtures)


def entry(ts: float, action: AuditAction, principal: str = "admin", **more: object) -> AuditEntry:
    fields: dict[str, object] = {"role": "admin", "token_id": None, "path": f"/at/{ts}"}
    fields.update(more)
    return AuditEntry(ts=ts, principal=principal, action=action, **fields)  # type: ignore[arg-type]


async def test_pages_newest_first_with_filters_and_a_cursor(engine: AsyncEngine) -> None:  # noqa: F811
    store = SqlAuditStore(engine)
    for ts in range(1, 8):
        action = AuditAction.PEOPLE_VIEW if ts % 2 else AuditAction.TOKEN_CREATE
        who = "sec" if ts == 5 else "admin"
        await store.record(
            entry(float(ts), action, who, token_id="tok_1" if who == "sec" else None)
        )

    seen, cursor = [], None
    while True:
        page = await store.page(AuditFilters(), 3, cursor)
        assert len(page.data) <= 3
        seen += [row["ts_unix"] for row in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]

    views = await store.page(AuditFilters(action=AuditAction.PEOPLE_VIEW), 100, None)
    assert [row["ts_unix"] for row in views.data] == [7.0, 5.0, 3.0, 1.0]
    assert views.next_cursor is None
    window = await store.page(AuditFilters(since=2.0, until=5.0), 100, None)
    assert [row["ts_unix"] for row in window.data] == [4.0, 3.0, 2.0]  # until is exclusive
    (by_token,) = (await store.page(AuditFilters(token_id="tok_1"), 100, None)).data
    assert (by_token["principal"], by_token["path"], by_token["ts"]) == (
        "sec",
        "/at/5.0",
        "1970-01-01T00:00:05.000Z",
    )
    assert (await store.page(AuditFilters(principal="sec"), 100, None)).data == [by_token]


@pytest.mark.parametrize("cursor", ["abc", "-1", "0", "1.5", str(2**31), "²"])
async def test_a_cursor_it_did_not_give_is_refused(
    engine: AsyncEngine,  # noqa: F811
    cursor: str,
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await SqlAuditStore(engine).page(AuditFilters(), 10, cursor)
    assert refused.value.param == "cursor"


async def test_a_long_path_is_kept_cut(engine: AsyncEngine) -> None:  # noqa: F811
    store = SqlAuditStore(engine)
    await store.record(entry(1.0, AuditAction.PEOPLE_VIEW, path="/api/requests?x=" + "y" * 9000))
    (row,) = (await store.page(AuditFilters(), 10, None)).data
    assert len(row["path"]) == MAX_PATH_CHARS and row["path"].endswith("…")
