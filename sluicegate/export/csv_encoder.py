"""CSV as RFC 4180 writes it: a header row of column names, fields separated by commas,
CRLF line ends, a field quoted (quotes doubled) when it holds a comma, quote or line
break; UTF-8 without a byte-order mark.

Values: NULL is an empty field; booleans are `true` / `false`; numbers as Python writes
them (the shortest text that reads back to the same float); JSON columns as compact JSON
text with sorted keys; times as ISO 8601 in UTC (`NAME`) and unix seconds (`NAME_unix`).
Text is written as stored: nothing is escaped for spreadsheets (a value starting with `=`
stays as it is), since the file is for warehouses and must hold the ledger's own values.
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sluicegate.export.columns import ExportColumn, Kind, canonical_json, iso_utc


def _boolean(value: Any) -> str:
    return "true" if value else "false"


_CONVERT: dict[Kind, Callable[[Any], Any]] = {  # kinds csv.writer does not write as wanted
    Kind.BOOLEAN: _boolean,
    Kind.JSON: canonical_json,
    Kind.TIMESTAMP: iso_utc,
}


class CsvEncoder:
    def __init__(self, columns: tuple[ExportColumn, ...]) -> None:
        self._columns = columns
        self._pick = operator.itemgetter(*(c.source for c in columns))
        # only the columns csv.writer would not write as wanted get a call per value
        self._conversions = [
            (position, convert)
            for position, column in enumerate(columns)
            if (convert := _CONVERT.get(column.kind)) is not None
        ]

    def begin(self) -> bytes:
        return self._write([[c.name for c in self._columns]])

    def page(self, rows: Sequence[Sequence[Any]]) -> bytes:
        pick, conversions = self._pick, self._conversions
        lines = []
        for row in rows:
            values = list(pick(row))
            for position, convert in conversions:
                value = values[position]
                if value is not None:  # csv.writer writes None as an empty field
                    values[position] = convert(value)
            lines.append(values)
        return self._write(lines)

    def end(self, manifest: dict[str, Any]) -> bytes:
        return b""  # CSV has no place for one: the answer's headers carry it

    @staticmethod
    def _write(rows: list[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode("utf-8")


def encoder(columns: tuple[ExportColumn, ...]) -> CsvEncoder:
    return CsvEncoder(columns)
