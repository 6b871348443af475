"""What rules did to requests, counted: by the proposal in the replay, and by the live
policy as the ledger's `policy_events` record it, in the same terms so they subtract.

A request gets one outcome per rule, the strongest of what the rule's events say
(`OUTCOMES` order): refused (a hard block, a queue that timed out, a budget refusing an
unpriced model), sent to a fallback model, queued (held back, then admitted), or audited
(it would have been refused; the rule only records). Each outcome counts the requests and
their recorded tokens and cost: what refusing them saves, or what a fallback moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from sluicegate.whatif.rows import ReplayRow

OUTCOMES = ("refused", "fallback", "queued", "audited")  # strongest first
ACTION_OUTCOMES = {
    "hard_block": "refused",
    "unpriced_block": "refused",
    "fallback": "fallback",
    "queued": "queued",
    "audit": "audited",
}
POLICY_KINDS = frozenset({"rate_limit", "budget", "policy"})
NOT_RULES = frozenset({"counter-store"})  # fail_open / fail_closed events name no rule
MAX_SCOPES = 1_000  # scope values counted per rule (then "other")
MAX_LIVE_RULES = 1_000  # rule ids the ledger names (then unattributed)
OTHER = "(other)"


class Amounts(msgspec.Struct):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, row: ReplayRow) -> None:
        self.requests += 1
        self.input_tokens += row.input_tokens or 0
        self.output_tokens += row.output_tokens or 0
        self.cost_usd += row.cost_usd or 0.0


class Trip(msgspec.Struct, frozen=True):
    """The first request a rule acted on."""

    at: float
    request_id: str
    outcome: str
    nth_match: int | None = None  # the rule's nth matching request (replay only)
    scope: str | None = None  # the counter it tripped on, e.g. team=data
    detail: str | None = None  # the engine's account, e.g. "600 + 1 requests > 600 per 1h"


class OutcomeTally(msgspec.Struct):
    refused: Amounts = msgspec.field(default_factory=Amounts)
    fallback: Amounts = msgspec.field(default_factory=Amounts)
    queued: Amounts = msgspec.field(default_factory=Amounts)
    audited: Amounts = msgspec.field(default_factory=Amounts)
    first_trip: Trip | None = None
    fallback_cost_usd: float = 0.0  # what the fallen-back requests cost on their new model
    fallback_models: dict[str, int] = msgspec.field(default_factory=dict)
    scopes: dict[str, int] = msgspec.field(default_factory=dict)  # of refused requests

    def amounts(self, outcome: str) -> Amounts:
        amounts: Amounts = getattr(self, outcome)
        return amounts

    def record(self, outcome: str, row: ReplayRow, trip: Trip) -> None:
        self.amounts(outcome).add(row)
        if self.first_trip is None:
            self.first_trip = trip
        if outcome == "refused" and trip.scope is not None:
            bump(self.scopes, trip.scope, MAX_SCOPES)

    def counts(self) -> dict[str, int]:
        return {outcome: self.amounts(outcome).requests for outcome in OUTCOMES}


def bump(counts: dict[str, int], key: str, bound: int) -> None:
    """Count `key`, or OTHER once `bound` distinct keys are counted."""
    if key not in counts and len(counts) >= bound:
        key = OTHER
    counts[key] = counts.get(key, 0) + 1


def rule_outcomes(
    events: Iterable[tuple[str, str, str, str | None]],
) -> dict[str, tuple[str, str | None]]:
    """(kind, rule id, action, detail) events -> rule id -> (outcome, detail of the event
    that decided it), the strongest outcome per rule."""
    found: dict[str, tuple[str, str | None]] = {}
    for kind, rule_id, action, detail in events:
        outcome = ACTION_OUTCOMES.get(action)
        if outcome is None or kind not in POLICY_KINDS or rule_id in NOT_RULES:
            continue
        known = found.get(rule_id)
        if known is None or OUTCOMES.index(outcome) < OUTCOMES.index(known[0]):
            found[rule_id] = (outcome, detail)
    return found


def stored_events(events: Any) -> Iterator[tuple[str, str, str, str | None]]:
    """A ledger row's `policy_events` (JSON as stored), skipping anything malformed."""
    if not isinstance(events, list):
        return
    for event in events:
        if not isinstance(event, dict):
            continue
        kind, rule_id, action = event.get("kind"), event.get("rule_id"), event.get("action")
        detail = event.get("detail")
        if isinstance(kind, str) and isinstance(rule_id, str) and isinstance(action, str):
            yield kind, rule_id, action, detail if isinstance(detail, str) else None


class LiveTallies:
    """What the live policy did in the window, from the rows' policy events."""

    def __init__(self) -> None:
        self.rules: dict[str, OutcomeTally] = {}
        self.requests = OutcomeTally()  # by request: the strongest outcome of any rule
        self.unattributed = 0  # events of rules past MAX_LIVE_RULES

    def observe(self, row: ReplayRow) -> str | None:
        """Count what the row's events say; the request's strongest outcome, if any."""
        if not row.policy_events:
            return None
        outcomes = rule_outcomes(stored_events(row.policy_events))
        if not outcomes:
            return None
        strongest = min(outcomes.values(), key=lambda found: OUTCOMES.index(found[0]))[0]
        self.requests.amounts(strongest).add(row)
        for rule_id, (outcome, detail) in outcomes.items():
            tally = self.rules.get(rule_id)
            if tally is None:
                if len(self.rules) >= MAX_LIVE_RULES:
                    self.unattributed += 1
                    continue
                tally = self.rules[rule_id] = OutcomeTally()
            tally.record(outcome, row, Trip(row.ts, row.request_id, outcome, detail=detail))
        return strongest
