"""Typed reads of request-body fields that fail with a 400 naming the field.

`where` is the path of the enclosing object ("messages[2]"), so errors say exactly which
field is wrong in a nested body.
"""

from __future__ import annotations

from typing import Any

from sluicegate.emulator.wire_errors import (
    invalid_value,
    missing_field,
    wrong_type,
)


def path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def present(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None


def required_text(body: dict[str, Any], name: str, where: str = "") -> str:
    value = body.get(name)
    if value is None:
        raise missing_field(path(where, name))
    if not isinstance(value, str):
        raise wrong_type(path(where, name), "a string")
    return value


def optional_text(body: dict[str, Any], name: str, where: str = "") -> str | None:
    return required_text(body, name, where) if present(body, name) else None


def optional_int(
    body: dict[str, Any],
    name: str,
    where: str = "",
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(path(where, name), "an integer")
    if minimum is not None and value < minimum:
        raise invalid_value(
            path(where, name),
            f"integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
        )
    if maximum is not None and value > maximum:
        raise invalid_value(
            path(where, name),
            f"integer above maximum value. Expected a value <= {maximum}, but got {value} instead.",
        )
    return value


def optional_number(body: dict[str, Any], name: str, where: str = "") -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(path(where, name), "a number")
    return float(value)


def optional_bool(body: dict[str, Any], name: str, where: str = "") -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise wrong_type(path(where, name), "a boolean")
    return value


def optional_object(body: dict[str, Any], name: str, where: str = "") -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise wrong_type(path(where, name), "an object")
    return value


def required_list(
    body: dict[str, Any], name: str, where: str = "", *, non_empty: bool = False
) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise missing_field(path(where, name))
    if not isinstance(value, list):
        raise wrong_type(path(where, name), "an array")
    if non_empty and not value:
        raise invalid_value(
            path(where, name),
            "empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
    return value


def optional_list(body: dict[str, Any], name: str, where: str = "") -> list[Any] | None:
    return required_list(body, name, where) if present(body, name) else None


def each_object(items: list[Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """Pairs of (path, object) for a list that must hold only objects."""
    checked: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        item_path = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise wrong_type(item_path, "an object")
        checked.append((item_path, item))
    return checked


def one_of(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise invalid_value(
            field, f"'{value}'. Supported values are: " + ", ".join(f"'{a}'" for a in allowed) + "."
        )
    return value
