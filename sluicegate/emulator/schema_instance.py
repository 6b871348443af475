"""Build a value that satisfies a tool's JSON schema, so emulated tool calls validate.

Covers what tool schemas use in practice: objects (every listed property, so required
ones are always there), arrays, strings with common formats and lengths, numbers and
integers within bounds, booleans, null, enum (first value), const, anyOf/oneOf (first
branch), allOf (merged) and local $ref. `pattern` is not honoured.

A schema is the caller's to write, so what it may ask for is bounded (`limits`): values
in all, items in one array, length of one string, integers a JSON number holds exactly,
finite numbers. Past a bound the request is refused (400) rather than built: a schema
with two required self-references alone would otherwise ask for 2**24 values.
"""

from __future__ import annotations

import math
from typing import Any

from sluicegate.emulator.limits import (
    MAX_SCHEMA_INTEGER,
    MAX_SCHEMA_ITEMS,
    MAX_SCHEMA_STRING,
    MAX_SCHEMA_VALUES,
)
from sluicegate.emulator.wire_errors import RequestInvalid

_MAX_DEPTH = 24  # a schema that requires endless nesting is cut off here
_OPTIONAL_DEPTH = 4  # optional properties are filled in near the top only

_FORMAT_SAMPLES: dict[str, str] = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}


def instance_for_schema(schema: Any) -> Any:
    """A value the schema accepts; RequestInvalid when it asks for more than the limits."""
    return _SchemaWalker(schema if isinstance(schema, dict) else {}).value(schema, "value", 0)


def over_limit(what: str) -> RequestInvalid:
    return RequestInvalid(
        f"The emulator cannot build tool-call arguments for this schema: {what}.",
        code="emulator_limit",
    )


class _SchemaWalker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.values = 0

    def value(self, schema: Any, name: str, depth: int) -> Any:
        self.values += 1
        if self.values > MAX_SCHEMA_VALUES:
            raise over_limit(f"it needs more than {MAX_SCHEMA_VALUES} values")
        if not isinstance(schema, dict):
            return "sample" if schema is not False else None  # `true` schema takes anything
        if depth > _MAX_DEPTH:  # an endlessly required recursion cannot be satisfied anyway
            return None
        schema = self._resolved(schema, depth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(self._preferred_branch(branches), name, depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.value(self._merged(schema), name, depth + 1)
        if "default" in schema:
            return schema["default"]
        return self._typed_value(schema, _schema_type(schema), name, depth)

    def _typed_value(self, schema: dict[str, Any], kind: str, name: str, depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, name)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        # Deeper down only what is required, so recursive schemas stay small.
        names = (
            required
            if depth >= _OPTIONAL_DEPTH
            else list(properties) + [r for r in required if r not in properties]
        )
        return {n: self.value(properties.get(n, {}), n, depth + 1) for n in names}

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [self.value(item, name, depth + 1) for item in prefix]
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        count = min_items if isinstance(min_items, int) else (0 if depth >= _OPTIONAL_DEPTH else 1)
        if isinstance(max_items, int):
            count = min(count, max_items)
        if count > MAX_SCHEMA_ITEMS:
            raise over_limit(f"minItems {count} is over the limit of {MAX_SCHEMA_ITEMS}")
        item_schema = schema.get("items", {})
        if schema.get("uniqueItems") and count > 1:  # distinct strings; other kinds rarely
            return [self.value(item_schema, f"{name} {i + 1}", depth + 1) for i in range(count)]
        return [self.value(item_schema, name, depth + 1) for _ in range(count)]

    def _resolved(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#") or depth > _MAX_DEPTH:
            return schema
        target: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {k: v for k, v in schema.items() if k != "$ref"}
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return self._resolved({**target, **extra}, depth + 1)

    def _preferred_branch(self, branches: list[Any]) -> Any:
        return branches[0]

    def _merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if not isinstance(part, dict):
                continue
            part = self._resolved(part, 0)
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: prefer a real value over null
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _integer(schema: dict[str, Any]) -> int:
    low = _bound(schema, "minimum", "exclusiveMinimum", 1, math.ceil, +1)
    high = _bound(schema, "maximum", "exclusiveMaximum", None, math.floor, -1)
    value = max(low, 1) if high is None else min(max(low, 1), high)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0 and value % step:
        value = (value // step + 1) * step
    if abs(value) > MAX_SCHEMA_INTEGER:
        raise over_limit("its integer bounds are past +-2**53, what a JSON number holds exactly")
    return value


def _number(schema: dict[str, Any]) -> float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    low_f = float(low) if isinstance(low, int | float) else None
    high_f = float(high) if isinstance(high, int | float) else None
    value = 1.5
    if low_f is not None and high_f is not None:
        value = low_f / 2 + high_f / 2  # strictly inside, so exclusive bounds hold too
    elif low_f is not None:
        value = low_f + 1
    elif high_f is not None:
        value = min(high_f - 1, 1.5)
    if not math.isfinite(value):
        raise over_limit(f"bounds {low!r} and {high!r} leave no finite number")
    return value


def _bound(
    schema: dict[str, Any],
    inclusive: str,
    exclusive: str,
    fallback: int | None,
    rounding: Any,
    nudge: int,
) -> Any:
    value = schema.get(inclusive)
    if _finite(value):
        return int(rounding(value))
    value = schema.get(exclusive)
    if _finite(value):
        whole = int(rounding(value))
        return whole + nudge if whole == value else whole
    return fallback


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    text = _FORMAT_SAMPLES.get(fmt, f"sample {name}") if isinstance(fmt, str) else f"sample {name}"
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and min_length > MAX_SCHEMA_STRING:
        raise over_limit(f"minLength {min_length} is over the limit of {MAX_SCHEMA_STRING}")
    if isinstance(min_length, int) and len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    if isinstance(max_length, int) and len(text) > max_length:
        text = text[:max_length]
    return text
