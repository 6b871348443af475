"""Since when each analytics metadata key is rolled up, and whether rollups cover a window.

A key named in `gateway-analytics-config` (`rollup_metadata_keys`) gets `rollup_metadata`
rows only for the records written while it is configured, so a key added today has no
rows for last week. `rollup_key_coverage` says, per key, the window of arrival times its
rows are complete for: [covered_since, covered_until), covered_until NULL while every
writer rolls it up.

    writers  each ledger store holds a `RollupKeys`, told the keys in force at start and
             on every config change (`Gateway._on_config`); the changes it queues are
             written by `write_changes` (soon after, and after ledger batches)
    rebuild  `sluicegate ledger rebuild-rollups` records what it recomputed (`record_rebuild`)
    readers  `key_coverage` / `rollups_cover`: may rollups answer for a key over a window?

How the rows move, with several replicas (each applies the same config within a poll
interval of the others, and records arrive before they are written):
- a key added at run time: covered from when the last replica started rolling it up
  (covered_since = max(covered_since, now)); a record that arrived earlier may have been
  written without it, one that arrived later cannot have been;
- a key taken out: covered until the first replica stopped (covered_until = min);
- changes written late (a replica's database briefly unreachable) apply by their time:
  an add older than the key's end does not reopen it;
- a writer starting up with its first config keeps the coverage of the keys it rolls up
  (it wrote nothing before) and closes that of every other key still open (nobody that
  starts now rolls it up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import rollup_key_coverage
from sluicegate.db.upsert import dialect_insert

log = logging.getLogger(__name__)

MAX_PENDING = 32  # queued changes; past it they collapse into one (the DB is unreachable)
_C = rollup_key_coverage.c


@dataclass(frozen=True)
class KeyCoverage:
    meta_key: str
    covered_since: float
    covered_until: float | None  # None: still rolled up

    def covers(self, since: float, until: float) -> bool:
        """Rollups hold every record of this key that arrived in [since, until)."""
        return self.covered_since <= since and (
            self.covered_until is None or until <= self.covered_until
        )


async def key_coverage(
    conn: AsyncConnection, keys: Collection[str] | None = None
) -> dict[str, KeyCoverage]:
    """The coverage of `keys` (every key when None); a key never rolled up is absent."""
    statement = select(_C.meta_key, _C.covered_since, _C.covered_until)
    if keys is not None:
        statement = statement.where(_C.meta_key.in_(list(keys)))
    rows = await conn.execute(statement)
    return {key: KeyCoverage(key, since, until) for key, since, until in rows}


async def rollups_cover(conn: AsyncConnection, key: str, since: float, until: float) -> bool:
    """Whether `rollup_metadata` rows of `key` are complete for arrivals in [since, until):
    the read side answers from them when True, from raw rows (bounded) otherwise."""
    coverage = (await key_coverage(conn, [key])).get(key)
    return coverage is not None and coverage.covers(since, until)


# -- what the writers record ----------------------------------------------------------------


@dataclass(frozen=True)
class CoverageChange:
    """A writer's change of keys at `at`: it rolls `added` up from now on, stops `removed`.
    `keep_since`: an added key already covered keeps its start (the writer's first keys:
    it wrote nothing before them). `exclusive`: every other open key is closed."""

    at: float
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    keep_since: bool = False
    exclusive: bool = False


class RollupKeys:
    """The metadata keys a ledger writer rolls up now, and the coverage changes not yet
    written. `set` is called from config callbacks (synchronous); `write_changes` writes
    the queue in one transaction and keeps it when the database fails."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.keys: tuple[str, ...] = ()
        self._clock = clock
        self._told = False
        self._pending: list[CoverageChange] = []
        self._writing = asyncio.Lock()  # one writer of the queue at a time

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def set(self, keys: Sequence[str]) -> None:
        keys = tuple(dict.fromkeys(keys))
        now = self._clock()
        if not self._told:
            change = CoverageChange(now, keys, keep_since=True, exclusive=True)
        else:
            added = tuple(k for k in keys if k not in self.keys)
            removed = tuple(k for k in self.keys if k not in keys)
            if not added and not removed:
                self.keys = keys
                return
            change = CoverageChange(now, added, removed)
        self.keys, self._told = keys, True
        self._pending.append(change)
        if len(self._pending) > MAX_PENDING:
            # Claim less, never more: every key in force starts over now, others close.
            self._pending = [CoverageChange(now, keys, exclusive=True)]

    async def write_changes(self, engine: AsyncEngine) -> bool:
        """Write the queued changes; False (logged) when the database refused them."""
        async with self._writing:
            batch = list(self._pending)
            if not batch:
                return True
            try:
                async with translate_errors("rollup key coverage"), engine.begin() as conn:
                    for change in batch:
                        await apply_change(conn, change)
            except Exception as exc:  # kept for the next try; the rollups are fine
                log.warning("rollup key coverage not recorded yet: %s", exc)
                return False
            written = set(map(id, batch))  # `set` may have collapsed the queue meanwhile
            self._pending = [c for c in self._pending if id(c) not in written]
            return True


