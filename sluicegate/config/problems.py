"""What is wrong with a config, in the user's terms.

Every problem names the document (its `name`, or `#N` when it has none), its type, the
path to the bad field as the user wrote it (`rules[2].limit.window`) and a message. Pydantic
errors are translated here: `loc` tuples become paths (union member labels dropped), a
validator's own ValueError message is used as is, `extra_forbidden` becomes
`unknown field 'x'` and `missing` becomes `field required`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from sluicegate.errors import ConfigError

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Problem:
    document: str  # the document's name, `#N` (1-based), or the source for syntax errors
    type: str | None
    path: str  # "" when the problem is the whole document
    message: str

    def format(self) -> str:
        head = self.document if self.type is None else f"{self.document} ({self.type})"
        return f"{head}: {self.path}: {self.message}" if self.path else f"{head}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


class ConfigValidationError(ConfigError):
    """One or more documents are invalid. `problems` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]):
        count = len(problems)
        lines = "".join(f"\n  {problem.format()}" for problem in problems)
        super().__init__(
            f"invalid config ({count} problem{'' if count == 1 else 's'}):{lines}",
            param=problems[0].path or None if problems else None,
        )
        self.problem_list: tuple[Problem, ...] = tuple(problems)

    @property
    def problems(self) -> list[dict[str, str | None]]:
        return [problem.to_dict() for problem in self.problem_list]

    @property
    def details(self) -> list[dict[str, str | None]]:
        return self.problems


class ConfigNotFound(ConfigError):
    """A version or document that does not exist was named."""

    status = 404
    error_type = "not_found_error"
    code = "config_not_found"


class ConfigConflict(ConfigError):
    """Another replica kept changing the config while this change was being written, and
    the change could not be rebased onto it within the service's retries. Nothing was
    applied; sending the same change again is safe."""

    status = 409
    error_type = "conflict_error"
    code = "config_conflict"


class ConfigStale(ConfigError):
    """A change reviewed against one state of its documents, applied when one of them has
    since changed: refused rather than written over a change its author has not seen."""

    status = 409
    error_type = "conflict_error"
    code = "config_stale"


class VersionConflict(ConfigConflict):
    """The version number a change meant to write already exists: another writer appended
    it after this change read the latest version. Raised by the version store; the config
    service catches it, re-reads the latest version and rebases the change onto it."""

    def __init__(self, version: int):
        super().__init__(
            f"config version {version} already exists; config changed concurrently; retry",
            param="version",
        )
        self.version = version


def problems_from_validation(
    exc: ValidationError, raw: Mapping[str, Any], *, document: str, type_name: str
) -> list[Problem]:
    """One Problem per pydantic error, in pydantic's order. The errors of each member of
    a union at the same path are merged into one `a or b` message."""
    merged: dict[str, list[str]] = {}  # union path -> member messages
    order: list[tuple[str, str]] = []  # (path, message), or (path, "") for a union path
    inputs: dict[str, object] = {}
    for error in exc.errors(include_url=False):
        path, message, in_union = translate_error(error, raw)
        if in_union:
            if path not in merged:
                merged[path] = []
                order.append((path, ""))
                inputs[path] = error.get("input")
            if message not in merged[path]:
                merged[path].append(message)
        elif (path, message) not in order:
            order.append((path, message))
    return [
        Problem(
            document,
            type_name,
            path,
            message or _with_input(" or ".join(merged[path]), inputs[path]),
        )
        for path, message in order
    ]


def translate_error(error: Mapping[str, Any], raw: object) -> tuple[str, str, bool]:
    """A pydantic error dict -> (path as the user wrote it, message, whether the error is
    one member's of a union, whose message still lacks the `got ...` suffix)."""
    kind = error["type"]
    loc = tuple(error.get("loc", ()))
    if kind == "extra_forbidden" and loc:
        path, _ = render_path(loc[:-1], raw, keep_last=False)
        return path, f"unknown field {loc[-1]!r}", False
    path, dropped = render_path(loc, raw, keep_last=kind == "missing")
    if kind == "missing":
        return path, "field required", False
    if kind in ("value_error", "assertion_error"):
        cause = (error.get("ctx") or {}).get("error")
        if cause is not None and str(cause):
            return path, str(cause), False
    message = _soften(str(error["msg"]))
    if dropped:
        return path, message, True
    return path, _with_input(message, error.get("input")), False


def render_path(loc: Sequence[str | int], raw: object, *, keep_last: bool) -> tuple[str, bool]:
    """`("rules", 2, "limit", "window")` -> `rules[2].limit.window`, and whether labels
    were dropped.

    The loc is walked against the input: an element that is not a key or index of the
    data at that point is a label pydantic adds (a union member, a validator), and is
    dropped; `keep_last` keeps a final key that is absent because it is missing."""
    parts: list[str | int] = []
    current: object = raw
    dropped = False
    for position, item in enumerate(loc):
        if isinstance(current, Mapping) and item in current:  # noqa: SIM114 (narrows apart)
            parts.append(item)
            current = current[item]
        elif isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current):
            parts.append(item)
            current = current[item]
        elif item == "[key]":
            parts.append("(key)")
        elif keep_last and position == len(loc) - 1 and isinstance(current, Mapping):
            parts.append(item)
        else:
            dropped = True
    return _join(parts), dropped


def _join(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "(key)":
            text += " (key)"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def _soften(message: str) -> str:
    """Pydantic's `Input should be ...` reads better in a list as `input should be ...`."""
    if len(message) > 1 and message[0].isupper() and message[1].islower():
        return message[0].lower() + message[1:]
    return message


def _with_input(message: str, value: object) -> str:
    if isinstance(value, Mapping):
        return f"{message}, got a mapping"
    if isinstance(value, list):
        return f"{message}, got a list"
    if isinstance(value, _SCALARS):
        shown = repr(value)
        return f"{message}, got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return message
