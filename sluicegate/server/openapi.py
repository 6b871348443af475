"""The OpenAPI 3.1 description the gateway serves at `GET /openapi.json`.

Built once from small per-area pieces (the model-call paths from the wire registry, then
health, keys, the request ledger, config and the control-room reads), so that a new route
is described next to its neighbours; `tests/server/test_openapi.py` fails when a route the
app registers is not described here. Request bodies name their key fields and say
`additionalProperties` where the API accepts more (the wire APIs pass unknown fields on);
every error is described by the shape it really has, so a client (or the fuzz suite in
`tests/fuzz/`) can check that no answer is a plain-text error.

It describes and discloses nothing: no key, model name or config value is in it, which is
why it is served without authentication.
"""

from __future__ import annotations

from typing import Any

from sluicegate.model.request import ClientApi
from sluicegate.server.openapi_analytics import analytics_paths
from sluicegate.server.openapi_export import export_paths
from sluicegate.server.openapi_outcomes import outcome_paths, outcome_security_schemes
from sluicegate.server.openapi_parts import (
    DATA_LIST,
    NULLABLE_STRING,
    OBJECT,
    Schema,
    json_content,
    obj,
    op,
    ref,
)
from sluicegate.server.openapi_sessions import session_paths
from sluicegate.server.openapi_tokens import token_paths
from sluicegate.server.openapi_whatif import what_if_paths
from sluicegate.wire.registry import WIRES

OPENAPI_PATH = "/openapi.json"

# -- components ------------------------------------------------------------------------------

_ERROR = obj(
    {
        "error": obj(
            {"message": {"type": "string"}, "type": {"type": "string"}},
            {"param": NULLABLE_STRING, "code": NULLABLE_STRING, "problems": {"type": "array"}},
        )
    }
)
_ANTHROPIC_ERROR = obj(
    {
        "type": {"const": "error"},
        "error": obj({"type": {"type": "string"}, "message": {"type": "string"}}),
    }
)

_CHAT_MESSAGE = obj(
    {"role": {"type": "string"}},
    {"content": {"type": ["string", "array", "null"]}, "tool_call_id": {"type": "string"}},
)
_ANTHROPIC_MESSAGE = obj(
    {"role": {"enum": ["user", "assistant"]}, "content": {"type": ["string", "array"]}}
)
_COUNT_TOKENS = obj(
    {"model": {"type": "string"}, "messages": {"type": "array", "items": _ANTHROPIC_MESSAGE}},
    {"system": {"type": ["string", "array"]}, "tools": {"type": "array"}},
)

_SCHEMAS: dict[str, Schema] = {
    "Error": _ERROR,
    "AnthropicError": _ANTHROPIC_ERROR,
    "ChatCompletionRequest": obj(
        {"model": {"type": "string"}, "messages": {"type": "array", "items": _CHAT_MESSAGE}},
        {
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number"},
            "tools": {"type": "array"},
            "user": {"type": "string"},
        },
    ),
    "ChatCompletion": obj({"id": {"type": "string"}, "choices": {"type": "array"}}),
    "MessagesRequest": obj(
        {
            **_COUNT_TOKENS["properties"],
            "max_tokens": {"type": "integer", "minimum": 1},
        },
        {"stream": {"type": "boolean"}, "temperature": {"type": "number"}},
    ),
    "Message": obj({"id": {"type": "string"}, "content": {"type": "array"}}),
    "CountTokensRequest": _COUNT_TOKENS,
    "EmbeddingsRequest": obj(
        {"model": {"type": "string"}, "input": {"type": ["string", "array"]}},
        {"encoding_format": {"type": "string"}, "dimensions": {"type": "integer"}},
    ),
    "Embeddings": obj({"data": {"type": "array"}}),
    "Key": obj(
        {"id": {"type": "string"}, "state": {"type": "string"}},
        {"key": {"type": "string", "description": "the secret, shown once"}},
    ),
    "ConfigResult": obj(
        {"applied": {"type": "boolean"}, "dry_run": {"type": "boolean"}},
        {"version": {"type": ["integer", "null"]}, "warnings": {"type": "array"}},
    ),
    "ConfigVersion": obj(
        {"version": {"type": ["integer", "null"]}, "documents": {"type": "array"}}
    ),
}

