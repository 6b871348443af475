"""What analytics may group and filter by: one table, dimension -> where it lives.

Each dimension names its column in each rollup table that has it (`usage`, `users`,
`tool_users`, `metadata`: the `rollup_*` tables) and its expression over raw `requests`
rows, built so that a raw answer equals a rollup answer (project UNTAGGED when missing,
"" for no value, the status class from the status code). `metadata.KEY` is any custom
metadata key: the `rollup_metadata` rows of KEY when the analytics config rolls it up,
else raw rows.

`panels` says which panels may use a dimension (None: every panel). Dimensions about
people (`user_id`) are opt-in per panel, and further limited by the caller's role
(`analytics/scope.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, case, cast, func, literal, or_

from sluicegate.db.schema import requests
from sluicegate.errors import InvalidRequest
from sluicegate.model.identity import UNTAGGED

METADATA_PREFIX = "metadata."
# A metadata key analytics can read: what the analytics config accepts as a rollup key
# (it is also bound into a JSON path, so no quotes or spaces).
METADATA_KEY = re.compile(r"^[\w.:@/+=#~\-]{1,128}$", re.ASCII)
NO_VALUE = ""  # how rollups store a dimension with no value

R = requests.c
RawExpression = Callable[[], ColumnElement[str]]


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    description: str
    columns: Mapping[str, str]  # rollup source name -> column in that table
    raw: RawExpression  # the same value over `requests` rows
    people: bool = False  # figures grouped or filtered by it are about individuals
    panels: frozenset[str] | None = None  # None: every panel may use it
    # The `requests` column that holds a value as it is (None: derived), and the value
    # shown for rows without one: a filter on any other value reads that column alone,
    # so the ledger's indexes (team, project, user) serve a raw read.
    stored: ColumnElement[str] | None = None
    missing: str = NO_VALUE


def _text(column: ColumnElement[str]) -> RawExpression:
    return lambda: func.coalesce(column, literal(NO_VALUE))


def _plain(
    name: str, description: str, sources: tuple[str, ...], column: ColumnElement[str]
) -> Dimension:
    """A dimension that is a `requests` column as it is ("" when null)."""
    return Dimension(name, description, dict.fromkeys(sources, name), _text(column), stored=column)


def _project() -> ColumnElement[str]:
    return case((or_(R.project.is_(None), R.project == ""), literal(UNTAGGED)), else_=R.project)


def _status_class() -> ColumnElement[str]:
    """`rollups.status_class` in SQL: "2xx".."5xx", "none" when nothing answered."""
    classes = [
        (R.status_code.between(n * 100, n * 100 + 99), literal(f"{n}xx")) for n in range(1, 6)
    ]
    return cast(case(*classes, else_=literal("none")), String())


_ALL = ("usage", "users", "metadata")
_USAGE = ("usage",)

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        _plain("team", "the team", (*_ALL, "tool_users"), R.team),
        Dimension(
            "project",
            "the project (UNTAGGED when the request named none)",
            dict.fromkeys(_ALL, "project"),
            _project,
            stored=R.project,
            missing=UNTAGGED,
        ),
        _plain("workflow_tag", "the workflow tag", _ALL, R.workflow_tag),
        _plain("environment", "the environment", _USAGE, R.environment),
        _plain("cost_center", "the cost centre", _USAGE, R.cost_center),
        _plain(
            "client_tool",
            "the client program (Cursor, Claude Code, an SDK...)",
            ("usage", "users", "tool_users"),
            R.client_tool,
        ),
        _plain("client_api", "the API the client spoke", _USAGE, R.client_api),
        _plain(
            "requested_model",
            "the model name the client asked for (a virtual model, an alias...)",
            _USAGE,
            R.requested_model,
        ),
        _plain(
            "model",
            "the model sent upstream (none when no provider was called)",
            ("usage", "metadata"),
            R.model,
        ),
        _plain("provider", "the provider account", _USAGE, R.provider),
        Dimension(
            "status_class",
            "2xx..5xx, or none when nothing answered",
            dict.fromkeys(_USAGE, "status_class"),
            _status_class,
        ),
        _plain("error_type", "the error's type", _USAGE, R.error_type),
        Dimension(
            "user_id",
            "the user (admins, and a member for itself, only)",
            {"users": "user_id", "tool_users": "user_id"},
            _text(R.user_id),
            people=True,
            panels=frozenset({"latency", "tags"}),
            stored=R.user_id,
        ),
    )
}


def raw_match(dim: AnyDimension, values: Sequence[str]) -> ColumnElement[bool]:
    """Raw rows whose `dim` is one of `values`: on the stored column itself when no value
    stands for "missing" (an index on it serves the read), else on the derived value."""
    if isinstance(dim, Dimension) and dim.stored is not None and dim.missing not in values:
        return dim.stored.in_(list(values))
    return dim.raw().in_(list(values))


@dataclass(frozen=True, slots=True)
class MetadataDimension:
    """`metadata.KEY`: read from `rollup_metadata` (meta_key = KEY) or raw rows."""

    key: str

    @property
    def name(self) -> str:
        return METADATA_PREFIX + self.key

    def raw(self) -> ColumnElement[str]:
        return func.coalesce(R.metadata[self.key].as_string(), literal(NO_VALUE))


AnyDimension = Dimension | MetadataDimension


def dimension(name: str, param: str, panel: str) -> AnyDimension:
    """The dimension called `name` (a 400 naming `param` when there is none, or when
    `panel` may not use it)."""
    if name.startswith(METADATA_PREFIX):
        key = name[len(METADATA_PREFIX) :]
        if not METADATA_KEY.match(key):
            raise InvalidRequest(
                f"{param}: {name!r} is not a metadata key analytics can read (1-128 letters, "
                "digits and . : @ / + = # ~ - _)",
                param=param,
            )
        return MetadataDimension(key)
    found = DIMENSIONS.get(name)
    if found is None:
        known = ", ".join(DIMENSIONS)
        raise InvalidRequest(
            f"{param}: unknown dimension {name!r}; use one of {known}, or metadata.KEY",
            param=param,
        )
    if found.panels is not None and panel not in found.panels:
        raise InvalidRequest(f"{param}: the {panel} panel does not use {name}", param=param)
    return found
