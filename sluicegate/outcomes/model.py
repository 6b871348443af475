"""Outcomes as plain data: what a session produced (a merged PR, a closed ticket, a
resolved incident, an eval run), joined to the ledger by session id.

`NewOutcome` is what a receiver (the API, a webhook) asks the store to record; `Outcome`
is the stored row. The reads the control-room panels use (`OutcomeFilters` with a page,
`SessionOutcomes` per session) are here too, so panels depend on this module and the
store's Protocol only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec


class OutcomeKind(StrEnum):
    PR_MERGED = "pr_merged"
    TICKET_CLOSED = "ticket_closed"
    INCIDENT_RESOLVED = "incident_resolved"
    EVAL_RUN = "eval_run"  # the only kind with a pass rate, and it must have one


class OutcomeSource(StrEnum):
    """Who reported it; `external_id` is unique within a source."""

    API = "api"
    GITHUB = "github"
    HELPDESK = "helpdesk"


class NewOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """An outcome to record. `ts` None: it happened now (when it was received)."""

    source: OutcomeSource
    external_id: str
    kind: OutcomeKind
    session_id: str
    workflow_tag: str | None = None
    url: str | None = None
    value: float | None = None  # e.g. dollars or story points; the sender's unit
    pass_rate: float | None = None  # 0..1, eval_run only
    ts: float | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class Outcome(msgspec.Struct, kw_only=True, frozen=True):
    """A stored outcome (times are unix seconds)."""

    id: str
    source: OutcomeSource
    external_id: str
    kind: OutcomeKind
    session_id: str
    workflow_tag: str | None
    url: str | None
    value: float | None
    pass_rate: float | None
    ts: float
    received_at: float
    extra: dict[str, Any]


class Recorded(msgspec.Struct, kw_only=True, frozen=True):
    """The stored row, and whether this call stored it (False: it was already there,
    sent before with the same source and external id, and is returned unchanged)."""

    outcome: Outcome
    created: bool


class OutcomeFilters(msgspec.Struct, kw_only=True, frozen=True):
    source: OutcomeSource | None = None
    kind: OutcomeKind | None = None
    session_id: str | None = None
    workflow_tag: str | None = None
    since: float | None = None  # on `ts`, inclusive
    until: float | None = None  # on `ts`, exclusive
    # Only outcomes of sessions with a ledger row of one of these teams (a team lead's
    # view); None: every outcome.
    teams: tuple[str, ...] | None = None


class OutcomePage(msgspec.Struct, kw_only=True):
    data: list[Outcome]
    next_cursor: str | None


class SessionOutcomes(msgspec.Struct, kw_only=True, frozen=True):
    """One session's outcomes in a window: what the outcome-join and leverage panels read.

    `counts` has every kind (0 when none); `eval_pass_rate` is the mean pass rate of its
    eval runs (None without one); `value_sum` the sum of the values sent (None when no
    outcome had one); `workflow_tag` the workflow its outcomes name (the greatest, by
    text, when they name several; None when none does)."""

    session_id: str
    outcomes: int
    counts: dict[OutcomeKind, int]
    eval_pass_rate: float | None
    value_sum: float | None
    workflow_tag: str | None
    first_ts: float
    last_ts: float


class SessionPage(msgspec.Struct, kw_only=True):
    data: list[SessionOutcomes]  # ordered by session id
    next_cursor: str | None
