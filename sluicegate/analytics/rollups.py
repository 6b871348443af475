"""What a batch of ledger records adds to the rollup tables (a pure function).

    records --rollup_deltas--> RollupDeltas --upsert (rollup_sql.py)--> rollup_* tables

Each record adds to one `rollup_usage` row per grain (hour, day), one row per grain
(hour, day, week) and cuboid in `rollup_cuboids` (analytics/cuboids.py: rollup_usage
over fewer dimensions), one `rollup_users` row per grain when it names a user and one
`rollup_tool_users` row per grain (hour, day, week: rollup_users over user, team and
client tool), one `rollup_metadata` row per grain and analytics metadata key it carries,
and one `rollup_sessions` row when it names a session. Deltas of
rows with the same key are summed here, so a batch upserts each row once. Applying the
deltas of the same records twice counts them twice: the store applies the deltas of the
records it actually inserted (a replayed batch's duplicates add nothing).

Derived values, defined once here and in the docs (docs/analytics.md):
- `status_class`: "2xx".."5xx" from the status code, "none" when nothing answered (0).
- `errors`: requests whose status is not 2xx or 3xx.
- `unpriced`: requests with tokens and no cost (a model with no price).
- `rate_limit_hits` / `budget_hits`: requests a rate-limit rule / budget acted on (any
  action); `guardrail_blocks`: requests a guardrail blocked.
- `retry_tokens` (sessions): input tokens re-sent by extra attempts (input x (attempts-1))
  plus all tokens of requests that ended in an error.
- `wasted_input_tokens` (sessions): input tokens of requests whose answer nobody used:
  an error, or a client that left before the end.
- a session's identity columns (user, team, project, workflow, tool) are the first
  non-empty value in ledger order, (ts, request_id); UNTAGGED counts as empty.

This runs on the ledger writer's batches, so it is written for speed (measured: ~2-19 us a
record depending on how varied the traffic is, against ~55 us for a per-record,
per-column loop): records are grouped by their
row key first and each measure is summed over a group with one C-level pass, hour rows
are computed from records, cuboid hour rows from usage hour rows (tool-user hour rows from
user hour rows), day rows from hour rows and (cuboids, tool users) week rows from day rows.
"""

from __future__ import annotations

import functools
import hashlib
from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from sluicegate.analytics.cuboids import CUBOIDS
from sluicegate.analytics.histogram import BOUNDS_MS, BUCKETS
from sluicegate.analytics.window import week_start
from sluicegate.db.schema import (
    CUBOID_DIMENSIONS,
    FLOAT_MEASURES,
    METADATA_DIMENSIONS,
    METADATA_MEASURES,
    SESSION_IDENTITY,
    SESSION_MEASURES,
    TOOL_USER_DIMENSIONS,
    USAGE_DIMENSIONS,
    USAGE_MEASURES,
    USER_DIMENSIONS,
    USER_MEASURES,
    rollup_cuboids,
    rollup_metadata,
    rollup_sessions,
    rollup_tool_users,
    rollup_usage,
    rollup_users,
)
from sluicegate.model.identity import UNTAGGED
from sluicegate.model.record import LedgerRecord

GRAINS: dict[str, int] = {"hour": 3600, "day": 86400}  # also kept: "week" (window.week_start)
NONE = ""  # a dimension with no value
DIGEST_CHARS = 33  # ':' and the 32 hex characters that end every bucketed row id
DIGEST_CACHE = 8192  # dimension tuples whose digest is remembered
Values = tuple[Any, ...]
Group = list[LedgerRecord]

_STATUS_CLASSES = tuple("none" if code < 100 else f"{code // 100}xx" for code in range(600))


def status_class(code: int) -> str:
    return _STATUS_CLASSES[code] if 0 <= code < 600 else "none"


def is_error(code: int) -> bool:
    return not 200 <= code < 400


