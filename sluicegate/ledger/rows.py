"""Ledger records as `requests` rows: the values the SQL ledger writes, in column order.

One builder for every raw write of the table (the SQLite bulk inserter, and bulk loads
such as the panel bench's), so that the column list and the encoding of the JSON columns
exist once: columns are `schema.requests`'s, each taken from the record field of the same
name, JSON columns as compact JSON text (what SQLite stores and what PostgreSQL's jsonb
takes over COPY).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sluicegate.db.schema import requests
from sluicegate.model.record import LedgerRecord

REQUEST_COLUMNS: tuple[str, ...] = tuple(c.name for c in requests.columns)
_JSON_TYPES = ("JSON", "JSONB")
# insert-or-ignore by request_id, positional parameters: a SQLite write of the rows
SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
)


class RequestRows:
    """Call it with records to get their rows (lists, in `REQUEST_COLUMNS` order)."""

    def __init__(self) -> None:
        fields = LedgerRecord.__struct_fields__
        # positions in the record of each column (the same order today, but not assumed)
        self._positions = tuple(fields.index(name) for name in REQUEST_COLUMNS)
        self._json_positions = tuple(
            i for i, c in enumerate(requests.columns) if type(c.type).__name__ in _JSON_TYPES
        )
        self._encoder = msgspec.json.Encoder()

    def __call__(self, records: Sequence[LedgerRecord]) -> list[list[Any]]:
        encode, positions, json_positions = (
            self._encoder.encode,
            self._positions,
            self._json_positions,
        )
        astuple = msgspec.structs.astuple
        out = []
        for record in records:
            values = astuple(record)
            row = [values[i] for i in positions]
            for i in json_positions:
                row[i] = encode(row[i]).decode()
            out.append(row)
        return out
