"""The ledger rows a what-if replays, read in time order a page at a time.

Keyset paging on (ts, request_id), ascending, along the index on those two columns: each
page starts after the last row of the one before, so a page costs the same however deep
into the window it is, and no row is read twice. Only the columns the replay uses
are selected; a page arrives as raw tuples and becomes `ReplayRow`s where it is replayed
(the worker thread), not on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec
from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import api_keys, requests
from sluicegate.model.identity import UNTAGGED, Envelope, Principal
from sluicegate.model.usage import Usage

MAX_KEY_NAMES = 100_000  # key id -> name, for `virtualaccount:` subjects
_C = requests.c


class ReplayRow(msgspec.Struct, frozen=True):
    """One ledger row, as much of it as a replay reads (fields in `_COLUMNS` order)."""

    request_id: str
    ts: float
    key_id: str | None
    user_id: str | None
    team: str | None
    project: str | None
    session_id: str | None
    workflow_tag: str | None
    environment: str | None
    cost_center: str | None
    metadata: Any  # a dict of strings, as the ledger stores it
    requested_model: str | None
    provider: str | None
    model: str | None
    status_code: int
    error_type: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost_usd: float | None
    priced_as: str | None
    policy_events: Any  # a list of {kind, rule_id, action, detail}

    def usage(self) -> Usage | None:
        """The recorded token counts; None when the request used none that was counted
        (refused, or failed before a provider answered)."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )

    def served(self) -> str | None:
        """provider/model that answered, as recorded."""
        return f"{self.provider}/{self.model}" if self.provider and self.model else None

    def identity(self, key_names: dict[str, str]) -> tuple[Envelope, Principal]:
        """The envelope and principal the request was admitted with, as far as the row
        tells: its envelope fields, and the key (by id, with its name for subjects
        written `virtualaccount:<key name>`)."""
        metadata = self.metadata if isinstance(self.metadata, dict) else {}
        envelope = Envelope(
            key_id=self.key_id,
            user_id=self.user_id,
            team=self.team,
            project=self.project or UNTAGGED,
            session_id=self.session_id,
            workflow_tag=self.workflow_tag,
            environment=self.environment,
            cost_center=self.cost_center,
            metadata=metadata,
        )
        principal = Principal(
            key_id=self.key_id or "",
            name=key_names.get(self.key_id or ""),
            user_id=self.user_id,
            team=self.team,
        )
        return envelope, principal


_COLUMNS = tuple(_C[name] for name in ReplayRow.__struct_fields__)


_FROM_COLUMNS = cast(Callable[..., ReplayRow], ReplayRow)  # positional, in _COLUMNS order


def to_rows(raw: Sequence[Row[Any]]) -> list[ReplayRow]:
    return [_FROM_COLUMNS(*values) for values in raw]


async def read_page(
    engine: AsyncEngine,
    since: float,
    until: float,
    after: tuple[float, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """At most `limit` rows with since <= ts < until, after the row `after` (ts,
    request_id), oldest first."""
    # After a row, the row comparison alone: with a redundant `ts >=` beside it
    # PostgreSQL misjudges how many rows follow and sorts them all instead of walking
    # the index.
    start = _C.ts >= since if after is None else tuple_(_C.ts, _C.request_id) > tuple_(*after)
    conditions = [start, _C.ts < until]
    statement = select(*_COLUMNS).where(*conditions).order_by(_C.ts, _C.request_id).limit(limit)
    async with translate_errors("what-if ledger read"), engine.connect() as conn:
        return list((await conn.execute(statement)).all())


async def key_names(engine: AsyncEngine) -> dict[str, str]:
    """Key id -> key name (at most MAX_KEY_NAMES keys, the most recently changed)."""
    statement = (
        select(api_keys.c.id, api_keys.c.name)
        .where(api_keys.c.name.is_not(None))
        .order_by(api_keys.c.updated_at.desc())
        .limit(MAX_KEY_NAMES)
    )
    async with translate_errors("what-if key names"), engine.connect() as conn:
        return {row.id: row.name for row in await conn.execute(statement)}
