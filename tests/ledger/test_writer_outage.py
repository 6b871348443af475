"""The writer against a real PostgreSQL that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from sluicegate.db.schema import requests
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.writer import LedgerWriter
from tests.db.databases import Databases
from tests.ledger.records import record
from tests.ledger.test_writer import eventually
from tests.support import free_port

pytestmark = pytest.mark.postgres


class TcpProxy:
    """Forwards a local port to PostgreSQL; `cut` refuses and drops every connection,
    like a database host that went down, `restore` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {client_w, upstream_w}
        await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def _stored(url: str) -> tuple[int, int]:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            statement = select(func.count(), func.count(requests.c.request_id.distinct()))
            total, distinct = (await conn.execute(statement)).one()
    finally:
        await engine.dispose()
    return total, distinct


async def test_postgres_goes_down_and_comes_back(databases: Databases, tmp_path: Path) -> None:
    url = databases.url("postgres")
    await upgrade(url)
    proxy = TcpProxy(5432)
    await proxy.restore()
    engine = create_engine_for(url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
    writer = LedgerWriter(
        SqlLedgerStore(engine),
        batch_size=100,
        flush_interval=0.02,
        spool_path=str(tmp_path / "ledger.spool"),
        retry_interval=0.1,
    )
    await writer.start()
    try:
        for n in range(300):
            writer.record(record(n))
        await writer.flush()
        assert writer.pending == 0

        await proxy.cut()
        for n in range(300, 800):
            writer.record(record(n))
        await writer.flush()
        status = writer.status()
        assert (status.spooled, status.store_available) == (500, False)

        await proxy.restore()
        await eventually(lambda: writer.pending == 0, timeout=10.0)
        assert await _stored(url) == (800, 800)
    finally:
        await writer.close()
        await engine.dispose()
        with contextlib.suppress(AssertionError):
            await proxy.cut()


async def test_records_spooled_while_unreachable_are_replayed_after_a_restart(
    databases: Databases, tmp_path: Path
) -> None:
    spool = str(tmp_path / "ledger.spool")
    nowhere = create_engine_for(f"postgresql://postgres@127.0.0.1:{free_port()}/sluice")
    writer = LedgerWriter(SqlLedgerStore(nowhere), spool_path=spool)
    await writer.start()
    for n in range(1200):
        writer.record(record(n))
    await writer.close()  # the final replay attempt fails too: the spool keeps them
    await nowhere.dispose()
    assert writer.status().spooled == 1200 and writer.status().written == 0

    url = databases.url("postgres")
    await upgrade(url)
    engine = create_engine_for(url)
    restarted = LedgerWriter(SqlLedgerStore(engine), spool_path=spool)
    assert restarted.pending == 1200
    await restarted.start()
    await restarted.flush()
    await restarted.close()
    await engine.dispose()
    assert await _stored(url) == (1200, 1200)
    assert not list(tmp_path.glob("ledger.spool*"))