def bucket_start(ts: float, grain: str) -> float:
    if grain == "week":
        return week_start(ts)
    width = GRAINS[grain]
    return float(int(ts // width) * width)


def row_id(grain: str, bucket: float, dimensions: tuple[str, ...]) -> str:
    """A rollup row's key: grain, bucket and a digest of its dimensions (a separator no
    dimension value can hold keeps ("a b", "") and ("a", "b ") apart). The digest is the
    id's last DIGEST_CHARS - 1 characters, after a ':'."""
    return f"{grain[0]}{int(bucket)}:{_digest(dimensions)}"


@functools.lru_cache(maxsize=DIGEST_CACHE)
def _digest(dimensions: tuple[str, ...]) -> str:
    """Cached: the same dimensions come back batch after batch, hour and day alike."""
    return hashlib.blake2b("\x1f".join(dimensions).encode(), digest_size=16).hexdigest()


@dataclass
class RollupDeltas:
    """Rows to add, per table, keyed by row id (sessions by session id). A row is a tuple
    of its table's columns in the table's order (`COLUMNS`): the upserts take them as they
    are, with no dict per row."""

    usage: dict[str, Values] = field(default_factory=dict)
    cuboids: dict[str, Values] = field(default_factory=dict)
    users: dict[str, Values] = field(default_factory=dict)
    tool_users: dict[str, Values] = field(default_factory=dict)
    metadata: dict[str, Values] = field(default_factory=dict)
    sessions: dict[str, Values] = field(default_factory=dict)

    def tables(self) -> tuple[tuple[Table, dict[str, Values]], ...]:
        """(table, rows) in the order rows are upserted (the same on every path)."""
        return (
            (rollup_usage, self.usage),
            (rollup_cuboids, self.cuboids),
            (rollup_users, self.users),
            (rollup_tool_users, self.tool_users),
            (rollup_metadata, self.metadata),
            (rollup_sessions, self.sessions),
        )

    def __bool__(self) -> bool:
        return any(rows for _, rows in self.tables())

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.tables())


def rollup_deltas(
    records: Iterable[LedgerRecord], metadata_keys: Collection[str] = ()
) -> RollupDeltas:
    """Everything `records` add: the bucketed tables and the sessions."""
    records = list(records)
    deltas = bucket_deltas(records, metadata_keys)
    deltas.sessions = session_deltas(records)
    return deltas


def bucket_deltas(
    records: Sequence[LedgerRecord], metadata_keys: Collection[str] = (), *, days: bool = True
) -> RollupDeltas:
    """What `records` add to the hour and day rows of usage, cuboids, users, tool users and
    metadata, and the week rows of cuboids and tool users (hour rows only without `days`:
    the rebuild derives the coarser rows)."""
    usage: dict[tuple[Any, ...], Group] = {}
    users: dict[tuple[Any, ...], Group] = {}
    metadata: dict[tuple[Any, ...], Group] = {}
    classes = _STATUS_CLASSES
    for r in records:
        hour = (r.ts // 3600) * 3600
        team, project, workflow, tool = (
            r.team or NONE,
            r.project or UNTAGGED,
            r.workflow_tag or NONE,
            r.client_tool or NONE,
        )
        code = r.status_code
        key = (
            hour,
            team,
            project,
            workflow,
            r.environment or NONE,
            r.cost_center or NONE,
            tool,
            r.client_api or NONE,
            r.requested_model or NONE,
            r.model or NONE,
            r.provider or NONE,
            classes[code] if 0 <= code < 600 else "none",
            r.error_type or NONE,
        )
        group = usage.get(key)
        if group is None:
            usage[key] = [r]
        else:
            group.append(r)
        if r.user_id:
            _append(users, (hour, r.user_id, team, project, workflow, tool), r)
        if metadata_keys and r.metadata:
            model = r.model or NONE  # the served model, as in rollup_usage
            for meta_key in metadata_keys:
                value = r.metadata.get(meta_key)
                if value is not None:
                    _append(metadata, (hour, meta_key, value, team, project, workflow, model), r)
    deltas = RollupDeltas()
    usage_hours = {key: _usage_measures(group) for key, group in usage.items()}
    _grain_rows(deltas.usage, usage_hours, days)
    _grain_rows(deltas.cuboids, _cuboid_hours(usage_hours), days, weeks=days)
    user_hours = {key: _user_measures(group) for key, group in users.items()}
    _grain_rows(deltas.users, user_hours, days)
    _grain_rows(deltas.tool_users, _tool_user_hours(user_hours), days, weeks=days)
    metadata_hours = {key: _metadata_measures(group) for key, group in metadata.items()}
    _grain_rows(deltas.metadata, metadata_hours, days)
    return deltas


def session_deltas(records: Sequence[LedgerRecord]) -> dict[str, Values]:
    """What `records` add to `rollup_sessions`, by session id."""
    groups: dict[str, Group] = {}
    for r in records:
        if r.session_id:
            _append(groups, r.session_id, r)
    return {session_id: _session_row(session_id, group) for session_id, group in groups.items()}


def _append(groups: dict[Any, Group], key: Any, record: LedgerRecord) -> None:
    group = groups.get(key)
    if group is None:
        groups[key] = [record]
    else:
        group.append(record)


# -- bucketed rows --------------------------------------------------------------------------
#
# Measures travel as lists in their table's column order (`*_COLUMNS`), so that summing
# hour rows into day rows and building the final row are plain zips.

USAGE_COLUMNS = (*USAGE_MEASURES, *FLOAT_MEASURES)
USER_COLUMNS = (*USER_MEASURES, "cost_usd")
METADATA_COLUMNS = (*METADATA_MEASURES, "cost_usd")
SESSION_COLUMNS = (
    "session_id",
    "first_ts",
    "last_ts",
    *SESSION_IDENTITY,
    *SESSION_MEASURES,
    "cost_usd",
)
_HISTOGRAM_ZEROS = [0] * (2 * BUCKETS)


def _check_column_order() -> None:
    """Rows are tuples in table order: the measure lists here must be that order."""
    for table, dimensions, measures in (
        (rollup_usage, USAGE_DIMENSIONS, USAGE_COLUMNS),
        (rollup_cuboids, CUBOID_DIMENSIONS, USAGE_COLUMNS),
        (rollup_users, USER_DIMENSIONS, USER_COLUMNS),
        (rollup_tool_users, TOOL_USER_DIMENSIONS, USER_COLUMNS),
        (rollup_metadata, METADATA_DIMENSIONS, METADATA_COLUMNS),
        (rollup_sessions, (), SESSION_COLUMNS),
    ):
        expected = (*(("id", "grain", "bucket") if dimensions else ()), *dimensions, *measures)
        if tuple(c.name for c in table.columns) != expected:
            raise RuntimeError(f"{table.name}: columns out of step with analytics/rollups.py")


_check_column_order()


def _cuboid_hours(
    usage_hours: dict[tuple[Any, ...], list[Any]],
) -> dict[tuple[Any, ...], list[Any]]:
    """Usage hour rows projected onto every cuboid (key: hour, then CUBOID_DIMENSIONS)."""
    hours: dict[tuple[Any, ...], list[Any]] = {}
    for cuboid in CUBOIDS:
        for key, values in usage_hours.items():
            projected = (key[0], *cuboid.project(key[1:]))
            found = hours.get(projected)
            hours[projected] = values if found is None else [a + b for a, b in zip(found, values)]
    return hours


def _tool_user_hours(
    user_hours: dict[tuple[Any, ...], list[Any]],
) -> dict[tuple[Any, ...], list[Any]]:
    """User hour rows (hour, user, team, project, workflow, tool) summed over project and
    workflow: (hour, user, team, tool), TOOL_USER_DIMENSIONS after the hour."""
    hours: dict[tuple[Any, ...], list[Any]] = {}
    for (hour, user, team, _, _, tool), values in user_hours.items():
        _sum_into(hours, (hour, user, team, tool), values)
    return hours


def _grain_rows(
    out: dict[str, Values],
    hours: dict[tuple[Any, ...], list[Any]],
    coarser: bool,
    *,
    weeks: bool = False,
) -> None:
    """One hour row per key (hour first, then the dimensions); with `coarser`, day rows
    summed from the hour rows of the same day and dimensions, and with `weeks` week rows
    from the day rows. Measure lists are shared, never changed in place: sums make new
    ones."""
    days: dict[tuple[Any, ...], list[Any]] = {}
    for key, values in hours.items():
        hour, dimensions = key[0], key[1:]
        _add_row(out, "hour", float(hour), dimensions, values)
        if coarser:
            _sum_into(days, ((hour // 86400) * 86400, *dimensions), values)
    week_sums: dict[tuple[Any, ...], list[Any]] = {}
    for key, values in days.items():
        _add_row(out, "day", float(key[0]), key[1:], values)
        if weeks:
            _sum_into(week_sums, (week_start(key[0]), *key[1:]), values)
    for key, values in week_sums.items():
        _add_row(out, "week", key[0], key[1:], values)


def _add_row(
    out: dict[str, Values],
    grain: str,
    bucket: float,
    dimensions: tuple[Any, ...],
    values: list[Any],
) -> None:
    row = f"{grain[0]}{int(bucket)}:{_digest(dimensions)}"
    out[row] = (row, grain, bucket, *dimensions, *values)


def _sum_into(
    sums: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], values: list[Any]
) -> None:
    found = sums.get(key)
    sums[key] = values if found is None else [a + b for a, b in zip(found, values)]


def _sum(values: list[Any]) -> Any:
    return sum(filter(None, values))


def _tokens(group: Group) -> list[int]:
    return [
        _sum([r.input_tokens for r in group]),
        _sum([r.output_tokens for r in group]),
        _sum([r.cache_read_tokens for r in group]),
        _sum([r.cache_write_tokens for r in group]),
        _sum([r.reasoning_tokens for r in group]),
    ]


def _errors(group: Group) -> int:
    return sum([not 200 <= r.status_code < 400 for r in group])


def _cost(group: Group) -> float:
    return sum(filter(None, [r.cost_usd for r in group]), 0.0)


def _hits(group: Group, kind: str) -> int:
    return sum(1 for r in group if r.policy_events and any(e.kind == kind for e in r.policy_events))


def _blocked(group: Group) -> int:
    return sum(
        1
        for r in group
        if r.guardrail_events and any(e.get("action") == "block" for e in r.guardrail_events)
    )


def _has_tokens(r: LedgerRecord) -> bool:
    return bool(
        r.input_tokens
        or r.output_tokens
        or r.cache_read_tokens
        or r.cache_write_tokens
        or r.reasoning_tokens
    )


def _usage_measures(group: Group) -> list[Any]:
    """Every rollup_usage measure of one group, in USAGE_COLUMNS order (its records share
    the status class, so they are all errors or none is)."""
    if len(group) == 1:
        return _usage_of_one(group[0])
    latencies = [r.latency_ms for r in group if r.latency_ms is not None]
    ttfts = [r.ttft_ms for r in group if r.ttft_ms is not None]
    histogram = _HISTOGRAM_ZEROS.copy()
    for value in latencies:
        histogram[bisect_left(BOUNDS_MS, value)] += 1
    for value in ttfts:
        histogram[BUCKETS + bisect_left(BOUNDS_MS, value)] += 1
    return [
        len(group),
        0 if 200 <= group[0].status_code < 400 else len(group),
        *_tokens(group),
        sum(1 for r in group if r.cost_usd is None and _has_tokens(r)),
        sum(1 for r in group if r.usage_source == "estimated"),
        sum([r.stream for r in group]),
        sum([r.attempt_count for r in group]),
        sum([r.retry_used for r in group]),
        sum([r.fallback_used for r in group]),
        _hits(group, "rate_limit"),
        _hits(group, "budget"),
        sum([len(r.guardrail_events) for r in group]),
        _blocked(group),
        sum([r.session_killed for r in group]),
        sum([r.client_disconnected for r in group]),
        len(latencies),
        len(ttfts),
        *histogram,
        _cost(group),
        sum(latencies, 0.0),
        sum(ttfts, 0.0),
    ]


def _usage_of_one(r: LedgerRecord) -> list[Any]:
    """`_usage_measures` of a group of one, without a pass per measure."""
    events, guardrails = r.policy_events, r.guardrail_events
    latency, ttft = r.latency_ms, r.ttft_ms
    histogram = _HISTOGRAM_ZEROS.copy()
    if latency is not None:
        histogram[bisect_left(BOUNDS_MS, latency)] = 1
    if ttft is not None:
        histogram[BUCKETS + bisect_left(BOUNDS_MS, ttft)] = 1
    return [
        1,
        int(not 200 <= r.status_code < 400),
        r.input_tokens or 0,
        r.output_tokens or 0,
        r.cache_read_tokens or 0,
        r.cache_write_tokens or 0,
        r.reasoning_tokens or 0,
        int(r.cost_usd is None and _has_tokens(r)),
        int(r.usage_source == "estimated"),
        int(r.stream),
        r.attempt_count,
        int(r.retry_used),
        int(r.fallback_used),
        int(bool(events) and any(e.kind == "rate_limit" for e in events)),
        int(bool(events) and any(e.kind == "budget" for e in events)),
        len(guardrails),
        int(bool(guardrails) and any(e.get("action") == "block" for e in guardrails)),
        int(r.session_killed),
        int(r.client_disconnected),
        int(latency is not None),
        int(ttft is not None),
        *histogram,
        r.cost_usd or 0.0,
        latency or 0.0,
        ttft or 0.0,
    ]


def _user_measures(group: Group) -> list[Any]:
    return [
        len(group),
        _errors(group),
        _sum([r.input_tokens for r in group]),
        _sum([r.output_tokens for r in group]),
        _cost(group),
    ]


def _metadata_measures(group: Group) -> list[Any]:
    return [len(group), _errors(group), *_tokens(group), _cost(group)]


# -- sessions -------------------------------------------------------------------------------


def _session_row(session_id: str, group: Group) -> Values:
    """One pass over the session's records of the batch."""
    first = group[0]
    first_ts = last_ts = first.ts
    errors = inputs = outputs = cache_reads = cache_writes = reasoning = 0
    retry_tokens = wasted = rate_limit_hits = budget_hits = blocks = killed = 0
    cost = 0.0
    same_identity = True
    identity: tuple[str, ...] = _identity(first)
    for r in group:
        ts = r.ts
        if ts < first_ts:
            first_ts = ts
        elif ts > last_ts:
            last_ts = ts
        tokens_in, tokens_out = r.input_tokens or 0, r.output_tokens or 0
        inputs += tokens_in
        outputs += tokens_out
        cache_reads += r.cache_read_tokens or 0
        cache_writes += r.cache_write_tokens or 0
        reasoning += r.reasoning_tokens or 0
        cost += r.cost_usd or 0.0
        retry_tokens += tokens_in * max(r.attempt_count - 1, 0)
        if not 200 <= r.status_code < 400:
            errors += 1
            retry_tokens += tokens_in + tokens_out
            wasted += tokens_in
        elif r.client_disconnected:
            wasted += tokens_in
        if r.policy_events:
            rate_limit_hits += any(e.kind == "rate_limit" for e in r.policy_events)
            budget_hits += any(e.kind == "budget" for e in r.policy_events)
        if r.guardrail_events:
            blocks += any(e.get("action") == "block" for e in r.guardrail_events)
        killed += r.session_killed
        if same_identity and _identity(r) != identity:
            same_identity = False
    if not same_identity:
        identity = _first_non_empty(sorted(group, key=_ledger_order))
    return (
        session_id,
        first_ts,
        last_ts,
        *identity,
        len(group),
        errors,
        inputs,
        outputs,
        cache_reads,
        cache_writes,
        reasoning,
        retry_tokens,
        wasted,
        rate_limit_hits,
        budget_hits,
        blocks,
        killed,
        cost,
    )


def _identity(r: LedgerRecord) -> tuple[str, str, str, str, str]:
    """A record's session identity columns, in SESSION_IDENTITY order."""
    return (
        r.user_id or NONE,
        r.team or NONE,
        r.project or UNTAGGED,
        r.workflow_tag or NONE,
        r.client_tool or NONE,
    )


def _first_non_empty(ordered: Group) -> tuple[str, ...]:
    values = [NONE] * len(SESSION_IDENTITY)
    for r in ordered:
        for i, value in enumerate(_identity(r)):
            if not values[i] and value and value != UNTAGGED:
                values[i] = value
    if not values[2]:
        values[2] = UNTAGGED
    return tuple(values)


def _ledger_order(record: LedgerRecord) -> tuple[float, str]:
    return (record.ts, record.request_id)
