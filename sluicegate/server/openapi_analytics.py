"""The OpenAPI description of the control room's panels (`server/analytics_api.py`)."""

from __future__ import annotations

from typing import Any

from sluicegate.analytics.dimensions import DIMENSIONS
from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.query import MAX_LIMIT
from sluicegate.server.openapi_parts import NULLABLE_STRING, OBJECT, Schema, obj, op

_TIME: Schema = {
    "type": "string",
    "description": "unix seconds, ISO 8601 (naive is UTC), or an age such as 36h or 7d",
}
_ARRAY: Schema = {"type": "array"}


def _query() -> dict[str, Schema]:
    filters: dict[str, Schema] = {
        name: {"type": "string", "description": f"only requests with this value: {dim.description}"}
        for name, dim in DIMENSIONS.items()
    }
    return {
        "since": _TIME,
        "until": _TIME,
        "group_by": {
            "type": "string",
            "description": "comma-separated dimensions or metadata.KEY, at most 4 "
            "(a filter on any metadata key is the parameter metadata.KEY=VALUE)",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        **filters,
    }


def _answer() -> Schema:
    window = obj({name: {"type": "string"} for name in ("since", "until")})
    action = obj(
        {"message": {"type": "string"}, "control": obj({"kind": {}, "name": {"type": "string"}})},
        {"where": {"type": ["object", "null"]}},
    )
    return obj(
        {
            "panel": {"type": "string"},
            "title": {"type": "string"},
            "layer": {"enum": ["activity", "control", "outcome"]},
            "question": {"type": "string"},
            "window": window,
            "filters": OBJECT,
            "scope": OBJECT,
            "group_by": _ARRAY,
            "source": {"type": "string"},
            "columns": _ARRAY,
            "rows": _ARRAY,
            "totals": OBJECT,
            "actions": {"type": "array", "items": action},
            "notes": _ARRAY,
        },
        {"series": {"type": ["array", "null"]}, "breakdowns": _ARRAY},
    )


def analytics_paths() -> dict[str, Any]:
    listing = obj(
        {
            "data": {
                "type": "array",
                "items": obj(
                    {
                        "name": {"type": "string"},
                        "title": {"type": "string"},
                        "layer": {"type": "string"},
                        "question": {"type": "string"},
                    },
                    {"path": NULLABLE_STRING},
                ),
            }
        }
    )
    return {
        "/api/analytics": {"get": op("the control room's panels", listing)},
        "/api/analytics/{panel}": {
            "get": op(
                "one panel's answer: figures, the window and filters read, and actions",
                _answer(),
                path={"panel": {"type": "string", "enum": list(PANELS)}},
                query=_query(),
            )
        },
    }
