"""The rollup upserts of rollup_sql.py for a plain `sqlite3` connection.

The SQLite ledger writes its batches on a `sqlite3` connection in a worker thread
(ledger/sqlite_bulk.py), and the rollup deltas must land in that same transaction. The
statements here are rollup_sql.py's own, compiled once for SQLite with positional
parameters, so the two paths cannot drift apart; rows go in the same order (table by
table, each in key order).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from sluicegate.analytics.rollup_sql import upsert_for
from sluicegate.analytics.rollups import RollupDeltas, Values
from sluicegate.analytics.session_groups import SqliteSessionGroups
from sluicegate.db.schema import rollup_sessions

_DIALECT = sqlite.dialect(paramstyle="qmark")


class _Statement:
    """One upsert as SQL text; a delta row (a tuple in column order) is its parameters."""

    def __init__(self, table: Table):
        columns = [column.name for column in table.columns]
        compiled = upsert_for(table, "sqlite", False).compile(dialect=_DIALECT, column_keys=columns)
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        if names[: len(columns)] != columns:
            raise RuntimeError(f"unexpected parameter order in {self.sql!r}")
        # The binds past the VALUES clause are the statement's own constants ("" and
        # UNTAGGED in the session upsert's CASEs).
        self.constants = tuple(compiled.params[name] for name in names[len(columns) :])

    def run(self, connection: sqlite3.Connection, keyed: dict[str, Values]) -> None:
        if not keyed:
            return
        rows = [keyed[k] for k in sorted(keyed)]
        if self.constants:
            rows = [row + self.constants for row in rows]
        connection.executemany(self.sql, rows)


class SqliteRollupWriter:
    """Adds RollupDeltas on a sqlite3 connection, inside the caller's transaction, and
    keeps the session groups (analytics/session_groups.py) around the session upsert."""

    def __init__(self, *, session_groups: bool = True) -> None:
        """`session_groups` False: a bulk load that fills them once at the end."""
        self._statements = {table.name: _Statement(table) for table, _ in RollupDeltas().tables()}
        self._groups = SqliteSessionGroups() if session_groups else None

    def apply(self, connection: sqlite3.Connection, deltas: RollupDeltas) -> None:
        for table, keyed in deltas.tables():
            if table is rollup_sessions and keyed and self._groups is not None:
                ids = sorted(keyed)
                self._groups.add(connection, ids, -1)
                self._statements[table.name].run(connection, keyed)
                self._groups.add(connection, ids, 1)
            else:
                self._statements[table.name].run(connection, keyed)