async def apply_change(conn: AsyncConnection, change: CoverageChange) -> None:
    """Apply one writer's change. Changes of several writers may land in any order (one
    whose database was briefly unreachable writes late), so each is applied by time:
    a close keeps the earliest end, an add does not reopen a key closed after it."""
    if change.added:
        rows = [{"meta_key": k, "covered_since": change.at} for k in sorted(change.added)]
        await conn.execute(_activate(conn.dialect.name, keep_since=change.keep_since), rows)
    closing = update(rollup_key_coverage).where(
        or_(_C.covered_until.is_(None), _C.covered_until > change.at)
    )
    if change.removed:
        await conn.execute(
            closing.where(_C.meta_key.in_(change.removed)).values(covered_until=change.at)
        )
    if change.exclusive:
        others = closing.where(_C.meta_key.not_in(change.added)) if change.added else closing
        await conn.execute(others.values(covered_until=change.at))


def _activate(dialect: str, *, keep_since: bool) -> Insert:
    """Insert a key as covered from the change's time, or: reopen it from then if it was
    closed before then (closed after: the add is stale, nothing changes); an open key
    keeps its start (keep_since) or moves it to the change's time if later."""
    insert = dialect_insert(rollup_key_coverage, dialect)
    new = insert.excluded.covered_since
    until = _C.covered_until
    reopened = and_(until.is_not(None), until <= new)
    stale = and_(until.is_not(None), until > new)
    since: list[tuple[ColumnElement[bool], Any]] = [(reopened, new), (stale, _C.covered_since)]
    if not keep_since:
        since.append((new > _C.covered_since, new))
    return insert.on_conflict_do_update(
        index_elements=["meta_key"],
        set_={
            "covered_since": case(*since, else_=_C.covered_since),
            "covered_until": case((stale, until), else_=None),
        },
    )


async def record_rebuild(
    conn: AsyncConnection,
    keys: Collection[str],
    since: float,
    started: float,
    *,
    widen: bool = True,
) -> None:
    """After `rebuild-rollups` recomputed the rows of `keys` (the config in force, which
    every writer rolls up) from `since` on, starting at `started`: each is covered from
    `since` (from later only if a writer began rolling it up during the rebuild), and
    every other key, whose rows the rebuild emptied from `since` on, ends at `since`.
    Without `widen` (the config changed under the rebuild) only the latter."""
    if keys and widen:
        insert = dialect_insert(rollup_key_coverage, conn.dialect.name)
        new = insert.excluded.covered_since
        covered_since = case(
            (_C.covered_until.is_not(None), new),
            (_C.covered_since > started, _C.covered_since),
            (_C.covered_since > new, new),
            else_=_C.covered_since,
        )
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["meta_key"],
                set_={"covered_since": covered_since, "covered_until": None},
            ),
            [{"meta_key": k, "covered_since": since} for k in sorted(keys)],
        )
    others = _C.meta_key.not_in(list(keys)) if keys else _C.meta_key.is_not(None)
    await conn.execute(
        update(rollup_key_coverage)
        .where(others, or_(_C.covered_until.is_(None), _C.covered_until > since))
        .values(covered_until=since)
    )
    await conn.execute(
        rollup_key_coverage.delete().where(others, _C.covered_until <= _C.covered_since)
    )