_TIME: Schema = {
    "type": "string",
    "description": "unix seconds, ISO-8601, or an age like 15m / 1h / 7d",
}
_FLAG: Schema = {"type": "string", "enum": ["true", "false"]}


# -- paths, one piece per area ---------------------------------------------------------------

_WIRE_SHAPES = {  # client API -> (request schema, answer schema, error schema)
    ClientApi.OPENAI_CHAT: ("ChatCompletionRequest", "ChatCompletion", "Error"),
    ClientApi.ANTHROPIC_MESSAGES: ("MessagesRequest", "Message", "AnthropicError"),
    ClientApi.OPENAI_EMBEDDINGS: ("EmbeddingsRequest", "Embeddings", "Error"),
}


_ENVELOPE_VALUE = {"type": "string", "pattern": r"^[\w.:@/+=#~\-]{1,128}$"}
_ENVELOPE = {  # the identity headers (X-TFY-* is read the same); a key's pins win
    **{
        f"X-Sluice-{name}": _ENVELOPE_VALUE
        for name in ("Project", "User-Id", "Team", "Session-Id", "Workflow-Tag")
    },
    **{f"X-Sluice-{name}": _ENVELOPE_VALUE for name in ("Environment", "Cost-Center")},
    "X-Sluice-Metadata": {
        "type": "string",
        "description": "a JSON object of strings (at most 32 keys, 4096 bytes)",
    },
}

_HELLO = [{"role": "user", "content": "hello"}]
_WIRE_EXAMPLES = {  # a call the default catalogue answers (models in the emulator's list)
    ClientApi.OPENAI_CHAT: {"model": "gpt-4o-mini", "messages": _HELLO},
    ClientApi.ANTHROPIC_MESSAGES: {
        "model": "claude-haiku-4-5",
        "max_tokens": 16,
        "messages": _HELLO,
    },
    ClientApi.OPENAI_EMBEDDINGS: {"model": "text-embedding-3-small", "input": "hello"},
}


def _wire_paths() -> dict[str, Any]:
    """The model calls (from the wire registry) and the two endpoints beside them."""
    paths: dict[str, Any] = {}
    for api, wire in WIRES.items():
        request, answer, error = _WIRE_SHAPES[api]
        body = {"schema": ref(request), "example": _WIRE_EXAMPLES[api]}
        operation = op(
            f"{api.value}: a model call",
            ref(answer),
            error=error,
            body={"application/json": body},
            headers=_ENVELOPE,
        )
        if wire.chat is not None:  # a chat API streams when the body says `stream: true`
            operation["responses"]["200"]["content"]["text/event-stream"] = {
                "schema": obj({"data": {"type": "string"}}, {"event": {"type": "string"}})
            }  # one server-sent event (its data is a JSON chunk, or [DONE])
        paths[wire.path] = {"post": operation}
    paths["/v1/messages/count_tokens"] = {
        "post": op(
            "anthropic: count a prompt's input tokens (an estimate; no provider is called)",
            obj({"input_tokens": {"type": "integer"}}),
            error="AnthropicError",
            body={"application/json": {"schema": ref("CountTokensRequest")}},
        )
    }
    paths["/v1/models"] = {
        "get": op(
            "the models this key may use (Anthropic's shape with anthropic-version)",
            DATA_LIST,
            headers={"anthropic-version": {"type": "string"}},
        )
    }
    return paths


def _health_paths() -> dict[str, Any]:
    ready = obj({"ready": {"type": "boolean"}, "checks": OBJECT})
    not_ready = {"503": json_content(ready, "not ready: `checks` says which part")}
    readyz = op("ready to serve: config loaded, counters reachable", ready, secure=False)
    readyz["responses"].update(not_ready)
    return {
        "/healthz": {"get": op("the process answers", obj({"status": {}}), secure=False)},
        "/readyz": {"get": readyz},
        OPENAPI_PATH: {"get": op("this description", OBJECT, secure=False)},
    }


