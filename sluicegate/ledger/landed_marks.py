"""How far each gateway process's ledger has landed, for budget rebuilds.

A budget rebuild after the counter store lost its data takes each counter's cutoff and
sums the ledger's rows of the requests that arrived before it. A request that finished
before the cutoff was settled into the counter that was lost, so its row must be in
that sum: the rebuild waits (policy/landed_wait.py) until every live process's ledger
writer has landed what it was handed before the cutoff (`LedgerWriter.landed_through`).

    LocalLanded(writer)       one process (the embedded default): asks its writer
    SqlLandedMarks(engine)    replicas sharing a database: one `ledger_landed` row per
                              process, kept by a `LandedPublisher` (after each batch, and
                              every `interval_s` when idle; deleted at a clean stop). A
                              process not heard from for `silent_after_s` is taken as gone
                              (crashed: what it had not landed waits in its spool for its
                              next start), and logged.

Marks are times on each process's own clock, compared with cutoffs taken on the
rebuilding process's clock: the assumption (clocks kept in step by NTP) that already
splits spend by arrival time at a cutoff (policy/counters/base.py). The database holds
them, not Redis: it outlives a Redis that lost its data, and it knows the replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import suppress

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import ledger_landed
from sluicegate.db.upsert import dialect_insert
from sluicegate.errors import StoreUnavailable
from sluicegate.ledger.writer import LedgerWriter

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.25  # an idle writer's mark moves on this often
PUBLISH_GAP_S = 0.05  # and a busy one's at most this often (a batch may land every ms)
SILENT_AFTER_S = 5.0  # a process whose mark is older is taken as gone
KEEP_S = 86400.0  # rows of processes gone this long are deleted (at a process's start)
_C = ledger_landed.c


class LocalLanded:
    """One process: its own writer is the only one."""

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer

    async def lagging(self, t: float) -> list[str]:
        behind = t - self._writer.landed_through()
        return [f"this process's ledger writer ({behind:.2f}s behind)"] if behind > 0 else []


class SqlLandedMarks:
    """Every process's mark in the `ledger_landed` table; this process's is `writer_id`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        writer_id: str | None = None,
        clock: Callable[[], float] = time.time,
        silent_after_s: float = SILENT_AFTER_S,
    ) -> None:
        self._engine = engine
        self.writer_id = writer_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._silent_after_s = silent_after_s
        self._upsert = dialect_insert(ledger_landed, engine.dialect.name)
        self._silent: set[str] = set()  # logged as gone (bounded by the table's rows)

    async def publish(self, landed_through: float) -> None:
        now = self._clock()
        stmt = self._upsert.values(
            writer_id=self.writer_id, landed_through=landed_through, seen_at=now
        ).on_conflict_do_update(
            index_elements=[_C.writer_id],
            set_={"landed_through": landed_through, "seen_at": now},
        )
        async with translate_errors("ledger landed mark"), self._engine.begin() as conn:
            await conn.execute(stmt)

    async def lagging(self, t: float) -> list[str]:
        """The live processes whose ledger has not landed everything finished before `t`."""
        async with translate_errors("ledger landed marks"), self._engine.connect() as conn:
            rows = (await conn.execute(select(_C.writer_id, _C.landed_through, _C.seen_at))).all()
        now = self._clock()
        silent = {w for w, _, seen in rows if seen < now - self._silent_after_s}
        for writer_id in sorted(silent - self._silent):
            log.warning(
                "ledger: process %s has not said how far its ledger landed for over %gs: "
                "taken as gone (budget rebuilds do not wait for it)",
                writer_id,
                self._silent_after_s,
            )
        self._silent = silent
        return [
            f"{w} ({t - landed:.2f}s behind)"
            for w, landed, _ in rows
            if w not in silent and landed < t
        ]

    async def withdraw(self) -> None:
        """This process stops: nothing of it is left to wait for."""
        async with translate_errors("ledger landed mark"), self._engine.begin() as conn:
            await conn.execute(delete(ledger_landed).where(_C.writer_id == self.writer_id))

    async def prune(self, keep_s: float = KEEP_S) -> None:
        """Delete the rows of processes gone for `keep_s` (the table stays small)."""
        before = self._clock() - keep_s
        async with translate_errors("ledger landed marks"), self._engine.begin() as conn:
            await conn.execute(delete(ledger_landed).where(_C.seen_at < before))


class LandedPublisher:
    """Keeps this process's row in `ledger_landed` up to date while it runs."""

    def __init__(
        self,
        writer: LedgerWriter,
        marks: SqlLandedMarks,
        interval_s: float = PUBLISH_INTERVAL_S,
    ) -> None:
        self._writer = writer
        self._marks = marks
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Prune, publish once (before traffic), then keep publishing in the background."""
        try:
            await self._marks.prune()
        except StoreUnavailable as exc:
            log.warning("ledger: old landed marks not pruned: %s", exc)
        await self._publish()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="ledger-landed-marks"
            )

    async def stop(self) -> None:
        """After the writer closed: stop publishing and withdraw this process's row."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._marks.withdraw()
        except StoreUnavailable as exc:  # the row ages out: taken as gone after a while
            log.warning("ledger: landed mark not withdrawn: %s", exc)

    async def _run(self) -> None:
        while True:
            await self._writer.landed_moved(self._interval_s)
            await self._publish()
            await asyncio.sleep(PUBLISH_GAP_S)

    async def _publish(self) -> None:
        try:
            await self._marks.publish(self._writer.landed_through())
        except StoreUnavailable as exc:
            if not self._failing:
                log.warning(
                    "ledger: landed mark not published (budget rebuilds wait for it): %s", exc
                )
            self._failing = True
            return
        if self._failing:
            log.info("ledger: landed mark published again")
        self._failing = False
