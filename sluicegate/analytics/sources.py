"""Which table answers a query: the first rollup that holds every dimension and figure it
needs, else raw `requests` rows over a bounded window.

    rollup_cuboids    each cuboid (analytics/cuboids.py: a few usage dimensions, every
                      usage figure), smallest first: `status`, `model`, `tool`,
                      `control`, `spend`
    rollup_usage      every dimension but user_id and metadata; every figure
    rollup_tool_users user_id, team, client_tool; rollup_users' figures (adoption's
                      distinct users, known users)
    rollup_users      user_id, team, project, workflow_tag, client_tool; requests, errors,
                      input/output tokens, cost
    rollup_metadata   one metadata key (named in the analytics config's
                      `rollup_metadata_keys`) with team, project, workflow_tag, model;
                      requests, errors, tokens, cost
    requests          anything else, over at most `raw_query_max_days` (else a 400 that
                      says what to change)

`rollup_metadata` holds only requests that carry the key, so it answers a filter on the
key, or a grouping by it when the panel derives the "(no value)" part from another
table (`derives_no_value`, with the key first in group_by).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.cuboids import CUBOIDS, Cuboid
from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension, Dimension, MetadataDimension
from sluicegate.analytics.measures import raw_has
from sluicegate.analytics.window import DAY, Grain, Window, iso
from sluicegate.db.schema import (
    requests,
    rollup_cuboids,
    rollup_metadata,
    rollup_tool_users,
    rollup_usage,
    rollup_users,
)
from sluicegate.errors import InvalidRequest

ANALYTICS_DOCUMENT = "gateway-analytics-config"


@dataclass(frozen=True, slots=True)
class Source:
    key: str  # "usage", "users", "tool_users", "metadata" (Dimension.columns keys), or "raw"
    table: Table
    meta_key: str | None = None  # rollup_metadata: the key whose rows are read
    # The dimension whose requests alone this table holds (users: those with a user;
    # metadata: those carrying its key), None when it holds every request.
    partial_on: str | None = None
    cuboid: Cuboid | None = None  # rollup_cuboids: the cuboid whose rows are read
    # The coarsest grain its rows are kept in: week rows pay where a small key space
    # repeats day after day (cuboids, tool users); rollup_usage's twelve dimensions
    # repeat little, and the writer would add as many rows again.
    coarsest: Grain = "day"

    @property
    def raw(self) -> bool:
        return self.key == "raw"

    @property
    def name(self) -> str:
        """The table (a plain str: SQLAlchemy gives a quoted_name), and the cuboid."""
        table = str(self.table.name)
        return table if self.cuboid is None else f"{table}:{self.cuboid.name}"

    @property
    def columns_key(self) -> str:
        """Which of a Dimension's `columns` names its column here (a cuboid's are
        rollup_usage's)."""
        return USAGE_SOURCE.key if self.cuboid is not None else self.key


@dataclass(frozen=True, slots=True)
class Choice:
    source: Source
    notes: list[str] = field(default_factory=list)


RAW = Source("raw", requests)
USAGE_SOURCE = Source("usage", rollup_usage)
CUBOID_SOURCES = tuple(Source("cuboid", rollup_cuboids, cuboid=c, coarsest="week") for c in CUBOIDS)
TOOL_USERS_SOURCE = Source("tool_users", rollup_tool_users, partial_on="user_id", coarsest="week")
USERS_SOURCE = Source("users", rollup_users, partial_on="user_id")
# Tried in this order: the smallest rollup that holds a query's dimensions answers it.
PLAIN_SOURCES = (*CUBOID_SOURCES, USAGE_SOURCE, TOOL_USERS_SOURCE, USERS_SOURCE)


def people_source() -> Source:
    """The smallest rollup of who made requests in which team (known_users.py reads it):
    the first in the order above that has user_id and team."""
    team, user = DIMENSIONS["team"], DIMENSIONS["user_id"]
    return next(s for s in PLAIN_SOURCES if s.partial_on == user.name and fits(s, (team, user), ()))


def fits(source: Source, dims: Iterable[AnyDimension], measures: Iterable[str]) -> bool:
    """Whether `source` has every dimension and measure."""
    if source.raw:
        return all(raw_has(m) for m in measures)
    columns = source.table.c
    return all(_holds(source, dim) for dim in dims) and all(m in columns for m in measures)


def _holds(source: Source, dim: AnyDimension) -> bool:
    if isinstance(dim, MetadataDimension):
        return dim.key == source.meta_key
    if source.cuboid is not None and dim.name not in source.cuboid.dimensions:
        return False
    return source.columns_key in dim.columns


