"""An analytics query as typed data, parsed from a panel request's query parameters.

    since, until     the window (analytics/window.py); default the last 7 days
    group_by         comma-separated dimensions or metadata.KEY, at most 4
    limit            rows before the "other" row (1..1000; each panel has a default)
    DIMENSION=VALUE  a filter, one per dimension: team=search, metadata.customer_id=acme

Every bad value is a 400 naming its parameter (`InvalidRequest.param`); an unknown
parameter is refused rather than ignored, so a typo never widens an answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sluicegate.analytics.dimensions import (
    DIMENSIONS,
    METADATA_PREFIX,
    AnyDimension,
    MetadataDimension,
    dimension,
)
from sluicegate.analytics.window import Window, window_from
from sluicegate.errors import InvalidRequest

MAX_GROUP_BY = 4
MAX_LIMIT = 1000
MAX_FILTERS = 16
MAX_VALUE = 256  # a filter value (envelope values are at most 128, metadata values 256)
WINDOW_PARAMS = ("since", "until")
QUERY_PARAMS = (*WINDOW_PARAMS, "group_by", "limit")


@dataclass(frozen=True, slots=True)
class Filter:
    dimension: AnyDimension
    value: str


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    panel: str
    window: Window
    group_by: tuple[AnyDimension, ...]
    filters: tuple[Filter, ...]
    limit: int

    def dimensions(self) -> list[AnyDimension]:
        """Every dimension the query reads (grouped or filtered)."""
        return [*self.group_by, *(f.dimension for f in self.filters)]

    def metadata_keys(self) -> set[str]:
        return {d.key for d in self.dimensions() if isinstance(d, MetadataDimension)}

    def filter_on(self, name: str) -> str | None:
        return next((f.value for f in self.filters if f.dimension.name == name), None)


def parse_query(
    params: Iterable[tuple[str, str]],
    *,
    panel: str,
    default_group_by: str,
    default_limit: int,
    now: float,
) -> AnalyticsQuery:
    """The query a panel request asks; `params` are its query parameters in order."""
    given: dict[str, str] = {}
    for name, value in params:
        if name in given:
            raise InvalidRequest(f"{name}: give it once (one value per parameter)", param=name)
        given[name] = value
        if len(given) > len(QUERY_PARAMS) + MAX_FILTERS:
            raise InvalidRequest(f"at most {MAX_FILTERS} filters", param=name)
    window = window_from(given.get("since") or None, given.get("until") or None, now)
    group_by = _group_by(given.get("group_by") or default_group_by, panel)
    limit = _limit(given.get("limit"), default_limit)
    filters = tuple(
        _filter(name, value, panel) for name, value in given.items() if name not in QUERY_PARAMS
    )
    return AnalyticsQuery(panel, window, group_by, filters, limit)


def _group_by(text: str, panel: str) -> tuple[AnyDimension, ...]:
    names = [part.strip() for part in text.split(",")]
    if any(not name for name in names):
        raise InvalidRequest(
            f"group_by: {text!r} has an empty name; give dimensions separated by commas",
            param="group_by",
        )
    if len(names) > MAX_GROUP_BY:
        raise InvalidRequest(
            f"group_by: at most {MAX_GROUP_BY} dimensions (got {len(names)})", param="group_by"
        )
    if len(set(names)) != len(names):
        raise InvalidRequest(f"group_by: {text!r} names a dimension twice", param="group_by")
    return tuple(dimension(name, "group_by", panel) for name in names)


def _limit(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit: {text!r} is not a whole number from 1 to {MAX_LIMIT}", param="limit"
        )
    return int(text)


def _filter(name: str, value: str, panel: str) -> Filter:
    if not name.startswith(METADATA_PREFIX) and name not in DIMENSIONS:
        raise InvalidRequest(
            f"unknown parameter {name[:64]!r}: use {', '.join(QUERY_PARAMS)}, or a filter "
            f"on a dimension ({', '.join(DIMENSIONS)}, metadata.KEY)",
            param=name[:64],
        )
    found = dimension(name, name, panel)
    if not value or len(value) > MAX_VALUE:
        raise InvalidRequest(
            f"{name}: a filter value is 1 to {MAX_VALUE} characters (got {len(value)})", param=name
        )
    return Filter(found, value)
