"""What analytics may group and filter by: one table, dimension -> where it lives.

Each dimension names its column in each rollup table that has it (`usage`, `users`,
`metadata`: the `rollup_*` tables) and its expression over raw `requests` rows, built so
that a raw answer equals a rollup answer (project UNTAGGED when missing, "" for no value,
the status class from the status code). `metadata.KEY` is any custom metadata key: the
`rollup_metadata` rows of KEY when the analytics config rolls it up, else raw rows.

`panels` says which panels may use a dimension (None: every panel). Dimensions about
people (`user_id`) are opt-in per panel, and further limited by the caller's role
(`analytics/scope.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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


def _text(column: ColumnElement[str]) -> RawExpression:
    return lambda: func.coalesce(column, literal(NO_VALUE))


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
        Dimension("team", "the team", dict.fromkeys(_ALL, "team"), _text(R.team)),
        Dimension(
            "project",
            "the project (UNTAGGED when the request named none)",
            dict.fromkeys(_ALL, "project"),
            _project,
        ),
        Dimension(
            "workflow_tag",
            "the workflow tag",
            dict.fromkeys(_ALL, "workflow_tag"),
            _text(R.workflow_tag),
        ),
        Dimension(
            "environment",
            "the environment",
            dict.fromkeys(_USAGE, "environment"),
            _text(R.environment),
        ),
        Dimension(
            "cost_center",
            "the cost centre",
            dict.fromkeys(_USAGE, "cost_center"),
            _text(R.cost_center),
        ),
        Dimension(
            "client_tool",
            "the client program (Cursor, Claude Code, an SDK...)",
            dict.fromkeys(("usage", "users"), "client_tool"),
            _text(R.client_tool),
        ),
        Dimension(
            "client_api",
            "the API the client spoke",
            dict.fromkeys(_USAGE, "client_api"),
            _text(R.client_api),
        ),
        Dimension(
            "requested_model",
            "the model name the client asked for (a virtual model, an alias...)",
            dict.fromkeys(_USAGE, "requested_model"),
            _text(R.requested_model),
        ),
        Dimension(
            "model",
            "the model sent upstream (none when no provider was called)",
            dict.fromkeys(("usage", "metadata"), "model"),
            _text(R.model),
        ),
        Dimension(
            "provider", "the provider account", dict.fromkeys(_USAGE, "provider"), _text(R.provider)
        ),
        Dimension(
            "status_class",
            "2xx..5xx, or none when nothing answered",
            dict.fromkeys(_USAGE, "status_class"),
            _status_class,
        ),
        Dimension(
            "error_type",
            "the error's type",
            dict.fromkeys(_USAGE, "error_type"),
            _text(R.error_type),
        ),
        Dimension(
            "user_id",
            "the user (admins, and a member for itself, only)",
            {"users": "user_id"},
            _text(R.user_id),
            people=True,
            panels=frozenset({"latency", "tags"}),
        ),
    )
}


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
