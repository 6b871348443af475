"""The export formats by name (`FORMATS`): a new one is an encoder module and one entry.

An encoder turns pages of rows into bytes: `begin()` before the first page, `page(rows)`
per page (called in a worker thread: encoding a page of thousands of rows must not hold
the event loop), `end(manifest)` after the last. It keeps no page after returning its
bytes. Encoders are imported when first used, so an optional dependency (pyarrow for
Parquet) is needed only by those who export in that format.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sluicegate.errors import NotInstalled
from sluicegate.export.columns import ExportColumn


class Encoder(Protocol):
    def begin(self) -> bytes: ...

    def page(self, rows: Sequence[Sequence[Any]]) -> bytes: ...

    def end(self, manifest: dict[str, Any]) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    media_type: str
    extension: str
    module: str  # defines `encoder(columns) -> Encoder`
    extra: str | None = None  # the pip extra it needs, named when it is missing

    def encoder(self, columns: tuple[ExportColumn, ...]) -> Encoder:
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise NotInstalled(
                f"format={self.name} needs the '{self.extra}' extra on the gateway "
                f"(pip install 'sluicegate[{self.extra}]'): {exc}",
                param="format",
            ) from None
        encoder: Encoder = module.encoder(columns)
        return encoder


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat(
        "csv", "text/csv; charset=utf-8; header=present", "csv", "sluicegate.export.csv_encoder"
    ),
    "parquet": ExportFormat(
        "parquet",
        "application/vnd.apache.parquet",
        "parquet",
        "sluicegate.export.parquet_encoder",
        extra="parquet",
    ),
}