def placed(
    source: Source,
    group: Sequence[AnyDimension],
    filtered: Sequence[AnyDimension],
    derives_no_value: bool,
) -> bool:
    """A table that holds only the requests with a value for its dimension answers when
    that dimension is filtered on (no other request could match), or grouped by first in
    a panel that derives the "(no value)" part from another table; never otherwise, or
    requests without a value would silently drop out."""
    if source.partial_on is None or any(d.name == source.partial_on for d in filtered):
        return True
    positions = [i for i, d in enumerate(group) if d.name == source.partial_on]
    return positions == [0] and derives_no_value


def choose(
    group: Sequence[AnyDimension],
    filtered: Sequence[AnyDimension],
    measures: Sequence[str],
    *,
    window: Window,
    settings: AnalyticsSettings,
    derives_no_value: bool = False,
    rolled_up_since: Mapping[str, float] | None = None,
) -> Choice:
    """The source for a query grouping by `group` and filtering (or restricted) on
    `filtered`; InvalidRequest when only raw rows could answer and the window is too long."""
    dims = [*group, *filtered]
    keys = sorted({d.key for d in dims if isinstance(d, MetadataDimension)})
    if not keys:
        grouped_apart = any(
            USAGE_SOURCE.key not in d.columns for d in group if isinstance(d, Dimension)
        )
        why, param = _unheld(dims), "group_by" if grouped_apart else "since"
        for source in PLAIN_SOURCES:
            if not fits(source, dims, measures):
                continue
            if placed(source, group, filtered, derives_no_value):
                return Choice(source)
            why = f"{source.partial_on} must come first in group_by to be read from rollups"
    elif len(keys) > 1:
        names = " and ".join(f"metadata.{k}" for k in keys)
        why, param = f"{names} are never rolled up together", "group_by"
    else:
        key = keys[0]
        name = f"metadata.{key}"
        meta = Source("metadata", rollup_metadata, meta_key=key, partial_on=name)
        param = "group_by" if any(d.name == name for d in group) else name
        if key not in settings.rollup_metadata_keys:
            why = (
                f"{name} is not rolled up (add it to rollup_metadata_keys in the "
                f"{ANALYTICS_DOCUMENT} document)"
            )
        elif not placed(meta, group, filtered, derives_no_value):
            why = f"{name} must come first in group_by to be read from its rollup"
        elif not fits(meta, dims, measures):
            why = (
                f"{name} is rolled up with team, project, workflow_tag and model only, and "
                "not with every figure this panel shows"
            )
        else:
            return _covered(meta, key, window, settings, rolled_up_since)
    if _raw_allowed(window, settings) and fits(RAW, dims, measures):
        return Choice(RAW, [f"read from raw requests because {why}"])
    raise InvalidRequest(
        f"{param}: {why}, so it is read from raw requests, which reach at most "
        f"{settings.raw_query_max_days} days back (raw_query_max_days in the "
        f"{ANALYTICS_DOCUMENT} document); this window is {_asked_days(window):.1f} days: "
        "narrow since/until, or change the grouping",
        param=param,
    )


def _covered(
    meta: Source,
    key: str,
    window: Window,
    settings: AnalyticsSettings,
    rolled_up_since: Mapping[str, float] | None,
) -> Choice:
    """The metadata rollup, unless it began after the window did: then raw rows when they
    may be read, else the rollup with a note saying what it misses. `rolled_up_since`:
    since when each key's rows are complete (a key absent has none yet); None when that
    is not known, and rollups are taken as complete."""
    if rolled_up_since is None:
        return Choice(meta)
    since = rolled_up_since.get(key)
    if since is not None and since <= window.since:
        return Choice(meta)
    began = f"is rolled up since {iso(since)}" if since is not None else "has no rollup rows yet"
    if _raw_allowed(window, settings):
        return Choice(RAW, [f"metadata.{key} {began}: read from raw requests"])
    return Choice(meta, [f"metadata.{key} {began}: requests before then are counted without it"])


def _raw_allowed(window: Window, settings: AnalyticsSettings) -> bool:
    """The window as asked (snapping it outward to whole hours adds at most two, which
    is no reason to refuse the default window of 7 days with a 7-day reach)."""
    return _asked_days(window) <= settings.raw_query_max_days


def _asked_days(window: Window) -> float:
    return (window.requested_until - window.requested_since) / DAY


def _unheld(dims: Sequence[AnyDimension]) -> str:
    names = ", ".join(dict.fromkeys(d.name for d in dims)) or "no dimension"
    return f"no rollup holds {names} with every figure this panel shows"
