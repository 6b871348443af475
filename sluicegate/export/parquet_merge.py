"""Parquet exports fetched in several chunks, joined into one file (for `sluicegate ledger
export`): each chunk's row groups are copied in order, one at a time, so memory holds one
row group. Needs pyarrow (the `parquet` extra) on the machine running the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

MANIFEST_KEY = b"sluicegate.export"


class ParquetJoiner:
    def __init__(self, target: Path) -> None:
        self._target = target
        self._writer: Any = None
        self._first: dict[str, Any] | None = None
        self._last: dict[str, Any] = {}
        self._rows = 0
        self._planned = 0

    def append(self, chunk: Path) -> None:
        source = pq.ParquetFile(chunk)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._target, source.schema_arrow, compression="zstd")
        elif source.schema_arrow != self._writer.schema:
            raise ValueError(f"{chunk}: its columns differ from the export's first chunk")
        for group in range(source.num_row_groups):
            self._writer.write_table(source.read_row_group(group))
        manifest = manifest_of(source)
        self._first = self._first or manifest
        self._last = manifest
        self._rows += int(manifest.get("rows") or 0)
        self._planned += int(manifest.get("planned_rows") or 0)

    def close(self) -> None:
        """The footer, with one manifest for the whole: the first chunk's start, the last
        chunk's end, every row."""
        if self._writer is None:
            return
        joined = {
            **self._last,
            "cursor": (self._first or {}).get("cursor"),
            "rows": self._rows,
            "planned_rows": self._planned,
        }
        self._writer.add_key_value_metadata(
            {MANIFEST_KEY.decode(): orjson.dumps(joined, option=orjson.OPT_SORT_KEYS).decode()}
        )
        self._writer.close()


def manifest_of(parquet: Any) -> dict[str, Any]:
    metadata = parquet.metadata.metadata or {}
    raw = metadata.get(MANIFEST_KEY)
    value = orjson.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}
