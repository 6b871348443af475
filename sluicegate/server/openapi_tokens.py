"""The OpenAPI description of admin API tokens and the audit trail (`tokens_api.py`)."""

from __future__ import annotations

from typing import Any

from sluicegate.audit.store import MAX_PAGE, AuditAction
from sluicegate.model.admin import ROLES
from sluicegate.server.openapi_parts import NULLABLE_STRING, Schema, obj, op

_TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": 256}
_LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
_TIME: Schema = {
    "type": "string",
    "description": "unix seconds, ISO-8601, or an age like 15m / 1h / 7d",
}

_TOKEN = obj(
    {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "role": {"enum": [role.value for role in ROLES]},
        "teams": {"type": "array", "items": {"type": "string"}},
        "user_id": NULLABLE_STRING,
        "token_prefix": {"type": "string"},
        "expires_at": {"type": ["number", "null"]},
        "state": {"enum": ["active", "expired", "revoked"]},
    },
    {"token": {"type": "string", "description": "the secret, in the create answer only"}},
)
_PAGE = obj({"data": {"type": "array"}, "next_cursor": NULLABLE_STRING})


def token_paths() -> dict[str, Any]:
    create = obj(
        {"name": _TEXT, "role": {"enum": [role.value for role in ROLES]}},
        {
            "teams": {
                "type": "array",
                "items": _TEXT,
                "description": "team-lead: the teams it sees (at least one)",
            },
            "user_id": {**_TEXT, "description": "member: its own user"},
            "expires_at": {
                "type": ["number", "string", "null"],
                "description": "when it stops working: unix seconds or ISO-8601, in the future",
            },
        },
    )
    create["additionalProperties"] = False
    listing: dict[str, Schema] = {
        "state": {"type": "string", "enum": ["all", "active", "expired", "revoked"]},
        "limit": _LIMIT,
        "cursor": {"type": "string"},
    }
    audit_query: dict[str, Schema] = {
        "action": {"type": "string", "enum": [action.value for action in AuditAction]},
        "principal": {"type": "string"},
        "token_id": {"type": "string"},
        "since": _TIME,
        "until": _TIME,
        "limit": _LIMIT,
        "cursor": {"type": "string"},
    }
    return {
        "/api/tokens": {
            "post": op(
                "create an admin API token with a role (the secret is in the answer, once)",
                _TOKEN,
                status="201",
                body={"application/json": {"schema": create}},
            ),
            "get": op("admin API tokens, oldest first, without secrets", _PAGE, query=listing),
        },
        "/api/tokens/{token_id}": {
            "delete": op(
                "revoke an admin API token (at once here, within a second elsewhere)",
                _TOKEN,
                path={"token_id": {"type": "string"}},
            )
        },
        "/api/audit": {
            "get": op(
                "the admin audit trail, newest first: people views, token changes",
                _PAGE,
                query=audit_query,
            )
        },
    }
