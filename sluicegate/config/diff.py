"""Canonical rendering of documents and per-document unified diffs between two sets.

The canonical form of a document is its raw dict (as validated and stored) with `type`
and `name` first and every mapping's keys sorted (`id` and `name` first in nested
mappings), rendered as block YAML, so that diffs do not depend on key order (PostgreSQL's
JSONB does not keep it). Two sets are
equal when they hold the same documents by (type, name) with equal raw dicts; the order
of documents and of keys does not matter.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from sluicegate.types import JSONObject

DocumentKey = tuple[str, str]  # (type, name)
Action = Literal["created", "changed", "deleted"]
NO_CHANGES = "no changes\n"


@dataclass(frozen=True)
class Change:
    type: str
    name: str
    action: Action
    diff: str


def canonical(raw: Mapping[str, Any]) -> JSONObject:
    head = {key: raw[key] for key in ("type", "name") if key in raw}
    rest = {key: _sorted(raw[key]) for key in sorted(raw, key=str) if key not in head}
    return {**head, **rest}


def render(raw: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        canonical(raw), sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def render_all(raws: Sequence[Mapping[str, Any]]) -> str:
    """A whole set as multi-document YAML (what `sluicegate config show` prints)."""
    return yaml.safe_dump_all(
        [canonical(raw) for raw in raws],
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        explicit_start=True,
    )


def keyed(raws: Sequence[Mapping[str, Any]]) -> dict[DocumentKey, JSONObject]:
    return {(str(raw["type"]), str(raw["name"])): dict(raw) for raw in raws}


def diff_sets(
    before: Mapping[DocumentKey, JSONObject],
    after: Mapping[DocumentKey, JSONObject],
    *,
    before_label: str = "live",
    after_label: str = "proposed",
) -> list[Change]:
    """One Change per document created, changed or deleted, sorted by (type, name)."""
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        action: Action = "created" if old is None else "deleted" if new is None else "changed"
        path = f"{key[0]}/{key[1]}"
        lines = difflib.unified_diff(
            render(old).splitlines(keepends=True) if old is not None else [],
            render(new).splitlines(keepends=True) if new is not None else [],
            fromfile=f"{path} ({before_label})" if old is not None else "/dev/null",
            tofile=f"{path} ({after_label})" if new is not None else "/dev/null",
        )
        changes.append(Change(key[0], key[1], action, "".join(lines)))
    return changes


def join_diffs(changes: Sequence[Change]) -> str:
    return "".join(change.diff for change in changes) or NO_CHANGES


_FIRST = {"id": 0, "name": 1}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        order = sorted(value, key=lambda key: (_FIRST.get(key, 2), str(key)))
        return {key: _sorted(value[key]) for key in order}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
