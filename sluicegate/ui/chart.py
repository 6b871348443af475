"""A panel's series as the data of one uPlot chart: x (unix seconds) and at most
MAX_LINES lines. A grouped series (points carry a `label`: adoption's tool x team) is one
line per label of its first measure; an ungrouped one, its first two measures (the
second on its own axis: requests and dollars do not share a scale)."""

from __future__ import annotations

from typing import Any

MAX_LINES = 8
NOT_MEASURES = frozenset({"start_unix", "start", "group", "label"})
# what a chart shows first when a point has it: money, then the slow tail, then volume
PREFERRED = ("cost_usd", "latency_ms.p95", "active_users", "adoption", "requests")


def chart_of(series: list[dict[str, Any]] | None, window: dict[str, Any]) -> dict[str, Any] | None:
    """The chart of a panel's `series` over its answer's `window` (the x axis spans the
    whole window: a series lists only the steps that had traffic)."""
    if not series:
        return None
    measures = _measures(series[0])
    if not measures:
        return None
    span = [window["since_unix"], window["until_unix"]]
    if "label" in series[0]:
        return {**_by_label(series, measures[0]), "range": span}
    xs = [p["start_unix"] for p in series]
    lines = [
        {"label": name, "values": [_at(p, name) for p in series], "axis": number}
        for number, name in enumerate(measures[:2])
    ]
    return {"x": xs, "lines": lines, "range": span}


def _by_label(series: list[dict[str, Any]], measure: str) -> dict[str, Any]:
    xs = sorted({p["start_unix"] for p in series})
    labels = list(dict.fromkeys(str(p["label"]) for p in series))[:MAX_LINES]
    at = {(p["start_unix"], str(p["label"])): _at(p, measure) for p in series}
    lines = [
        {"label": f"{label} {measure}", "values": [at.get((x, label)) for x in xs], "axis": 0}
        for label in labels
    ]
    return {"x": xs, "lines": lines}


def _measures(point: dict[str, Any]) -> list[str]:
    """The numeric figures of a point, nested ones by dotted name (latency_ms.p95)."""
    found = []
    for key, value in point.items():
        if key in NOT_MEASURES:
            continue
        if isinstance(value, dict):
            found += [f"{key}.{k}" for k, v in value.items() if _number(v)]
        elif _number(value):
            found.append(key)
    rank = {name: number for number, name in enumerate(PREFERRED)}
    return sorted(found, key=lambda name: rank.get(name, len(rank)))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at(point: dict[str, Any], dotted: str) -> float | None:
    value: Any = point
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if _number(value) else None
