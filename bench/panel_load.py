"""Loading the panel bench's ledger into SQLite and PostgreSQL fast (bench/panels.py).

    workers (processes)  draw a day (panel_ledger.LedgerGenerator.day); write its requests
                         and outcomes to every database in bulk, one transaction each
                         (PostgreSQL COPY, SQLite executemany); return the day's rollup
                         deltas (the gateway's analytics/rollups.py)
    main process         merges the deltas in day order (analytics/rollup_merge.py) and
                         writes them with the gateway's upserts (rollup_sql.py,
                         rollup_sqlite.py), once per table, or sooner when FLUSH_ROWS rows
                         are held (upserts add, so a flush early is still exact)
    after the rows       rollup_session_groups filled from every session and its outcomes
                         (the workers' outcomes land apart from the sessions' rollups)
    after the load       the `requests` indexes dropped for it are created again, the
                         metadata keys' coverage recorded, statistics taken

Rows are what the ledger store writes (`ledger.rows.RequestRows`, its own row builder),
and the rollups what its `write_batch` would have kept: tests/bench/test_panel_load.py
loads a ledger both ways and compares every row. The SQLite load runs with
`synchronous=OFF` (a crash mid-load leaves no marker, so the bench starts again).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.panel_ledger import LedgerGenerator, outcome_rows
from sluicegate.analytics.coverage import record_rebuild
from sluicegate.analytics.rollup_merge import merge_deltas
from sluicegate.analytics.rollup_sql import upsert_for
from sluicegate.analytics.rollup_sqlite import SqliteRollupWriter
from sluicegate.analytics.rollups import RollupDeltas, rollup_deltas
from sluicegate.analytics.session_groups import refill
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from sluicegate.db.schema import outcomes, requests
from sluicegate.ledger.rows import REQUEST_COLUMNS, SQLITE_INSERT, RequestRows

FLUSH_ROWS = 1_000_000  # merged rollup rows held in memory before they are written
PG_SLICE = 20_000  # rollup rows per PostgreSQL upsert (one JSONB parameter each)
LOCK_WAIT_S = 600.0  # a SQLite writer waits this long for the others' transactions
OUTCOME_COLUMNS = tuple(c.name for c in outcomes.columns)


@dataclass
class LoadPlan:
    """What to load: `rows` records over `days` days ending at `end`, from `seed`."""

    rows: int
    days: int
    end: float
    seed: int
    metadata_keys: tuple[str, ...]
    workers: int = 2
    flush_rows: int = FLUSH_ROWS
    defer_indexes: bool = True  # drop `requests`' secondary indexes for the load
    progress: bool = True


@dataclass
class DayLoaded:
    """What a worker hands back once it wrote a day's raw rows."""

    rows: int
    deltas: RollupDeltas
    seconds: dict[str, float] = field(default_factory=dict)


# -- in the worker processes ----------------------------------------------------------------


@dataclass
class _Worker:
    generator: LedgerGenerator
    targets: dict[str, str]
    metadata_keys: tuple[str, ...]
    request_rows: RequestRows


_worker: _Worker | None = None  # one per worker process


def _start_worker(plan: LoadPlan, targets: dict[str, str]) -> None:
    global _worker
    generator = LedgerGenerator(plan.rows, plan.days, plan.end, plan.seed)
    _worker = _Worker(generator, targets, plan.metadata_keys, RequestRows())


def _load_day(day: int) -> DayLoaded:
    assert _worker is not None
    started = time.monotonic()
    records, produced = _worker.generator.day(day)
    rows = _worker.request_rows(records)
    outcome_values = _table_rows(outcomes, outcome_rows(produced, _worker.generator.end))
    seconds = {"draw": time.monotonic() - started}
    for kind, url in _worker.targets.items():
        started = time.monotonic()
        if kind == "postgresql":
            asyncio.run(_copy_day(url, rows, outcome_values))
        else:
            _insert_day(url, rows, outcome_values)
        seconds[kind] = time.monotonic() - started
    started = time.monotonic()
    deltas = rollup_deltas(records, _worker.metadata_keys)
    seconds["deltas"] = time.monotonic() - started
    return DayLoaded(len(rows), deltas, seconds)


