"""The OpenAPI description of the session listing (`server/analytics_sessions_api.py`)."""

from __future__ import annotations

from typing import Any

from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.session_listing import ListsSessions
from sluicegate.analytics.session_sql import SESSION_IDENTITY
from sluicegate.analytics.sessions import MAX_SESSION_PAGE
from sluicegate.server.openapi_parts import NULLABLE_STRING, OBJECT, Schema, obj, op

_TIME: Schema = {
    "type": "string",
    "description": "unix seconds, ISO 8601 (naive is UTC), or an age such as 36h or 7d",
}


def _query() -> dict[str, Schema]:
    filters: dict[str, Schema] = {
        name: {"type": "string", "description": f"only sessions whose {name} is this"}
        for name in SESSION_IDENTITY
    }
    return {
        "since": _TIME,
        "until": _TIME,
        **filters,
        "traced": {
            "type": "string",
            "enum": ["true", "false"],
            "description": "only sessions with (true) or without (false) an outcome",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SESSION_PAGE},
        "cursor": {"type": "string", "description": "the previous page's next_cursor"},
    }


def session_paths() -> dict[str, Any]:
    listing = obj(
        {
            "panel": {"type": "string"},
            "window": OBJECT,
            "filters": OBJECT,
            "scope": OBJECT,
            "sessions": {"type": "integer"},
            "data": {"type": "array", "items": OBJECT},
            "next_cursor": NULLABLE_STRING,
        },
        {"traced": {"type": ["boolean", "null"]}},
    )
    panels = [name for name, panel in PANELS.items() if isinstance(panel, ListsSessions)]
    return {
        "/api/analytics/{panel}/sessions": {
            "get": op(
                "the sessions behind a session panel's figures, by id, newest first (admins)",
                listing,
                path={"panel": {"type": "string", "enum": panels}},
                query=_query(),
            )
        }
    }
