"""The OpenAPI description of outcomes in: the admin API (`/api/outcomes`) and the
webhook receivers (one path per kind in `WEBHOOK_KINDS`), which need no admin key: the
sender authenticates itself (described as its own security scheme, per kind)."""

from __future__ import annotations

from typing import Any

from sluicegate.outcomes.intake import MAX_ID, MAX_URL, MAX_VALUE
from sluicegate.outcomes.model import OutcomeKind, OutcomeSource
from sluicegate.outcomes.registry import WEBHOOK_KINDS
from sluicegate.outcomes.store import MAX_PAGE
from sluicegate.outcomes.webhooks import WebhookKind, webhook_path
from sluicegate.server.openapi_parts import (
    NULLABLE_NUMBER,
    NULLABLE_STRING,
    OBJECT,
    Schema,
    json_content,
    obj,
    op,
)

_ID: Schema = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_.:@/+=#~\-]{1,128}$",
    "description": "what an X-Sluice-Session-Id header carries",
}
_TIME: Schema = {"type": "string", "description": "unix seconds, ISO-8601, or an age like 7d"}

OUTCOME = obj(
    {
        "id": {"type": "string"},
        "source": {"enum": [s.value for s in OutcomeSource]},
        "external_id": {"type": "string"},
        "kind": {"enum": [k.value for k in OutcomeKind]},
        "session_id": {"type": "string"},
        "ts": {"type": "string", "description": "ISO-8601 UTC"},
        "ts_unix": {"type": "number"},
        "received_at": {"type": "string"},
        "received_at_unix": {"type": "number"},
    },
    {
        "workflow_tag": NULLABLE_STRING,
        "url": NULLABLE_STRING,
        "value": NULLABLE_NUMBER,
        "pass_rate": NULLABLE_NUMBER,
        "extra": OBJECT,
    },
)

_NEW_OUTCOME: Schema = {
    "type": "object",
    "required": ["external_id", "kind", "session_id"],
    "properties": {
        "external_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID,
            "description": "the idempotency key: sent again, the stored outcome answers (200)",
        },
        "kind": {"enum": [k.value for k in OutcomeKind]},
        "session_id": _ID,
        "workflow_tag": _ID,
        "url": {"type": "string", "maxLength": MAX_URL, "pattern": "^https?://"},
        "value": {"type": "number", "minimum": -MAX_VALUE, "maximum": MAX_VALUE},
        "pass_rate": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "eval_run only, and required there",
        },
        "ts": {"type": ["number", "string"], "description": "unix seconds or ISO-8601"},
        "extra": {"type": "object", "description": "at most 4096 bytes of JSON"},
    },
    "additionalProperties": False,
}

_WEBHOOK_ANSWER = obj(
    {"status": {"enum": ["recorded", "already_recorded", "ignored", "ping"]}},
    {"reason": NULLABLE_STRING, "outcome": OUTCOME},
)


def outcome_security_schemes() -> dict[str, Any]:
    """One security scheme per receiver kind: the header its sender authenticates with."""
    return {
        _scheme(kind): {
            "type": "apiKey",
            "in": "header",
            "name": kind.auth_header,
            "description": kind.auth_description,
        }
        for kind in WEBHOOK_KINDS
    }


def _scheme(kind: WebhookKind) -> str:
    return f"{kind.name}-webhook"


def outcome_paths() -> dict[str, Any]:
    query = {
        "source": {"enum": [s.value for s in OutcomeSource]},
        "kind": {"enum": [k.value for k in OutcomeKind]},
        "session_id": _ID,
        "workflow_tag": _ID,
        "since": _TIME,
        "until": _TIME,
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        "cursor": {"type": "string"},
    }
    page = obj({"data": {"type": "array", "items": OUTCOME}, "next_cursor": NULLABLE_STRING})
    record = op(
        "record an outcome (201; 200 with the stored one when its external id was sent before)",
        OUTCOME,
        status="201",
        body={"application/json": {"schema": _NEW_OUTCOME}},
    )
    record["responses"]["200"] = json_content(OUTCOME, "already recorded: the stored outcome")
    paths: dict[str, Any] = {
        "/api/outcomes": {
            "post": record,
            "get": op("outcomes, newest first", page, query=query),
        }
    }
    for kind in WEBHOOK_KINDS:
        paths[webhook_path(kind.name)] = {"post": _webhook_operation(kind)}
    return paths


def _webhook_operation(kind: WebhookKind) -> dict[str, Any]:
    operation = op(
        f"the {kind.name} webhook (no admin key: the sender authenticates); 404 until its "
        "secret is configured",
        _WEBHOOK_ANSWER,
        status="201",
        body={content_type: {"schema": OBJECT} for content_type in kind.content_types},
        headers={name: {"type": "string"} for name in kind.headers},
    )
    operation["responses"]["200"] = json_content(_WEBHOOK_ANSWER, "already recorded, or a ping")
    operation["responses"]["202"] = json_content(_WEBHOOK_ANSWER, "not an outcome: the reason")
    operation["security"] = [{_scheme(kind): []}]
    return operation
