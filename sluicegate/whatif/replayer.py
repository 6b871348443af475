"""One ledger row at a time through the three parts of a what-if.

    live          what the live policy did (the row's policy events)
    routing       when the proposal routes the request differently from the live config:
                  its cost on the new targets
    policy        the proposed rate limits and budgets, on the request as the proposal
                  routes it

A row replays only when it reached admission live (it has a key and a model, and was not
refused before: a bad key, a model it may not use, a body too large or too slow, shed);
the others are counted as skipped. `replay_page` runs in a worker thread; its state is
only read once the pages are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from sluicegate.server.config_review import CompiledConfig
from sluicegate.whatif.policy_replay import PolicyReplay, SimClock
from sluicegate.whatif.routes import RouteBook
from sluicegate.whatif.routing_replay import RoutingReplay
from sluicegate.whatif.rows import ReplayRow, to_rows
from sluicegate.whatif.tally import LiveTallies

# error codes of requests refused before admission: the replay cannot admit them either
NOT_ADMITTED = (
    "invalid_api_key",
    "model_not_allowed",
    "envelope_conflict",
    "model_not_found",
    "request_too_large",
    "request_timeout",
    "overloaded",
)


class Replayer:
    def __init__(
        self,
        live: CompiledConfig,
        proposed: CompiledConfig,
        key_names: dict[str, str],
        *,
        max_counter_keys: int,
    ) -> None:
        self.clock = SimClock()
        self.live_book = RouteBook(live)
        self.proposed_book = RouteBook(proposed)
        self.live = LiveTallies()
        self.routing = RoutingReplay()
        self.policy = PolicyReplay(
            proposed.policy, self.proposed_book, self.clock, max_counter_keys=max_counter_keys
        )
        self._key_names = key_names
        self.rows = 0  # read from the ledger
        self.replayed = 0  # of which reached admission and were replayed
        self.last: tuple[float, str] | None = None  # the last row read: (ts, request_id)

    def replay_page(self, raw: Sequence[Row[Any]]) -> None:
        for row in to_rows(raw):
            self.replay(row)

    def replay(self, row: ReplayRow) -> None:
        self.rows += 1
        self.last = (row.ts, row.request_id)
        live_outcome = self.live.observe(row)
        if row.requested_model is None or row.key_id is None or row.error_type in NOT_ADMITTED:
            return
        self.replayed += 1
        envelope, principal = row.identity(self._key_names)
        live_model = self.live_book.resolve(row.requested_model)
        model = self.proposed_book.resolve(row.requested_model)
        live = self.live_book.costing(live_model, envelope)
        proposed = self.proposed_book.costing(model, envelope)
        same = proposed.same_as(live) if proposed is not None else live is None
        if not same:
            self.routing.observe(row, model, proposed)
        self.policy.replay(
            row,
            envelope,
            principal,
            model,
            proposed,
            recorded_cost=same,
            refused_live=live_outcome == "refused",
        )
