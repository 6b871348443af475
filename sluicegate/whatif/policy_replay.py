"""The proposed rate limits and budgets, replayed on ledger rows by the live engine itself.

A `PolicyEngine` on an in-memory counter store, both on a simulated clock set to each
row's time: the rules match, windows turn and counters count exactly as in the gateway
(the fallback loop is the pipeline's own, `policy.fallbacks`). What differs is only what a
replay knows: each request reserves what it really used (its recorded tokens, its cost on
the route the proposal gives it) rather than a worst case, and is settled at once, so a
request the proposal refuses never reaches a later counter or budget. A queue waits in
simulated time (the clock moves on while it polls), and alert thresholds are read from
the budget counters after each request.

With in-memory counters and a simulated sleep the engine never suspends, so `drive` runs
its coroutines to completion synchronously: the replay runs in a worker thread, away
from the event loop.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import msgspec

from sluicegate.errors import InvalidRequest, NotFound
from sluicegate.model.identity import Envelope, Principal
from sluicegate.model.record import PolicyEvent
from sluicegate.policy import budgets
from sluicegate.policy.admission import Admission, AdmissionInput, PolicyBlocked, budget_key
from sluicegate.policy.compiled import CompiledBudget, CompiledPolicy, CompiledRule
from sluicegate.policy.counters.memory import MemoryCounterStore
from sluicegate.policy.engine import PolicyEngine
from sluicegate.policy.fallbacks import admit_following_fallbacks
from sluicegate.whatif.routes import Costing, RouteBook
from sluicegate.whatif.rows import ReplayRow
from sluicegate.whatif.tally import MAX_SCOPES, OUTCOMES, OutcomeTally, Trip, bump, rule_outcomes

T = TypeVar("T")


class SimClock:
    """The replay's time: set to each row's ts; a queued admission's sleep moves it on."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here and now."""
    try:
        coro.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    coro.close()
    raise RuntimeError("a replayed admission suspended: only in-memory counters replay")


class Crossing(msgspec.Struct):
    """An alert threshold's crossings: the first, and in how many windows."""

    first_at: float
    windows: int = 0
    last_key: str = ""  # the counter (one per window) that crossed it last


class BudgetWatch(msgspec.Struct):
    """A budget's settled spend as the replay went: its peak, and when it crossed each
    alert threshold and its ceiling (the first request that took it there)."""

    peak_usd: float = 0.0
    peak_pct: float = 0.0
    peak_at: float | None = None
    ceiling_at: float | None = None
    thresholds: dict[float, Crossing] = msgspec.field(default_factory=dict)  # by at_pct


