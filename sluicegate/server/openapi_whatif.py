"""The what-if path of the OpenAPI description (server/admin_whatif.py)."""

from __future__ import annotations

from typing import Any

from sluicegate.server.openapi_parts import NULLABLE_STRING, OBJECT, Schema, obj, op

_FLAG: Schema = {"type": "string", "enum": ["true", "false"]}
_LIST: Schema = {"type": "array"}

WHAT_IF_REPORT = obj(
    {
        "window": obj({"since": {"type": "string"}, "until": {"type": "string"}}),
        "rows_read": {"type": "integer"},
        "rows_replayed": {"type": "integer"},
        "truncated": {"type": "boolean"},
        "totals": OBJECT,
        "rules": _LIST,
        "routes": _LIST,
        "findings": {"type": "array", "items": {"type": "string"}},
    },
    {
        "truncated_reason": NULLABLE_STRING,
        "replayed_until": NULLABLE_STRING,
        "config": OBJECT,
        "notes": {"type": "array", "items": {"type": "string"}},
    },
)


def what_if_paths() -> dict[str, Any]:
    documents = {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": ["object", "array"]}},
    }
    query = {
        "window": {
            "type": "string",
            "description": "how much of the ledger to replay: 7d, 36h, 90m (at most 31d; "
            "default 7d)",
        },
        "until": {
            "type": "string",
            "description": "the window's end: unix seconds, ISO-8601 or an age like 1d "
            "(default now)",
        },
        "replace": _FLAG,
        "strict": _FLAG,
    }
    return {
        "/api/config/what-if": {
            "post": op(
                "replay the ledger under proposed documents (validated as apply does; "
                "nothing is applied): what each rule would have refused, queued or sent to "
                "a fallback against what the live policy did, and routing cost changes",
                WHAT_IF_REPORT,
                body=documents,
                query=query,
            )
        }
    }
