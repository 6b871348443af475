"""`sluicegate ledger rebuild-rollups`: every rollup table recomputed from the ledger.

    hour pieces   for each hour with ledger rows (and the gaps before it), in one
                  transaction that holds off writers: delete the hour rows of
                  usage, cuboids, users, tool users and metadata there, read the ledger rows
                  in (ts, request_id) pages and add their deltas
    days          once an hour piece passes a day's end: the day rows of the days done,
                  replaced by the sums of their hour rows (a day row is by definition the
                  sum of its hours), and the week rows (cuboids, tool users) of their
                  weeks by the sums of those weeks' day rows, in one such transaction
    sessions      session ids a page at a time: delete those rows, recompute each session
                  from all its ledger rows, in one such transaction
    session groups  rollup_session_groups refilled from every session and its outcomes
                  (analytics/session_groups.py), in one such transaction
    coverage      the analytics metadata keys rebuilt are covered from the start

Safe against a gateway writing at the same time: each piece runs in a transaction no
ledger batch can commit during (db/writer_lock.py), so a batch committed before it is in
the recomputation and one committed after adds its deltas on top. Writers wait for one
piece at most (about one hour of the ledger's rows on PostgreSQL; on SQLite they wait up
to their busy timeout, 5 s, then spool their batch and retry it: nothing is lost).
Metadata keys come from the analytics config in force; if it changes during the rebuild,
the keys that changed are not claimed covered and the report says to run it again.

`--since DAY` rebuilds hour and day rows from that UTC day on, and the sessions with a
request on or after it (each from all its rows).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Double, String, Table, distinct, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.analytics.config import AnalyticsDocument, AnalyticsSettings
from sluicegate.analytics.coverage import record_rebuild
from sluicegate.analytics.ledger_pages import arrived_between, ledger_pages, of_sessions
from sluicegate.analytics.rollup_sql import apply_deltas
from sluicegate.analytics.rollups import (
    DIGEST_CHARS,
    GRAINS,
    RollupDeltas,
    bucket_deltas,
    row_id,
    session_deltas,
)
from sluicegate.analytics.session_groups import refill as refill_session_groups
from sluicegate.analytics.window import WEEK, week_start
from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.parse import documents_from_raw
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.db.errors import StoreRejected, translate_errors
from sluicegate.db.schema import (
    CUBOID_DIMENSIONS,
    METADATA_DIMENSIONS,
    TOOL_USER_DIMENSIONS,
    USAGE_DIMENSIONS,
    USER_DIMENSIONS,
    requests,
    rollup_cuboids,
    rollup_metadata,
    rollup_sessions,
    rollup_tool_users,
    rollup_usage,
    rollup_users,
)
from sluicegate.db.writer_lock import holding_off_writers
from sluicegate.errors import StoreUnavailable

HOUR, DAY = GRAINS["hour"], GRAINS["day"]
PAGE_SIZE = 5_000  # ledger rows read (and converted to records) at a time
SESSIONS_PER_PIECE = 500
LOCK_TIMEOUT_S = 30.0
LOCK_ATTEMPTS = 5  # a piece that cannot get its lock is tried again, then the rebuild stops
COVERED_FROM_START = 0.0  # a full rebuild covers every arrival (unix seconds >= 0)

_R = requests.c
_BUCKETED: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (rollup_usage, USAGE_DIMENSIONS),
    (rollup_cuboids, CUBOID_DIMENSIONS),
    (rollup_users, USER_DIMENSIONS),
    (rollup_tool_users, TOOL_USER_DIMENSIONS),
    (rollup_metadata, METADATA_DIMENSIONS),
)
_WEEKLY = (rollup_cuboids, rollup_tool_users)  # the tables with week rows

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class RebuildReport:
    since: float | None
    rows: int = 0
    sessions: int = 0
    pieces: int = 0
    metadata_keys: tuple[str, ...] = ()
    config_changed: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def day_start(ts: float) -> float:
    return float(int(ts // DAY) * DAY)


async def analytics_in_force(engine: AsyncEngine) -> tuple[int, AnalyticsSettings]:
    """(config version, its analytics settings): what every gateway on this database
    rolls up once it has loaded the latest version."""
    row = await SqlConfigVersionStore(engine).latest()
    if row is None:
        return 0, AnalyticsSettings()
    registry = DocumentRegistry()
    snapshot = ConfigSnapshot.build(
        row.version, documents_from_raw(row.documents, registry), loaded_at=time.time()
    )
    documents = snapshot.models_of("gateway-analytics-config", AnalyticsDocument)
    return row.version, AnalyticsSettings.from_documents(documents)


class RollupRebuild:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        progress: Progress | None = None,
        page_size: int = PAGE_SIZE,
        sessions_per_piece: int = SESSIONS_PER_PIECE,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ):
        self._engine = engine
        self._progress = progress or (lambda phase, done, total: None)
        self._page_size = page_size
        self._sessions_per_piece = sessions_per_piece
        self._lock_timeout_s = lock_timeout_s

    async def run(self, since: float | None = None) -> RebuildReport:
        """Rebuild everything (since None) or from the UTC day of `since` on."""
        started = time.time()
        since = day_start(since) if since is not None else None
        _, analytics = await analytics_in_force(self._engine)
        keys = analytics.rollup_metadata_keys
        report = RebuildReport(since=since, metadata_keys=keys)
        await self._bucketed(since, keys, report)
        await self._sessions(since, report)
        await self._piece("rebuild session groups", _refill_session_groups)
        _, after = await analytics_in_force(self._engine)
        report.config_changed = after.rollup_metadata_keys != keys
        await self._record_coverage(since, keys, started, report)
        report.seconds = time.time() - started
        return report

    # --- hour and day rows ------------------------------------------------------------
    async def _bucketed(
        self, since: float | None, keys: tuple[str, ...], report: RebuildReport
    ) -> None:
        total = await self._scalar(
            select(func.count()).select_from(requests).where(*arrived_between(since, None))
        )
        self._progress("rows", 0, total)
        lower, days_done = since, since
        while True:
            first = await self._scalar(select(func.min(_R.ts)).where(*arrived_between(lower, None)))
            upper = None if first is None else float(int(first // HOUR) * HOUR + HOUR)
            report.rows += await self._piece(
                "rebuild hour rows", lambda conn: self._hours(conn, lower, upper, keys)
            )
            report.pieces += 1
            total = max(total, report.rows)
            self._progress("rows", report.rows, total)
            days_until = None if upper is None else day_start(upper)
            if days_until is None or days_done is None or days_until > days_done:
                await self._piece(
                    "rebuild day rows", lambda conn: _derive_days(conn, days_done, days_until)
                )
                days_done = days_until
            if upper is None:
                return
            lower = upper

    async def _hours(
        self,
        conn: AsyncConnection,
        lower: float | None,
        upper: float | None,
        keys: tuple[str, ...],
    ) -> int:
        """Hour rows of [lower, upper) recomputed; returns the ledger rows read."""
        for table, _ in _BUCKETED:
            await conn.execute(table.delete().where(*_hour_rows(table, lower, upper)))
        count = 0
        async for page in ledger_pages(conn, arrived_between(lower, upper), self._page_size):
            await apply_deltas(conn, bucket_deltas(page, keys, days=False))
            count += len(page)
        return count

    # --- sessions ---------------------------------------------------------------------
    async def _sessions(self, since: float | None, report: RebuildReport) -> None:
        active = [_R.session_id.is_not(None), *arrived_between(since, None)]
        total = await self._scalar(select(func.count(distinct(_R.session_id))).where(*active))
        self._progress("sessions", 0, total)
        low = ""  # every session id is above it
        while True:
            # The piece's upper id, found outside the lock; its ids are read again under
            # it, so that a session a writer started meanwhile is not left out.
            first = self._first_ids(active, low).subquery()
            high = await self._scalar(select(func.max(first.c.session_id)))
            if high is not None or since is None:
                report.sessions += await self._piece(
                    "rebuild sessions",
                    functools.partial(
                        self._session_piece, active=active, full=since is None, low=low, high=high
                    ),
                )
                report.pieces += 1
            total = max(total, report.sessions)
            self._progress("sessions", report.sessions, total)
            if high is None:
                return
            low = high

    def _first_ids(self, active: list[Any], low: str) -> Any:
        """The next SESSIONS_PER_PIECE session ids above `low` (DISTINCT in index order:
        the session id index is read from `low` on, not the whole table)."""
        return (
            select(_R.session_id)
            .where(*active, _R.session_id > low)
            .distinct()
            .order_by(_R.session_id)
            .limit(self._sessions_per_piece)
        )

    async def _session_piece(
        self,
        conn: AsyncConnection,
        active: list[Any],
        full: bool,
        low: str,
        high: str | None,
    ) -> int:
        """Sessions with ids in (low, high] recomputed (high None: unbounded). A full
        rebuild deletes the whole id range, dropping sessions the ledger no longer has."""
        in_range = [_R.session_id > low] + ([_R.session_id <= high] if high is not None else [])
        ids = list(
            (
                await conn.execute(select(_R.session_id).where(*active, *in_range).distinct())
            ).scalars()
        )
        if full:
            await conn.execute(rollup_sessions.delete().where(*_id_range(low, high)))
        elif ids:
            await conn.execute(
                rollup_sessions.delete().where(rollup_sessions.c.session_id.in_(ids))
            )
        for start in range(0, len(ids), self._sessions_per_piece):
            await self._recompute_sessions(conn, ids[start : start + self._sessions_per_piece])
        return len(ids)

    async def _recompute_sessions(self, conn: AsyncConnection, ids: list[str]) -> None:
        async for page in ledger_pages(conn, of_sessions(ids), self._page_size):
            # pages in ledger order: a session's identity stays its first non-empty values
            await apply_deltas(conn, RollupDeltas(sessions=session_deltas(page)))

    # --- coverage -----------------------------------------------------------------------
    async def _record_coverage(
        self, since: float | None, keys: tuple[str, ...], started: float, report: RebuildReport
    ) -> None:
        covered = COVERED_FROM_START if since is None else since
        async with translate_errors("rebuild coverage"), self._engine.begin() as conn:
            if report.config_changed:
                # The keys in force moved under the rebuild: claim nothing new for them.
                await record_rebuild(conn, keys, covered, started, widen=False)
                report.notes.append(
                    "the analytics config changed during the rebuild: metadata keys are "
                    "not marked covered; run rebuild-rollups again"
                )
            else:
                await record_rebuild(conn, keys, covered, started)

    # --- helpers ------------------------------------------------------------------------
    async def _piece(self, operation: str, work: Callable[[AsyncConnection], Any]) -> int:
        """`work` in a transaction that holds off writers, tried again when the lock
        cannot be had in time (writers busy), up to LOCK_ATTEMPTS times."""
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                async with holding_off_writers(
                    self._engine, operation, lock_timeout_s=self._lock_timeout_s
                ) as conn:
                    return int(await work(conn) or 0)
            except StoreRejected:
                raise
            except StoreUnavailable:  # the lock was not had in time, or the server hiccuped
                if attempt == LOCK_ATTEMPTS:
                    raise
                await asyncio.sleep(min(2.0**attempt, 10.0))
        raise AssertionError("unreachable")

    async def _scalar(self, statement: Any) -> Any:
        async with translate_errors("rebuild"), self._engine.connect() as conn:
            return (await conn.execute(statement)).scalar()


def _hour_rows(table: Table, lower: float | None, upper: float | None) -> list[Any]:
    conditions = [table.c.grain == "hour"]
    if lower is not None:
        conditions.append(table.c.bucket >= lower)
    if upper is not None:
        conditions.append(table.c.bucket < upper)
    return conditions


def _id_range(low: str, high: str | None) -> list[Any]:
    """Session ids in (low, high]; (low, infinity) when high is None."""
    conditions = [rollup_sessions.c.session_id > low]
    if high is not None:
        conditions.append(rollup_sessions.c.session_id <= high)
    return conditions


async def _derive_days(conn: AsyncConnection, lower: float | None, upper: float | None) -> int:
    """Day rows of the days in [lower, upper) (None: unbounded) replaced by the sums of
    their hour rows, and the week rows (cuboids, tool users) of their weeks by the sums of
    their day rows."""
    for table, dimensions in _BUCKETED:
        day_conditions = [table.c.grain == "day"]
        if lower is not None:
            day_conditions.append(table.c.bucket >= lower)
        if upper is not None:
            day_conditions.append(table.c.bucket < upper)
        await conn.execute(table.delete().where(*day_conditions))
        hour_conditions = _hour_rows(table, lower, upper)
        buckets = (
            await conn.execute(select(table.c.bucket).where(*hour_conditions).distinct())
        ).scalars()
        days = sorted({day_start(b) for b in buckets})
        for day in days:
            await _derive(conn, table, dimensions, "day", day, DAY)
        weekly = any(table is t for t in _WEEKLY)
        weeks = {week_start(day) for day in days} if weekly else set()
        for week in sorted(weeks):
            await conn.execute(
                table.delete().where(
                    table.c.grain == "week", table.c.bucket >= week, table.c.bucket < week + WEEK
                )
            )
            await _derive(conn, table, dimensions, "week", week, WEEK)
    return 0


_FINER = {"day": "hour", "week": "day"}


async def _derive(
    conn: AsyncConnection,
    table: Table,
    dimensions: Sequence[str],
    grain: str,
    start: float,
    width: float,
) -> None:
    """One INSERT ... SELECT: a `grain` row per dimensions, summing the rows of the next
    finer grain inside [start, start + width). Its id is theirs with the grain's prefix:
    ids end with ':' and the 32-character digest of the dimensions (rollups.row_id), the
    same for every grain."""
    finer = _FINER[grain]
    measures = [
        c.name for c in table.columns if c.name not in ("id", "grain", "bucket", *dimensions)
    ]
    digest = func.min(func.substr(table.c.id, func.length(table.c.id) - 32))
    prefix = row_id(grain, start, ())[:-DIGEST_CHARS]
    selected = select(
        (literal(prefix, String()) + digest).label("id"),
        literal(grain, String()).label("grain"),
        literal(start, Double()).label("bucket"),
        *(table.c[d] for d in dimensions),
        *(func.sum(table.c[m]).label(m) for m in measures),
    ).where(table.c.grain == finer, table.c.bucket >= start, table.c.bucket < start + width)
    columns = ["id", "grain", "bucket", *dimensions, *measures]
    await conn.execute(
        table.insert().from_select(columns, selected.group_by(*(table.c[d] for d in dimensions)))
    )


async def _refill_session_groups(conn: AsyncConnection) -> int:
    await refill_session_groups(conn)
    return 0
