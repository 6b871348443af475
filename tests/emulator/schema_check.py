"""Validate a value against a JSON schema: jsonschema when installed, else a small checker
for the keywords tool schemas use (type, required, properties, items, enum, const,
minimum/maximum, anyOf/oneOf, $ref)."""

from __future__ import annotations

from typing import Any

try:
    import jsonschema
except ImportError:  # not a dependency; the fallback covers what the tests use
    jsonschema = None

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def assert_valid(value: Any, schema: dict[str, Any]) -> None:
    if jsonschema is not None:
        jsonschema.validate(value, schema)
        return
    _check(value, schema, schema, "$")


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        _check(value, target, root, where)
        return
    for key in ("anyOf", "oneOf"):
        if key in schema:
            errors = []
            for branch in schema[key]:
                try:
                    _check(value, branch, root, where)
                    break
                except AssertionError as problem:
                    errors.append(problem)
            else:
                raise AssertionError(f"{where}: matches no branch of {key}: {errors}")
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != const {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _TYPES[k])
            and not (k in ("integer", "number") and isinstance(value, bool))
            for k in kinds
        )
        assert ok, f"{where}: {value!r} is not of type {kinds}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema:
            assert value >= schema["minimum"], f"{where}: below minimum"
        if "maximum" in schema:
            assert value <= schema["maximum"], f"{where}: above maximum"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing required {name!r}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check(value[name], sub, root, f"{where}.{name}")
    if isinstance(value, list):
        if "minItems" in schema:
            assert len(value) >= schema["minItems"], f"{where}: too few items"
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                _check(item, schema["items"], root, f"{where}[{index}]")