class PolicyReplay:
    def __init__(
        self,
        policy: CompiledPolicy,
        book: RouteBook,
        clock: SimClock,
        *,
        max_counter_keys: int,
    ) -> None:
        self.policy = policy
        self._book = book
        self._clock = clock
        self._store = MemoryCounterStore(clock=clock, max_keys_per_family=max_counter_keys)
        self._engine = PolicyEngine(
            self._store,
            clock=clock,
            sleep=clock.sleep,
            monotonic=clock,
            default_max_output_tokens=0,  # a row reserves the output it had, even none
            rate_headers=False,
        )
        self._engine.set_policy(policy)
        self._rules: dict[str, CompiledRule] = {r.id: r for r in policy.rules}
        self._budget_scopes = {b.id: budget_scope(b.scope) for b in policy.budgets}
        ids = [*self._rules, *self._budget_scopes]
        self.rules: dict[str, OutcomeTally] = {rule_id: OutcomeTally() for rule_id in ids}
        self.matched: dict[str, int] = dict.fromkeys(ids, 0)
        self.budgets: dict[str, BudgetWatch] = {b.id: BudgetWatch() for b in policy.budgets}
        self._budgets: dict[str, CompiledBudget] = {  # by counter key, less its window's
            _family(budget_key(b, w, 0.0)): b for b in policy.budgets for w in b.windows
        }
        self.requests = OutcomeTally()  # by request: the strongest outcome of any rule
        self.unroutable = 0  # requests nothing in the proposal serves (a 404)
        self.fallback_failed = 0  # fallbacks to a model nothing serves, or in a loop
        self.admitted_unknown_usage = 0  # refused live, admitted here: usage never known

    async def seed_budgets(self, sum_cost: budgets.SumCost, since: float) -> list[dict[str, Any]]:
        """Budget spend from before the window (a month's budget replayed from the 10th
        starts with the 1st to 9th's spend), as the gateway rebuilds it from the ledger."""
        self._clock.now = since
        return await budgets.rebuild(self.policy, self._store, sum_cost, now=since)

    def replay(
        self,
        row: ReplayRow,
        envelope: Envelope,
        principal: Principal,
        model: str,
        costing: Costing | None,
        *,
        recorded_cost: bool,
        refused_live: bool,
    ) -> None:
        """One request under the proposal. `recorded_cost`: the proposal routes it as it
        was, so its recorded cost stands; otherwise its cost on the proposed route."""
        self._clock.now = row.ts
        if costing is None:  # a 404 before admission, as the router plans first
            self.unroutable += 1
            return
        if not self._count_matches(envelope, principal, model):
            return  # no counter it could touch, nothing that could refuse it
        usage = row.usage()
        first_cost = _recorded(row) if recorded_cost else costing.cost(usage)
        final: list[float | None] = [first_cost]

        async def prepare(name: str, exempt: frozenset[str]) -> tuple[Costing, AdmissionInput]:
            found = costing if name == model else self._book.costing(name, envelope)
            if found is None:
                raise NotFound(f"the fallback model {name!r} does not exist")
            final[0] = first_cost if name == model else found.cost(usage)
            return found, AdmissionInput(
                request_id=row.request_id,
                arrived_at=row.ts,
                envelope=envelope,
                principal=principal,
                model=name,
                estimated_input_tokens=row.input_tokens or 0,
                max_output_tokens=row.output_tokens or 0,
                worst_case_cost_usd=final[0],
                unpriced_model=found.unpriced,
                exempt_rule_ids=exempt,
                cheaper_model=self._book.cheaper_model(name),
            )

        admitting = admit_following_fallbacks(self._engine, model, prepare, self._book.resolve)
        try:
            landed, admission = drive(admitting)
        except PolicyBlocked as blocked:
            self._count(row, envelope, principal, model, blocked.events, None)
            return
        except (NotFound, InvalidRequest):
            self.fallback_failed += 1
            return
        moved = landed.model if landed.model != model else None
        self._count(row, envelope, principal, model, admission.events, (moved, final[0]))
        if usage is None and refused_live:
            self.admitted_unknown_usage += 1
        drive(self._engine.settle(admission, usage, final[0]))
        self._watch_budgets(admission, row.ts)

    def _count_matches(self, envelope: Envelope, principal: Principal, model: str) -> bool:
        """Count the rules and budgets the request matches; whether it matched any."""
        matched = self.matched
        found = False
        for rule in self.policy.rules:
            if rule.matches(envelope, principal, model) and (
                rule.scope(envelope, principal, model) is not None
            ):
                matched[rule.id] += 1
                found = True
        for budget in self.policy.budgets:
            if budget.matches(envelope, principal, model):
                matched[budget.id] += 1
                found = True
        return found

    def _count(
        self,
        row: ReplayRow,
        envelope: Envelope,
        principal: Principal,
        model: str,
        events: list[PolicyEvent],
        fallback: tuple[str | None, float | None] | None,
    ) -> None:
        outcomes = rule_outcomes((e.kind, e.rule_id, e.action, e.detail) for e in events)
        if not outcomes:
            return
        strongest = min(outcomes.values(), key=lambda found: OUTCOMES.index(found[0]))[0]
        self.requests.amounts(strongest).add(row)
        for rule_id, (outcome, detail) in outcomes.items():
            tally = self.rules.get(rule_id)
            if tally is None:  # a rule of the proposal always has a tally
                continue
            scope = self._scope(rule_id, envelope, principal, model)
            trip = Trip(row.ts, row.request_id, outcome, self.matched.get(rule_id), scope, detail)
            tally.record(outcome, row, trip)
            if outcome == "fallback" and fallback is not None:
                moved, cost = fallback
                tally.fallback_cost_usd += cost or 0.0
                bump(tally.fallback_models, moved or model, MAX_SCOPES)

    def _scope(self, rule_id: str, envelope: Envelope, principal: Principal, model: str) -> str:
        """The counter a rule acted on, as the engine labels it (`team=data`)."""
        rule = self._rules.get(rule_id)
        if rule is None:
            return self._budget_scopes.get(rule_id, "*")
        if rule.scope_name == "global":
            return "*"
        return f"{rule.scope_name}={rule.scope(envelope, principal, model)}"

    def _watch_budgets(self, admission: Admission, ts: float) -> None:
        keys = [hold.key for hold in admission.holds if hold.measure == "cost"]
        if not keys:
            return
        levels = drive(self._store.usage(keys))
        for key, level in levels.items():
            budget = self._budgets.get(_family(key))
            if budget is None:
                continue
            watch = self.budgets[budget.id]
            pct = level.used / budget.ceiling_micros * 100
            if pct > watch.peak_pct:
                watch.peak_pct, watch.peak_usd, watch.peak_at = pct, level.used / 1e6, ts
            if pct >= 100 and watch.ceiling_at is None:
                watch.ceiling_at = ts
            for alert in budget.alerts:
                if pct < alert.at_pct:
                    break
                crossing = watch.thresholds.setdefault(alert.at_pct, Crossing(ts))
                if crossing.last_key != key:  # a window that had not crossed it yet
                    crossing.windows += 1
                    crossing.last_key = key


def _family(key: str) -> str:
    """A budget counter's key without the suffix that tells its windows apart."""
    return key.rpartition(":")[0]


def _recorded(row: ReplayRow) -> float | None:
    """The row's recorded cost; None when it was priced only because a budget said to
    price an unpriced model as another (each budget then applies its own setting)."""
    return None if row.priced_as else row.cost_usd


def budget_scope(scope: Mapping[str, object]) -> str:
    """A budget's scope as written, in one line: `team=data model=gpt-4o`, or `*`."""
    parts: list[str] = []
    metadata = scope.get("metadata")
    if isinstance(metadata, dict):
        parts += [f"{name}={','.join(map(str, values))}" for name, values in metadata.items()]
    subjects = scope.get("subjects")
    if isinstance(subjects, list):
        parts.append(",".join(map(str, subjects)))
    elif isinstance(subjects, dict):
        parts.append(f"any {subjects.get('type')}")
    models = scope.get("models")
    if isinstance(models, list):
        parts.append(f"model={','.join(map(str, models))}")
    return " ".join(parts) or "*"