def _key_paths() -> dict[str, Any]:
    text = {"type": "string", "maxLength": 256}
    create = obj(
        {},
        {
            **{f: text for f in ("name", "user_id", "team", "project", "workflow_tag")},
            **{f: text for f in ("environment", "cost_center")},
            "pinned": {"type": "array", "items": {"type": "string"}},
            "models": {"type": "array", "items": text},
            "expires_at": {"type": ["number", "string", "null"]},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    )
    create["additionalProperties"] = False
    key_id = {"key_id": {"type": "string"}}
    rotate = obj({}, {"grace_seconds": {"type": "number", "minimum": 0}})
    return {
        "/api/keys": {
            "post": op(
                "create a virtual key (the secret is in the answer, once)",
                ref("Key"),
                status="201",
                body={"application/json": {"schema": create}},
            ),
            "get": op("every key, without secrets", DATA_LIST),
        },
        "/api/keys/{key_id}/rotate": {
            "post": op(
                "a new secret; the old one works for grace_seconds",
                ref("Key"),
                path=key_id,
                body={"application/json": {"schema": rotate}},
            )
        },
        "/api/keys/{key_id}": {"delete": op("revoke a key", ref("Key"), path=key_id)},
    }


def _ledger_paths() -> dict[str, Any]:
    filters = {
        f: {"type": "string"}
        for f in ("project", "team", "user_id", "session_id", "workflow_tag", "key_id", "model")
    }
    query = {
        **filters,
        "status": {"type": "string", "description": "an HTTP status or a state such as shed"},
        "since": _TIME,
        "until": _TIME,
        "limit": {"type": "integer"},
        "cursor": {"type": "string"},
    }
    page = obj({"data": {"type": "array"}, "next_cursor": NULLABLE_STRING})
    return {"/api/requests": {"get": op("the request ledger, newest first", page, query=query)}}


def _config_paths() -> dict[str, Any]:
    change_query = {"dry_run": _FLAG, "strict": _FLAG}
    apply_query = {**change_query, "replace": _FLAG, "comment": {"type": "string"}}
    documents = {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": ["object", "array"]}},
    }
    rollback = obj({"version": {"type": "integer", "minimum": 1}}, {"dry_run": {"type": "boolean"}})
    history = obj({"versions": {"type": "array"}})
    return {
        "/api/config": {
            "post": op(
                "apply YAML or JSON documents (400 lists every problem)",
                ref("ConfigResult"),
                body=documents,
                query=apply_query,
            ),
            "get": op("the latest version and its documents", ref("ConfigVersion")),
        },
        "/api/config/history": {
            "get": op("past versions, newest first", history, query={"limit": {"type": "integer"}})
        },
        "/api/config/versions/{version}": {
            "get": op(
                "one version and its documents",
                ref("ConfigVersion"),
                path={"version": {"type": "integer"}},
            )
        },
        "/api/config/rollback": {
            "post": op(
                "a new version equal to an old one",
                ref("ConfigResult"),
                body={"application/json": {"schema": rollback}},
                query=change_query,
            )
        },
        "/api/config/{type}/{name}": {
            "delete": op(
                "a new version without one document",
                ref("ConfigResult"),
                path={"type": {"type": "string"}, "name": {"type": "string"}},
                query={**change_query, "comment": {"type": "string"}},
            )
        },
    }


def _control_paths() -> dict[str, Any]:
    return {
        "/api/budgets": {"get": op("each budget's spend and ceiling", DATA_LIST)},
        "/api/alerts": {
            "get": op("recent alerts", DATA_LIST, query={"limit": {"type": "integer"}})
        },
        "/api/targets": {"get": op("routing targets and their breakers", DATA_LIST)},
    }


def openapi_document(version: str) -> dict[str, Any]:
    """The whole description (built once per app; `version` is the package's)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sluicegate",
            "version": version,
            "description": "OpenAI- and Anthropic-compatible model calls behind virtual keys "
            "(/v1/...), and the admin API (/api/..., the admin key).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"x-api-key": []}],
        "paths": {
            **_wire_paths(),
            **_health_paths(),
            **_key_paths(),
            **_ledger_paths(),
            **_config_paths(),
            **what_if_paths(),
            **_control_paths(),
            **token_paths(),
            **outcome_paths(),
            **export_paths(),
            **analytics_paths(),
            **session_paths(),
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                **outcome_security_schemes(),
            },
        },
    }
