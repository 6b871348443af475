"""Builders for the OpenAPI description: each area of the admin API describes its own
paths in a module of its own (`openapi_<area>.py`, or here for the gateway's first ones)
with these, and `openapi.openapi_document` gathers them with one line per area."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
Operation = dict[str, Any]

OBJECT: Schema = {"type": "object"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these fields that may carry more (answers grow new fields)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": True,
    }


def errors(error: str) -> dict[str, Any]:
    """Every 4xx and 5xx answer of an operation: a JSON error object of the `error` schema."""
    return {
        "4XX": json_content(ref(error), "the request was refused"),
        "5XX": json_content(ref(error), "the gateway or a provider failed"),
    }


def op(
    summary: str,
    ok: Schema,
    *,
    error: str = "Error",
    status: str = "200",
    body: dict[str, Any] | None = None,
    query: dict[str, Schema] | None = None,
    path: dict[str, Schema] | None = None,
    headers: dict[str, Schema] | None = None,
    secure: bool = True,
) -> Operation:
    params = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in (query or {}).items()
    ] + [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in (path or {}).items()
    ]
    operation: Operation = {
        "summary": summary,
        "responses": {status: json_content(ok, "success"), **errors(error)},
    }
    params += [
        {"name": name, "in": "header", "required": False, "schema": schema}
        for name, schema in (headers or {}).items()
    ]
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    if not secure:
        operation["security"] = []
    return operation


DATA_LIST = obj({"data": {"type": "array"}})
