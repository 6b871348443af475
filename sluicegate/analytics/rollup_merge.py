"""Adding one `RollupDeltas` into another in memory, row by row as the upserts add them.

    chunk deltas --merge_deltas--> one RollupDeltas --upserts (rollup_sql.py)--> rollup_*

A bulk load computes the deltas of large chunks of the ledger in parallel and writes each
table once: merging B into A and upserting A stores the rows that upserting A, then B,
stores (merge chunks in ledger order: a session keeps its first non-empty identity). The
rules are the upserts' own, from the same column lists (`added_columns`): measures are
summed, a session's first/last time are the min/max, its identity columns keep the first
non-empty value (UNTAGGED counts as empty for the project). Every table that
`RollupDeltas.tables()` names is merged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import Table

from sluicegate.analytics.rollup_sql import added_columns
from sluicegate.analytics.rollups import RollupDeltas, Values
from sluicegate.db.schema import SESSION_IDENTITY, rollup_sessions
from sluicegate.model.identity import UNTAGGED

RowMerge = Callable[[Values, Values], Values]


def merge_deltas(total: RollupDeltas, more: RollupDeltas) -> None:
    """Add `more` (the deltas of later records) into `total`, in place."""
    into = {table.name: keyed for table, keyed in total.tables()}
    for table, keyed in more.tables():
        stored_rows = into[table.name]
        merge = row_merge(table)
        for key, row in keyed.items():
            stored = stored_rows.get(key)
            stored_rows[key] = row if stored is None else merge(stored, row)


@functools.cache
def row_merge(table: Table) -> RowMerge:
    """How two rows of `table` with the same key combine (the stored one first)."""
    names = [c.name for c in table.columns]
    added = [names.index(name) for name in added_columns(table)]
    if table is not rollup_sessions:
        return functools.partial(_add, added)
    return functools.partial(
        _merge_session,
        added,
        names.index("first_ts"),
        names.index("last_ts"),
        [names.index(name) for name in SESSION_IDENTITY],
        names.index("project"),
    )


def _add(added: list[int], stored: Values, new: Values) -> Values:
    row = list(stored)
    for i in added:
        row[i] = stored[i] + new[i]
    return tuple(row)


def _merge_session(
    added: list[int],
    first: int,
    last: int,
    identity: list[int],
    project: int,
    stored: Values,
    new: Values,
) -> Values:
    row = list(_add(added, stored, new))
    row[first] = min(stored[first], new[first])
    row[last] = max(stored[last], new[last])
    for i in identity:
        empty = stored[i] == "" or (i == project and stored[i] == UNTAGGED)
        if empty:
            row[i] = new[i]
    return tuple(row)
