"""The outcome store on SQLite and PostgreSQL: idempotent recording, the listing's filters
and cursor, the per-session aggregate the panels read, and the team scope (outcomes of
sessions with a ledger row of the team)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.errors import InvalidRequest
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.outcomes.model import (
    NewOutcome,
    OutcomeFilters,
    OutcomeKind,
    OutcomeSource,
)
from sluicegate.outcomes.store import SqlOutcomeStore
from tests.ledger.records import record

T0 = 1_750_000_000.0
PR, TICKET, INCIDENT, EVAL = (
    OutcomeKind.PR_MERGED,
    OutcomeKind.TICKET_CLOSED,
    OutcomeKind.INCIDENT_RESOLVED,
    OutcomeKind.EVAL_RUN,
)


def outcome(external_id: str, session: str, kind: OutcomeKind = PR, **fields: object) -> NewOutcome:
    values: dict[str, object] = {
        "source": OutcomeSource.API,
        "external_id": external_id,
        "kind": kind,
        "session_id": session,
        "ts": T0,
    }
    values.update(fields)
    return NewOutcome(**values)  # type: ignore[arg-type]


async def test_a_resent_outcome_is_stored_once_and_answers_the_stored_row(
    engine: AsyncEngine,
) -> None:
    store = SqlOutcomeStore(engine)
    first = await store.record(
        outcome("pr-1", "s1", url="https://x/1", value=3.0, extra={"repo": "acme/search"})
    )
    again = await store.record(outcome("pr-1", "s2", value=99.0))
    assert first.created and not again.created
    assert again.outcome == first.outcome  # the first one, unchanged
    assert (first.outcome.session_id, first.outcome.value) == ("s1", 3.0)
    assert first.outcome.extra == {"repo": "acme/search"}
    assert first.outcome.id.startswith("out_")
    # the same external id from another source is another outcome
    other = await store.record(outcome("pr-1", "s1", source=OutcomeSource.GITHUB))
    assert other.created and other.outcome.id != first.outcome.id
    page = await store.list(OutcomeFilters(), 100, None)
    assert len(page.data) == 2


async def test_concurrent_resends_store_one_row(engine: AsyncEngine) -> None:
    store = SqlOutcomeStore(engine)
    results = await asyncio.gather(*(store.record(outcome("dup", "s1")) for _ in range(8)))
    assert sum(r.created for r in results) == 1
    assert len({r.outcome.id for r in results}) == 1
    assert len((await store.list(OutcomeFilters(), 100, None)).data) == 1


async def test_ts_defaults_to_when_it_was_received(engine: AsyncEngine) -> None:
    store = SqlOutcomeStore(engine)
    stored = (await store.record(outcome("now", "s1", ts=None))).outcome
    assert stored.ts == stored.received_at > T0


async def test_listing_filters_and_pages_newest_first(engine: AsyncEngine) -> None:
    store = SqlOutcomeStore(engine)
    for i in range(7):
        await store.record(
            outcome(
                f"o{i}",
                f"s{i % 2}",
                TICKET if i % 3 == 0 else PR,
                ts=T0 + i,
                workflow_tag="triage" if i < 4 else None,
            )
        )
    await store.record(outcome("same-ts", "s9", ts=T0 + 6))  # ties broken by id

    seen, cursor = [], None
    while True:
        page = await store.list(OutcomeFilters(), 3, cursor)
        seen += page.data
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 8 and len({o.id for o in seen}) == 8
    assert [o.ts for o in seen] == sorted((o.ts for o in seen), reverse=True)

    async def ids(**filters: object) -> list[str]:
        page = await store.list(OutcomeFilters(**filters), 100, None)  # type: ignore[arg-type]
        return sorted(o.external_id for o in page.data)

    assert await ids(kind=TICKET) == ["o0", "o3", "o6"]
    assert await ids(session_id="s1") == ["o1", "o3", "o5"]
    assert await ids(workflow_tag="triage") == ["o0", "o1", "o2", "o3"]
    assert await ids(since=T0 + 5, until=T0 + 6) == ["o5"]  # since inclusive, until not
    assert await ids(source=OutcomeSource.GITHUB) == []
    with pytest.raises(InvalidRequest) as refused:
        await store.list(OutcomeFilters(), 10, "not-a-cursor")
    assert refused.value.param == "cursor"


async def test_by_session_counts_kinds_means_pass_rates_and_sums_values(
    engine: AsyncEngine,
) -> None:
    store = SqlOutcomeStore(engine)
    rows = [
        outcome("a1", "sess-a", PR, value=5.0, workflow_tag="code-review"),
        outcome("a2", "sess-a", PR, ts=T0 + 10),
        outcome("a3", "sess-a", EVAL, pass_rate=0.5, ts=T0 + 20),
        outcome("a4", "sess-a", EVAL, pass_rate=0.9, ts=T0 + 30, value=1.5),
        outcome("b1", "sess-b", TICKET, ts=T0 + 5),
        outcome("b2", "sess-b", INCIDENT, ts=T0 + 6, workflow_tag="oncall"),
        outcome("late", "sess-c", PR, ts=T0 + 3600),  # outside the window
    ]
    for row in rows:
        await store.record(row)
    page = await store.by_session(T0, T0 + 60)
    assert page.next_cursor is None
    a, b = page.data
    assert (a.session_id, a.outcomes, a.workflow_tag) == ("sess-a", 4, "code-review")
    assert a.counts == {PR: 2, TICKET: 0, INCIDENT: 0, EVAL: 2}
    assert a.eval_pass_rate == pytest.approx(0.7)
    assert a.value_sum == pytest.approx(6.5)
    assert (a.first_ts, a.last_ts) == (T0, T0 + 30)
    assert b.counts == {PR: 0, TICKET: 1, INCIDENT: 1, EVAL: 0}
    assert (b.eval_pass_rate, b.value_sum, b.workflow_tag) == (None, None, "oncall")

    only = await store.by_session(T0, T0 + 60, workflow_tag="oncall")
    assert [s.session_id for s in only.data] == ["sess-b"]


async def test_by_session_pages_by_session_id(engine: AsyncEngine) -> None:
    store = SqlOutcomeStore(engine)
    for i in range(5):
        await store.record(outcome(f"x{i}", f"sess-{i}"))
        await store.record(outcome(f"y{i}", f"sess-{i}", TICKET))
    sessions, cursor = [], None
    while True:
        page = await store.by_session(T0, T0 + 1, limit=2, cursor=cursor)
        assert len(page.data) <= 2
        sessions += [(s.session_id, s.outcomes) for s in page.data]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sessions == [(f"sess-{i}", 2) for i in range(5)]


async def test_a_team_scope_keeps_outcomes_of_the_teams_sessions(engine: AsyncEngine) -> None:
    ledger = SqlLedgerStore(engine)
    await ledger.write_batch(
        [
            record(1, session_id="s-search", team="search"),
            record(2, session_id="s-search", team="search"),
            record(3, session_id="s-billing", team="billing"),
            record(4, session_id="s-shared", team="billing"),
            record(5, session_id="s-shared", team="search"),
        ]
    )
    store = SqlOutcomeStore(engine)
    for session in ("s-search", "s-billing", "s-shared", "s-nobody"):
        await store.record(outcome(f"o-{session}", session))

    async def sessions(teams: tuple[str, ...] | None) -> list[str]:
        page = await store.list(OutcomeFilters(teams=teams), 100, None)
        return sorted(o.session_id for o in page.data)

    assert await sessions(("search",)) == ["s-search", "s-shared"]
    assert await sessions(("billing",)) == ["s-billing", "s-shared"]
    assert await sessions(("search", "billing")) == ["s-billing", "s-search", "s-shared"]
    assert await sessions(()) == []  # a team lead of no team sees nothing
    assert await sessions(None) == ["s-billing", "s-nobody", "s-search", "s-shared"]
    scoped = await store.by_session(T0, T0 + 1, teams=("search",))
    assert [s.session_id for s in scoped.data] == ["s-search", "s-shared"]
