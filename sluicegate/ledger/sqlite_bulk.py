"""Batched ledger inserts into a SQLite file, off the event loop's GIL time.

Measured in the served gateway: writing the ledger through SQLAlchemy + aiosqlite cost
~320 us of CPU per request (per-row bind processing, thread hand-offs, and the GIL
passing back and forth), a third of the process. Here rows are built once with msgspec
(JSON columns pre-encoded) and `executemany` runs on a plain `sqlite3` connection in a
worker thread, where SQLite does the index work with the GIL released. The statement,
columns and semantics (insert-or-ignore by request_id) are the ones `schema.requests`
defines; reads still go through SQLAlchemy. That thread runs at the lowest CPU priority
while the ledger keeps up (writer_thread.py), so that it waits for the event loop rather
than taking turns with it.

The rollups move in the same transaction: it is opened IMMEDIATE (the write lock first),
the batch inserted, and the deltas of the records that were new added with
rollup_sqlite.py's statements. Which records were new: all of them when SQLite's change
count rose by the batch's size (the usual case); otherwise the batch is rolled back and
inserted again after a look-up of the ids already stored. A refused batch rolls back
both.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from typing import Any

from sluicegate.analytics.rollup_sqlite import SqliteRollupWriter
from sluicegate.db.errors import StoreRejected
from sluicegate.errors import StoreUnavailable
from sluicegate.ledger.landed import deltas_for, first_of_each
from sluicegate.ledger.rows import SQLITE_INSERT, RequestRows
from sluicegate.ledger.writer_thread import WriterThreads
from sluicegate.model.record import LedgerRecord

_LOOKUP_CHUNK = 500  # ids per look-up statement (SQLite allows 32766 variables)


class SqliteBulkInserter:
    def __init__(self, path: str, pragmas: tuple[str, ...], threads: WriterThreads):
        self._path = path
        self._pragmas = pragmas
        self.rows = RequestRows()
        self._sql = SQLITE_INSERT
        self._rollups = SqliteRollupWriter()
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one batch at a time on the one connection
        self._threads = threads  # the store's (writer_thread.py)

    async def insert(self, records: list[LedgerRecord], metadata_keys: tuple[str, ...]) -> None:
        """Insert the records not stored yet and add their rollup deltas (metadata rolled
        up for `metadata_keys`), in one transaction."""
        try:
            rows = self.rows(records)
        except (TypeError, ValueError) as exc:
            raise StoreRejected(f"ledger write: {exc}") from exc
        await self._threads.run(
            records, functools.partial(self._insert, records, rows, metadata_keys)
        )

    def _insert(
        self, records: list[LedgerRecord], rows: list[list[Any]], keys: tuple[str, ...]
    ) -> None:
        with self._lock:
            connection = None
            try:
                connection = self._connect()
                landed = self._insert_rows(connection, records, rows)
                if landed:
                    self._rollups.apply(connection, deltas_for(landed, keys))
                connection.execute("COMMIT")
            except (
                sqlite3.IntegrityError,
                sqlite3.InterfaceError,
                sqlite3.DataError,
                OverflowError,
                UnicodeEncodeError,  # a lone surrogate: no UTF-8 for it
            ) as exc:
                self._rollback(connection)
                raise StoreRejected(f"ledger write: {exc}") from exc
            except sqlite3.Error as exc:
                self._rollback(connection)
                self.close()
                raise StoreUnavailable(f"ledger write: {exc}") from exc
            except BaseException:  # StoreRejected from the deltas, or a bug
                self._rollback(connection)
                raise

    def _insert_rows(
        self, connection: sqlite3.Connection, records: list[LedgerRecord], rows: list[list[Any]]
    ) -> list[LedgerRecord]:
        """Insert in a new transaction (left open); returns the records that were new.
        Usually all are, which the change count shows at no cost; when some were not (a
        replay), the insert is redone after looking up the ids already stored."""
        connection.execute("BEGIN IMMEDIATE")
        before = connection.total_changes
        connection.executemany(self._sql, rows)
        if connection.total_changes - before == len(records):
            return records
        connection.execute("ROLLBACK")
        connection.execute("BEGIN IMMEDIATE")
        stored = self._stored_ids(connection, [r.request_id for r in records])
        connection.executemany(self._sql, rows)
        return first_of_each(records, stored)

    @staticmethod
    def _stored_ids(connection: sqlite3.Connection, ids: list[str]) -> set[str]:
        stored: set[str] = set()
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT request_id FROM requests WHERE request_id IN ({marks})"
            stored.update(row[0] for row in connection.execute(sql, chunk))
        return stored

    @staticmethod
    def _rollback(connection: sqlite3.Connection | None) -> None:
        if connection is not None and connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # broken: the caller closes it
                connection.execute("ROLLBACK")

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # autocommit mode: the transaction is this module's own BEGIN ... COMMIT
            connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            for pragma in self._pragmas:
                connection.execute(pragma)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        """Close the connection (a later batch opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
