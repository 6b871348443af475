"""The rollup upserts of rollup_sql.py for a plain `sqlite3` connection.

The SQLite ledger writes its batches on a `sqlite3` connection in a worker thread
(ledger/sqlite_bulk.py), and the rollup deltas must land in that same transaction. The
statements here are rollup_sql.py's own, compiled once for SQLite with positional
parameters, so the two paths cannot drift apart; rows go in the same order (table by
table, each in key order).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import sqlite

from sluicegate.analytics.rollup_sql import additive_upsert, session_upsert
from sluicegate.analytics.rollups import RollupDeltas, Row
from sluicegate.db.schema import rollup_metadata, rollup_sessions, rollup_usage, rollup_users

_DIALECT = sqlite.dialect(paramstyle="qmark")


class _Statement:
    """One upsert as SQL text, and how to turn a delta row into its parameters."""

    def __init__(self, statement: Insert, columns: list[str]):
        compiled = statement.compile(dialect=_DIALECT, column_keys=columns)
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        if names[: len(columns)] != columns:
            raise RuntimeError(f"unexpected parameter order in {self.sql!r}")
        # The binds past the VALUES clause are the statement's own constants ("" and
        # UNTAGGED in the session upsert's CASEs).
        constants = tuple(compiled.params[name] for name in names[len(columns) :])
        values = operator.itemgetter(*columns)
        self.parameters: Callable[[Row], tuple[Any, ...]] = (
            (lambda row: values(row) + constants) if constants else values
        )

    def run(self, connection: sqlite3.Connection, keyed: dict[str, Row]) -> None:
        if keyed:
            connection.executemany(self.sql, [self.parameters(keyed[k]) for k in sorted(keyed)])


def _columns(table: Any) -> list[str]:
    return [column.name for column in table.columns]


class SqliteRollupWriter:
    """Adds RollupDeltas on a sqlite3 connection, inside the caller's transaction."""

    def __init__(self) -> None:
        self._usage = _Statement(additive_upsert(rollup_usage, "sqlite"), _columns(rollup_usage))
        self._users = _Statement(additive_upsert(rollup_users, "sqlite"), _columns(rollup_users))
        self._metadata = _Statement(
            additive_upsert(rollup_metadata, "sqlite"), _columns(rollup_metadata)
        )
        self._sessions = _Statement(session_upsert("sqlite"), _columns(rollup_sessions))

    def apply(self, connection: sqlite3.Connection, deltas: RollupDeltas) -> None:
        self._usage.run(connection, deltas.usage)
        self._users.run(connection, deltas.users)
        self._metadata.run(connection, deltas.metadata)
        self._sessions.run(connection, deltas.sessions)
