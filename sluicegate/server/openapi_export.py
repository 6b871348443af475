"""The OpenAPI description of the export routes (server/export_api.py)."""

from __future__ import annotations

from typing import Any

from sluicegate.analytics.rollups import GRAINS
from sluicegate.export.formats import FORMATS
from sluicegate.export.sources import ROLLUP_TABLES, SOURCES
from sluicegate.server.export_api import MAX_EXPORT_ROWS
from sluicegate.server.openapi_parts import Schema, op

_TIME: Schema = {
    "type": "string",
    "description": "unix seconds, ISO-8601, or an age like 15m / 1h / 7d",
}
_ANSWER_HEADERS = {
    "X-Sluice-Export-Cursor": "continues after this export's last row (absent: none)",
    "X-Sluice-Export-Complete": "true when nothing matched beyond this export",
    "X-Sluice-Export-Rows": "rows in this export when it started",
    "Content-Disposition": "attachment; filename=...",
}


def _common() -> dict[str, Schema]:
    return {
        "format": {"type": "string", "enum": list(FORMATS), "default": "csv"},
        "since": _TIME,
        "until": _TIME,
        "cursor": {"type": "string", "description": "X-Sluice-Export-Cursor of an export"},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_EXPORT_ROWS},
    }


def _file_answer(operation: dict[str, Any]) -> dict[str, Any]:
    """The 200 is a file (CSV text or Parquet bytes) with the export's headers."""
    operation["responses"]["200"] = {
        "description": "the export, streamed",
        "headers": {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in _ANSWER_HEADERS.items()
        },
        "content": {
            spec.media_type.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
            for spec in FORMATS.values()
        },
    }
    return operation


def export_paths() -> dict[str, Any]:
    requests = SOURCES["requests"]
    filters = {name: {"type": "string"} for name in requests.filters}
    rollup_filters = {
        name: {"type": "string", "description": "a dimension of the table (equality)"}
        for name in sorted({f for t in ROLLUP_TABLES for f in SOURCES[t].filters})
    }
    return {
        "/api/export/requests": {
            "get": _file_answer(
                op(
                    "ledger rows as CSV or Parquet, oldest first (admin only; audited)",
                    {},
                    query={**_common(), **filters},
                )
            )
        },
        "/api/export/rollups/{table}": {
            "get": _file_answer(
                op(
                    "rollup rows as CSV or Parquet (users and sessions: admin only, audited; "
                    "usage and metadata: also finance and platform)",
                    {},
                    query={
                        **_common(),
                        "grain": {"type": "string", "enum": list(GRAINS), "default": "hour"},
                        **rollup_filters,
                    },
                    path={"table": {"type": "string", "enum": list(ROLLUP_TABLES)}},
                )
            )
        },
    }
