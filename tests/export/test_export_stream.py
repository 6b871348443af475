"""The export as a stream: a client that leaves stops the reading, a client that stops
reading is cut off, and the number of exports at once is bounded. Driven through the ASGI
interface directly, as a server drives it, to control when the client leaves."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message

from sluicegate.export.stream import ExportAborted
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.server.roles import Role
from tests.export.support import ROLE_HEADER, awkward_records, export_app

Sender = Callable[[Message], Awaitable[None]]


def _scope(path: str, query: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(ROLE_HEADER.encode(), Role.ADMIN.value.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("gw", 80),
        "state": {},
    }


async def _serve(app: ASGIApp, send: Sender, gone: asyncio.Event, query: str = "") -> None:
    """One GET to the export, with a client that leaves when `gone` is set."""
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    await app(_scope("/api/export/requests", query), receive, send)


async def _land(engine: AsyncEngine, count: int) -> None:
    await SqlLedgerStore(engine).write_batch(awkward_records(count))


async def test_a_client_that_leaves_stops_the_reading(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await _land(engine, 500)
    gone = asyncio.Event()
    bodies: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            bodies.append(message["body"])
            if len(bodies) == 3:  # the header row, then two pages: the client leaves
                gone.set()
                await asyncio.sleep(0.01)  # the server notices the disconnect

    with caplog.at_level(logging.INFO, logger="sluicegate.export"):
        await _serve(export_app(engine, page_rows=20), send, gone)
    stopped = [r.getMessage() for r in caplog.records if "the client left" in r.getMessage()]
    assert stopped, caplog.text
    sent, planned = map(int, re.search(r"after (\d+) of (\d+) rows", stopped[0]).groups())
    assert planned == 500 and sent <= 3 * 20  # at most the page read when it left
    assert len(bodies) <= 4


async def test_a_client_that_stops_reading_is_cut_off_and_frees_its_slot(
    engine: AsyncEngine,
) -> None:
    await _land(engine, 100)
    app = export_app(engine, page_rows=10, max_concurrent=1, send_timeout_s=0.2)
    stalled = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            stalled.set()
            await asyncio.Event().wait()  # never reads again

    with pytest.raises(ExportAborted, match="read nothing"):
        await _serve(app, send, asyncio.Event())
    assert stalled.is_set()
    statuses: list[int] = []

    async def record(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await _serve(app, record, asyncio.Event())
    assert statuses == [200]  # the one slot was given back


async def test_exports_at_once_are_bounded_with_a_503(engine: AsyncEngine) -> None:
    await _land(engine, 100)
    app = export_app(engine, page_rows=10, max_concurrent=1)
    release, first_started = asyncio.Event(), asyncio.Event()

    async def slow(message: Message) -> None:
        first_started.set()
        await release.wait()

    first = asyncio.create_task(_serve(app, slow, asyncio.Event()))
    await first_started.wait()
    refused: list[Message] = []

    async def record(message: Message) -> None:
        refused.append(message)

    await _serve(app, record, asyncio.Event())
    assert refused[0]["status"] == 503
    assert b'"code":"overloaded"' in refused[1]["body"]
    release.set()
    await first
    later: list[Message] = []

    async def again(message: Message) -> None:
        later.append(message)

    await _serve(app, again, asyncio.Event())
    assert later[0]["status"] == 200
