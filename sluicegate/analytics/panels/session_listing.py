"""The sessions behind a session panel's figures, listed by id (admins only: the route's
access rule), newest first, a page at a time; never with a user id.

    GET /api/analytics/{panel}/sessions?since&until&FILTER=VALUE&traced=&limit=&cursor=

A panel that can list its sessions implements `ListsSessions` (outcomes, leverage):
`sessions(context, query, ask)` gives a `SessionListing` whose `sessions` is how many
sessions match (the figure a row's `sessions` showed, under the same window and
filters), and whose `data` is one page of them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec
import orjson

from sluicegate.analytics.panels.base import PanelContext, ScopeView, WindowView
from sluicegate.analytics.panels.common import window_view
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.sessions import (
    MAX_SESSION_PAGE,
    Keyset,
    SessionFigures,
    SessionReader,
    selection_of,
)
from sluicegate.errors import InvalidRequest

DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class SessionAsk:
    """A page: at most `limit` sessions after `after`; `traced`: only sessions with
    (True) or without (False) an outcome."""

    limit: int = DEFAULT_PAGE
    after: Keyset | None = None
    traced: bool | None = None


class SessionListing(msgspec.Struct, kw_only=True):
    panel: str
    window: WindowView
    filters: dict[str, str]
    scope: ScopeView
    traced: bool | None
    sessions: int  # how many sessions match, over every page
    data: list[Any]  # this page, newest first
    next_cursor: str | None


@runtime_checkable
class ListsSessions(Protocol):
    async def sessions(
        self, context: PanelContext, query: ScopedQuery, ask: SessionAsk
    ) -> SessionListing: ...


Describe = Callable[[Sequence[SessionFigures]], Awaitable[list[Any]]]


async def listing(
    panel: str, context: PanelContext, query: ScopedQuery, ask: SessionAsk, describe: Describe
) -> SessionListing:
    """One page of a panel's sessions, each turned into what the panel shows of it."""
    selection = selection_of(query, panel)
    reader = SessionReader(context.reader)
    page = await reader.sessions(selection, limit=ask.limit + 1, after=ask.after, traced=ask.traced)
    shown = page[: ask.limit]
    last = shown[-1] if shown and len(page) > ask.limit else None
    q = query.query
    return SessionListing(
        panel=panel,
        window=window_view(q.window),
        filters={f.dimension.name: f.value for f in q.filters},
        scope=ScopeView(
            teams=list(query.teams) if query.teams is not None else None, user_id=query.user_id
        ),
        traced=ask.traced,
        sessions=await reader.count(selection, traced=ask.traced),
        data=await describe(shown),
        next_cursor=encode_cursor(Keyset(last.last_ts, last.session_id)) if last else None,
    )


def session_ask(limit: str | None, cursor: str | None, traced: str | None) -> SessionAsk:
    """The page a listing's `limit`, `cursor` and `traced` parameters ask for (400s
    naming the parameter)."""
    return SessionAsk(
        limit=_limit(limit),
        after=decode_cursor(cursor) if cursor else None,
        traced=_traced(traced),
    )


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_SESSION_PAGE:
        raise InvalidRequest(
            f"limit: {text[:32]!r} is not a whole number from 1 to {MAX_SESSION_PAGE}",
            param="limit",
        )
    return int(text)


def _traced(text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    raise InvalidRequest(
        "traced: true (sessions with an outcome) or false (sessions with none)", param="traced"
    )


def encode_cursor(keyset: Keyset) -> str:
    raw = orjson.dumps([keyset.last_ts, keyset.session_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Keyset:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        last_ts, session_id = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error) as exc:  # orjson's error is a ValueError
        raise InvalidRequest("cursor: not a cursor this listing gave", param="cursor") from exc
    number = isinstance(last_ts, int | float) and not isinstance(last_ts, bool)
    if not number or not isinstance(session_id, str) or "\x00" in session_id:
        raise InvalidRequest("cursor: not a cursor this listing gave", param="cursor")
    return Keyset(float(last_ts), session_id)