def _table_rows(table: Table, dicts: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows of `table` in column order from dicts, JSON columns as text."""
    json_columns = {c.name for c in table.columns if type(c.type).__name__ in ("JSON", "JSONB")}
    encode = msgspec.json.encode
    return [
        [encode(d[c]).decode() if c in json_columns else d[c] for c in (x.name for x in table.c)]
        for d in dicts
    ]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _copy_day(url: str, rows: list[list[Any]], outcome_values: list[list[Any]]) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=60)
    try:
        await connection.execute("SET synchronous_commit = off")
        async with connection.transaction():
            await connection.copy_records_to_table(
                "requests", records=rows, columns=REQUEST_COLUMNS
            )
            if outcome_values:
                await connection.copy_records_to_table(
                    "outcomes", records=outcome_values, columns=OUTCOME_COLUMNS
                )
    finally:
        await connection.close()


def _sqlite_connect(url: str) -> sqlite3.Connection:
    path = make_url(url).database or ""
    connection = sqlite3.connect(path, timeout=LOCK_WAIT_S, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")  # the load only: the gateway uses NORMAL
    return connection


def _insert_day(url: str, rows: list[list[Any]], outcome_values: list[list[Any]]) -> None:
    marks = ", ".join("?" * len(OUTCOME_COLUMNS))
    insert_outcomes = f"INSERT INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) VALUES ({marks})"
    connection = _sqlite_connect(url)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(SQLITE_INSERT, rows)
        connection.executemany(insert_outcomes, outcome_values)
        connection.execute("COMMIT")
    finally:
        connection.close()


# -- in the main process --------------------------------------------------------------------


async def load(targets: dict[str, str], plan: LoadPlan) -> float:
    """Migrates every target (empty databases) and loads the plan's ledger into each;
    returns the seconds it took (each step's are printed with `plan.progress`)."""
    started = time.monotonic()
    wall_started = time.time()  # coverage is in wall-clock (arrival) time
    steps: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        steps[name] = time.monotonic() - since
        return time.monotonic()

    for url in targets.values():
        await upgrade(url)
    engines = {kind: create_engine_for(url) for kind, url in targets.items()}
    try:
        mark = step("migrate", started)
        if plan.defer_indexes:
            await asyncio.gather(*(_drop_indexes(e) for e in engines.values()))
        await _load_days(targets, engines, plan, started)
        mark = step("rows and rollups", mark)
        for engine in engines.values():  # the outcomes are all in: sessions summed once
            async with engine.begin() as conn:
                await refill(conn)
        mark = step("session groups", mark)
        if plan.defer_indexes:
            await asyncio.gather(*(_create_indexes(e) for e in engines.values()))
            mark = step("indexes", mark)
        load_start = plan.end - plan.days * 86400
        for engine in engines.values():
            async with engine.begin() as conn:
                await record_rebuild(
                    conn, plan.metadata_keys, since=load_start, started=wall_started
                )
            await _settle(engine)
        step("statistics", mark)
    finally:
        for engine in engines.values():
            await engine.dispose()
    if plan.progress:
        print(", ".join(f"{name} {s:,.1f} s" for name, s in steps.items()), file=sys.stderr)
    return time.monotonic() - started


async def _load_days(
    targets: dict[str, str], engines: dict[str, AsyncEngine], plan: LoadPlan, started: float
) -> None:
    """Days go to the workers with a bounded look-ahead; their deltas are merged in day
    order and flushed (one flush at a time, beside the next days' loading)."""
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(
        plan.workers,
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded process
        initializer=_start_worker,
        initargs=(plan, targets),
    )
    total = RollupDeltas()
    worker_seconds: dict[str, float] = {}
    flushing: asyncio.Task[None] | None = None
    done = 0
    try:
        pending: deque[asyncio.Future[DayLoaded]] = deque()
        days = iter(range(plan.days))
        for day in itertools.islice(days, plan.workers * 2):
            pending.append(loop.run_in_executor(pool, _load_day, day))
        while pending:
            loaded = await pending.popleft()
            for day in itertools.islice(days, 1):
                pending.append(loop.run_in_executor(pool, _load_day, day))
            for name, seconds in loaded.seconds.items():
                worker_seconds[name] = worker_seconds.get(name, 0.0) + seconds
            merge_deltas(total, loaded.deltas)
            if len(total) >= plan.flush_rows:
                if flushing is not None:
                    await flushing
                flushing = asyncio.create_task(_flush(engines, total))
                total = RollupDeltas()
            done += loaded.rows
            if plan.progress:
                rate = done / (time.monotonic() - started)
                print(f"\r  {done:,}/{plan.rows:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr)
        if flushing is not None:
            await flushing
        await _flush(engines, total)
        if plan.progress:
            spent = ", ".join(f"{name} {s:,.1f} s" for name, s in worker_seconds.items())
            print(f"\n  in the workers: {spent}", file=sys.stderr)
    finally:
        pool.shutdown(cancel_futures=True)


async def _flush(engines: dict[str, AsyncEngine], deltas: RollupDeltas) -> None:
    """Add `deltas` to every database's rollup tables, each in one transaction."""
    writes = []
    for engine in engines.values():
        if engine.dialect.name == "postgresql":
            writes.append(_upsert_postgres(engine, deltas))
        else:
            path = engine.url.database or ""
            writes.append(asyncio.to_thread(_upsert_sqlite, path, deltas))
    await asyncio.gather(*writes)


async def _upsert_postgres(engine: AsyncEngine, deltas: RollupDeltas) -> None:
    async with engine.begin() as conn:
        for table, keyed in deltas.tables():
            rows = [keyed[k] for k in sorted(keyed)]
            statement = upsert_for(table, "postgresql", True)
            for start in range(0, len(rows), PG_SLICE):
                await conn.execute(statement, {"rows": rows[start : start + PG_SLICE]})


def _upsert_sqlite(path: str, deltas: RollupDeltas) -> None:
    connection = _sqlite_connect(f"sqlite:///{path}")
    try:
        connection.execute("BEGIN IMMEDIATE")
        SqliteRollupWriter(session_groups=False).apply(connection, deltas)
        connection.execute("COMMIT")
    finally:
        connection.close()


def secondary_indexes() -> Sequence[Any]:
    """`requests`' indexes but its primary key: what the load drops and creates again."""
    return sorted(requests.indexes, key=lambda index: index.name or "")


async def _drop_indexes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for index in secondary_indexes():
            await conn.execute(text(f"DROP INDEX IF EXISTS {index.name}"))


async def _create_indexes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for index in secondary_indexes():
            await conn.run_sync(index.create)


async def _settle(engine: AsyncEngine) -> None:
    """What a database does after a bulk load: PostgreSQL's statistics (the gateway runs
    no ANALYZE on SQLite), SQLite's WAL folded into the file."""
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))  # what autovacuum would do
        else:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
