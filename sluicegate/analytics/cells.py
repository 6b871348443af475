"""A panel answer's table cells as text, one way for every place that shows them (the
`sluicegate report` tables, the web UI's tables and its CSV): a row's value at a column's
dotted key, and that value formatted by what it is."""

from __future__ import annotations

from typing import Any


def value_at(row: Any, key: str) -> Any:
    """The value at a dotted key (`latency_ms.p50`) of a row as builtins; None if absent."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def shown(row: Any, key: str) -> str:
    """A cell as read: shares and rates as percentages, dollars to four places, counts
    with thousands separators, lists and mappings by their size, "-" for none."""
    value = value_at(row, key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if key.endswith(("rate", "share", "adoption")) and isinstance(value, int | float):
        return f"{value:.1%}"
    if key.endswith("usd") and isinstance(value, int | float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list | dict):
        return f"{len(value)} item(s)"
    return str(value)
