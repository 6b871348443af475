"""The policy engine: rate limits and budgets enforced before the call, settled after it.

    admit(input)
      plan: every matching rule and budget window -> one counter check each (config order)
      store.admit(checks)            one atomic call: all reserved, or none
      ok      -> Admission(reservation, events, X-RateLimit-* headers); alerts in background
      breach  -> by the first breached check's action:
                 hard_block  raise PolicyBlocked (429, rule id, Retry-After)
      unpriced -> a budget that blocks unpriced models: UnpricedBlocked (403, budget id)
                 queue       sleep (poll / until the window resets), plan again; 429 at timeout
                 fallback    Admission(fallback_model, fallback_rule_id), nothing reserved;
                             the caller admits again on that model with the rule exempt
                             (fallback_to_cheaper uses inp.cheaper_model; no model to
                             fall back to, or already on it: hard_block instead)
    settle(admission, usage, cost)   reservations -> actuals; never raises
    settle_soon(...)                 the same, queued without waiting (the request path)

A rule listed in `exempt_rule_ids`, and an `audit` rule, is counted but not enforced
(an audit breach admits and records an event). Store failures follow `failure_mode`; an
outage and the recovery are logged once each; a fail_closed refusal says when to retry
(Retry-After: `store_retry_s`). What fail_open admits while the store is unreachable is
charged to the counters once it answers again (`CounterStore.charge_soon`).

Budget spend is rebuilt from the ledger (`budgets.rebuild`, correct under traffic: see
counters/base.py) at start-up, when a config adds a budget window, after an outage, and
when the store lost its data: admissions then get StoreUnseeded from the store and wait
(at most `seed_wait_s`) for one rebuild they share, which reads the ledger once every
replica's writer has landed the rows of requests finished before the loss (at most
`landed_wait_s`; landed_wait.py). The store's health, those rebuilds
and the checks that notice a loss with no traffic are `store_health.StoreHealth`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, Literal

from sluicegate.alerts.alert import Alert, AlertSink
from sluicegate.errors import StoreUnavailable, StoreUnseeded
from sluicegate.model.record import PolicyEvent
from sluicegate.model.usage import Usage
from sluicegate.policy import budgets
from sluicegate.policy.admission import (
    Admission,
    AdmissionInput,
    Item,
    PolicyBlocked,
    PolicyUnavailable,
    UnpricedBlocked,
    actual_amounts,
    plan,
    rate_headers,
)
from sluicegate.policy.compiled import CompiledPolicy
from sluicegate.policy.counters.base import AdmitResult, CounterStore, Level
from sluicegate.policy.landed_wait import LandedMarks
from sluicegate.policy.store_health import StoreHealth
from sluicegate.pricing import ModelRate

log = logging.getLogger(__name__)

FailureMode = Literal["fail_open", "fail_closed"]
_FAILURE_MODES: dict[str, FailureMode] = {"fail_open": "fail_open", "fail_closed": "fail_closed"}
_POLL_S = (0.02, 0.25)  # queue polling: first interval, cap


class PolicyEngine:
    """One per process, built by the composition root and shared by every request.

    reservation_ttl_s: a reservation not settled by then is released by the store itself.
    default_max_output_tokens: what token rules reserve when the request sets no maximum.
    store_retry_s: after a store failure, admissions skip the store (failing open or
    closed at once) for this long instead of paying a timeout each.
    seed_wait_s: how long admissions wait for budget spend to be rebuilt after the store
    lost its data, before failing open or closed.
    landed_wait_s: the most such a rebuild (and any rebuild pass) waits, before it reads
    the ledger, for every live replica's ledger writer to land the rows of requests
    finished before the counters' cutoffs (the `landed` marks given to `rebuild_budgets`,
    policy/landed_wait.py; a writer lands a batch every 0.2 s, and under load a batch has
    taken over 0.5 s). Past it the rebuild reads the ledger all the same and logs which
    replica it did not wait for. Within `seed_wait_s`, so that waiting admissions see the
    rebuild.
    sleep, monotonic: how a queued admission waits and times its wait (a replay of the
    ledger passes a simulated clock's, so that a queue waits in simulated time).
    rate_headers: whether admissions carry X-RateLimit-* headers (a replay has no answer
    to send them with).
    """

    def __init__(
        self,
        counters: CounterStore,
        *,
        notifier: AlertSink | None = None,
        failure_mode: str = "fail_open",  # a FailureMode, as settings spell it; checked here
        clock: Callable[[], float] = time.time,
        reservation_ttl_s: float = 600.0,
        default_max_output_tokens: int = 4096,
        store_retry_s: float = 1.0,
        store_check_s: float = 5.0,
        seed_wait_s: float = 2.0,
        landed_wait_s: float = 1.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rate_headers: bool = True,
    ):
        mode = _FAILURE_MODES.get(failure_mode)
        if mode is None:
            raise ValueError(f"failure_mode is fail_open or fail_closed, not {failure_mode!r}")
        self._counters = counters
        self._notifier = notifier
        self.failure_mode: FailureMode = mode
        self._clock = clock
        self._ttl_s = reservation_ttl_s
        self._default_max_output = default_max_output_tokens
        self._policy = CompiledPolicy()
        self._alerted: dict[str, float] = {}  # mark key -> clock time it lapses
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serial = itertools.count(1)
        self._sleep = sleep
        self._monotonic = monotonic
        self._rate_headers = rate_headers
        admits = {"fail_open": "every request", "fail_closed": "nothing"}[mode]
        self._store = StoreHealth(
            counters,
            policy=lambda: self._policy,
            tasks=self._tasks,
            admits_while_down=f"{admits} ({mode})",
            clock=clock,
            retry_s=store_retry_s,
            check_s=store_check_s,
            seed_wait_s=seed_wait_s,
            landed_wait_s=landed_wait_s,
        )

    def set_policy(self, compiled: CompiledPolicy) -> None:
        """Swap the policy (hot reload). Admissions in flight keep the one they started with.
        Budget windows new to this policy are seeded from the ledger in the background."""
        old, self._policy = self._policy, compiled
        known = {(b.id, w.label) for b in old.budgets for w in b.windows}
        added = [
            b for b in compiled.budgets if any((b.id, w.label) not in known for w in b.windows)
        ]
        if added and self._store.sum_cost is not None:
            self._spawn(self._store.rebuild(replace(compiled, budgets=tuple(added))))

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    @property
    def enforcing(self) -> bool:
        """False while no rule or budget is configured: admission has nothing to do."""
        return bool(self._policy.rules or self._policy.budgets)

    @property
    def healthy(self) -> bool:
        """False from a store failure until the next successful store call (for /readyz)."""
        return self._store.healthy

    @property
    def last_error(self) -> str | None:
        return self._store.last_error

    async def admit(self, inp: AdmissionInput) -> Admission:
        """Reserve for every matching rule and budget, or act on the first breached one.
        Raises PolicyBlocked (429) and, when failing closed, StoreUnavailable (503)."""
        policy = self._policy
        events: list[PolicyEvent] = []
        queue: _Queue | None = None  # made when a queue_then_429 rule holds the request back
        waited = False  # for a rebuild of budget spend (once)
        arrived = self._clock() if inp.arrived_at is None else inp.arrived_at
        while True:
            now = self._clock()
            try:
                items = plan(policy, inp, now, self._default_max_output)
            except UnpricedBlocked as blocked:  # a budget refuses the unpriced model
                blocked.events[:0] = events
                raise
            if not items:
                return self._admission(inp, events)
            reservation_id = _new_id(inp, self._serial)
            try:
                result = await self._store.admit(
                    [i.check for i in items], reservation_id, self._ttl_s, arrived
                )
            except StoreUnseeded as exc:
                if not waited and await self._store.reseeded():
                    waited = True
                    continue
                return self._store_failed(inp, items, reservation_id, events, exc, arrived)
            except StoreUnavailable as exc:
                return self._store_failed(inp, items, reservation_id, events, exc, arrived)
            if policy.alerts and self._notifier is not None:
                self._schedule_alerts(items, result, now)
            if result.ok:
                if queue is not None:
                    events += queue.events()
                return self._admitted(inp, items, result, reservation_id, events, now)
            index = result.failed_index or 0
            item, level = items[index], result.levels[index]
            if item.breach.action == "queue":
                queue = queue or _Queue(self._sleep, self._monotonic)
                if await queue.wait(item, now):
                    continue
            if queue is not None:
                events += queue.events()
            fallback = item.breach.fallback_model or inp.cheaper_model
            if item.breach.action == "fallback" and fallback not in (None, inp.model):
                return self._fallback(inp, item, events, fallback)
            raise self._blocked(item, level, now, events)

    async def settle(
        self, admission: Admission, usage: Usage | None, cost_usd: float | None
    ) -> None:
        """Replace reservations by actual consumption: tokens by `usage` (None releases
        them), budgets by `cost_usd` (None releases); the request itself stays counted.
        Settling twice does nothing. Never raises: errors are logged."""
        reservation_id = admission.reservation_id
        actuals = self._actuals(admission, usage, cost_usd)
        if reservation_id is None or actuals is None:
            return
        try:
            if admission.unreserved_at is not None:
                self._counters.charge_soon(reservation_id, actuals, admission.unreserved_at)
                return
            await self._counters.settle(reservation_id, actuals)
        except StoreUnavailable as exc:
            self._store.note_failure(exc)
            log.warning("policy: could not settle %s: %s", admission.request_id, exc)
        except Exception:
            log.exception("policy: could not settle %s", admission.request_id)

    def settle_soon(
        self, admission: Admission, usage: Usage | None, cost_usd: float | None
    ) -> None:
        """`settle` without waiting (the request path: the client need not wait for a
        Redis round trip). Until it is applied the reservation stays held, which errs
        towards refusing, never towards overspending. `flush` waits for it."""
        reservation_id = admission.reservation_id
        actuals = self._actuals(admission, usage, cost_usd)
        if reservation_id is None or actuals is None:
            return
        try:
            if admission.unreserved_at is not None:
                self._counters.charge_soon(reservation_id, actuals, admission.unreserved_at)
            else:
                self._counters.settle_soon(reservation_id, actuals)
        except Exception:
            log.exception("policy: could not settle %s", admission.request_id)

    async def flush(self) -> None:
        """Wait for the settlements `settle_soon` queued (read-your-writes; shutdown)."""
        await self._counters.flush()

    def _actuals(
        self, admission: Admission, usage: Usage | None, cost_usd: float | None
    ) -> dict[str, int] | None:
        """What each hold becomes; None when there is nothing (more) to settle."""
        if admission.reservation_id is None or admission.settled:
            return None
        admission.settled = True
        return actual_amounts(admission, usage, cost_usd)

    async def budget_status(self) -> list[dict[str, Any]]:
        """Per budget and window, for GET /api/budgets. Raises StoreUnavailable."""
        return await budgets.budget_status(self._policy, self._counters, self._clock())

    async def rebuild_budgets(
        self, sum_cost: budgets.SumCost, landed: LandedMarks | None = None
    ) -> list[dict[str, Any]]:
        """Rebuild budget spend from the ledger (start-up, before traffic); never raises.
        `landed`: how far every replica's ledger has landed, which a rebuild after the
        store lost its data waits for (None: rows land as they are written)."""
        return await self._store.rebuild_budgets(sum_cost, landed)

    async def check_store(self) -> bool:
        """Ping the counter store (/readyz); rebuilds budget spend if it lost its data."""
        return await self._store.check()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (briefly) for background alert work; the engine stays usable."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def close(self, timeout_s: float = 5.0) -> None:
        """At shutdown: drain, then close the counter store."""
        await self._store.close()
        await self.drain(timeout_s)
        await self._counters.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no event loop (a synchronous caller): nothing to schedule on
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _store_failed(
        self,
        inp: AdmissionInput,
        items: list[Item],
        reservation_id: str,
        events: list[PolicyEvent],
        exc: StoreUnavailable,
        arrived_at: float,
    ) -> Admission:
        """fail_closed: a 503 saying when to retry. fail_open: admitted with nothing
        reserved; what the holds consume is charged once the store answers again."""
        detail = str(exc)[:200]
        events.append(
            PolicyEvent(
                kind="policy", rule_id="counter-store", action=self.failure_mode, detail=detail
            )
        )
        if self.failure_mode == "fail_closed":
            retry = self._store.retry_after()
            raise PolicyUnavailable(
                f"{exc} (limits and budgets cannot be checked; this gateway fails closed): "
                f"retry in {math.ceil(retry)}s",
                events=events,
                retry_after=retry,
            ) from exc
        return self._admission(
            inp,
            events,
            reservation_id=reservation_id,
            holds=tuple([i.hold for i in items]),
            unreserved_at=arrived_at,
        )

    def _admission(self, inp: AdmissionInput, events: list[PolicyEvent], **kw: Any) -> Admission:
        return Admission(
            request_id=inp.request_id,
            events=events,
            estimated_input_tokens=inp.estimated_input_tokens,
            reserved_output_tokens=inp.max_output_tokens or self._default_max_output,
            **kw,
        )

    def _admitted(
        self,
        inp: AdmissionInput,
        items: list[Item],
        result: AdmitResult,
        reservation_id: str,
        events: list[PolicyEvent],
        now: float,
    ) -> Admission:
        if self._policy.audits:
            for item, level in zip(items, result.levels):
                if item.breach.action == "audit" and item.exceeds(level):
                    events.append(_event(item, "audit", _over(item, level)))
        return self._admission(
            inp,
            events,
            reservation_id=reservation_id,
            holds=tuple([i.hold for i in items]),
            headers=rate_headers(items, result.levels, now) if self._rate_headers else {},
            priced_as=(
                _priced_as(items)
                if inp.worst_case_cost_usd is None or inp.unpriced_model is not None
                else None
            ),
        )

    def _fallback(
        self, inp: AdmissionInput, item: Item, events: list[PolicyEvent], model: str
    ) -> Admission:
        events.append(_event(item, "fallback", f"to {model}"))
        return self._admission(
            inp,
            events,
            fallback_model=model,
            fallback_rule_id=item.rule_id,
            fallback_kind=item.breach.fallback_kind,
        )

    def _blocked(
        self, item: Item, level: Level, now: float, events: list[PolicyEvent]
    ) -> PolicyBlocked:
        retry_after = max(0.0, item.window_end - now)
        events.append(_event(item, "hard_block", _over(item, level)))
        what = "budget" if item.kind == "budget" else "rate limit"
        fallback = item.breach.action == "fallback"  # nowhere to fall back to: a hard stop
        why = " (no cheaper model is configured to fall back to)" if fallback else ""
        return PolicyBlocked(
            f"{what} '{item.rule_id}' exceeded: {_over(item, level)}{why}; "
            f"retry in {math.ceil(retry_after)}s",
            rule_id=item.rule_id,
            retry_after=retry_after,
            code="budget_exceeded" if item.kind == "budget" else "rate_limit_exceeded",
            headers={"X-Sluice-Rule-ID": item.rule_id, "Retry-After": str(math.ceil(retry_after))},
            events=events,
        )

    def _schedule_alerts(self, items: list[Item], result: AdmitResult, now: float) -> None:
        if self._notifier is None:
            return
        for key, ttl, alert in budgets.due_alerts(items, result, now):
            if self._alerted.get(key, 0.0) > now:
                continue
            if len(self._alerted) > 10_000:
                self._alerted = {k: t for k, t in self._alerted.items() if t > now}
            self._alerted[key] = now + ttl
            self._spawn(self._fire(key, ttl, alert))

    async def _fire(self, key: str, ttl: float, alert: Alert) -> None:
        try:
            if await self._counters.mark_once(key, ttl) and self._notifier is not None:
                self._notifier.submit(alert)
        except Exception as exc:
            self._alerted.pop(key, None)  # try again on a later request
            log.warning("policy: alert %s not fired: %s", key, exc)


def _new_id(inp: AdmissionInput, serial: Iterator[int]) -> str:
    # request ids are unique; the serial tells apart re-admissions of one request
    return f"{inp.request_id}.{next(serial)}"


def _priced_as(items: list[Item]) -> tuple[str, ModelRate] | None:
    """The first budget that prices this unpriced call as another model, for the row."""
    for item in items:
        rate, budget = item.hold.rate, item.budget
        if rate is not None and budget is not None and budget.unpriced.model is not None:
            return budget.unpriced.model, rate
    return None


def _event(item: Item, action: str, detail: str) -> PolicyEvent:
    return PolicyEvent(kind=item.kind, rule_id=item.rule_id, action=action, detail=detail)


def _over(item: Item, level: Level) -> str:
    """What would be exceeded, for messages and event details."""
    window = item.window.label
    if item.kind == "budget":
        spent, held, need = level.used / 1e6, level.reserved / 1e6, item.check.amount / 1e6
        return (
            f"{budgets.usd(spent)} spent + {budgets.usd(held)} in flight + "
            f"{budgets.usd(need)} for this request > {budgets.usd(item.limit / 1e6)} ({window})"
        )
    measure = item.hold.measure
    unit = measure if measure == "requests" else f"{item.hold.token_type} tokens"
    held = level.used + level.reserved
    return f"{held} + {item.check.amount} {unit} > {item.limit} per {window} ({item.scope_label})"


class _Queue:
    """The waiting state of one admission held back by queue_then_429 rules. It polls
    (20 ms doubling to 250 ms, or until the window resets if that is sooner), because
    capacity also frees when other requests settle or release."""

    def __init__(
        self, sleep: Callable[[float], Awaitable[None]], monotonic: Callable[[], float]
    ) -> None:
        self._sleep = sleep
        self._monotonic = monotonic
        self.kind = ""
        self.rule_id = ""
        self.since: float | None = None
        self.deadline = 0.0
        self.poll = _POLL_S[0]

    async def wait(self, item: Item, now: float) -> bool:
        """Sleep before another try; False when the queue timeout is spent (or the
        request can never fit)."""
        if item.check.amount > item.limit:
            return False
        clock = self._monotonic()
        if self.since is None:
            self.since = clock
        if self.rule_id != item.rule_id:
            self.kind, self.rule_id = item.kind, item.rule_id
            self.deadline = self.since + item.queue_timeout_s
        remaining = self.deadline - clock
        if remaining <= 0:
            return False
        await self._sleep(min(self.poll, max(0.005, item.window_end - now), remaining))
        self.poll = min(self.poll * 2, _POLL_S[1])
        return True

    def events(self) -> list[PolicyEvent]:
        if self.since is None:
            return []
        waited = round((self._monotonic() - self.since) * 1000)
        detail = f"waited {waited} ms"
        return [PolicyEvent(kind=self.kind, rule_id=self.rule_id, action="queued", detail=detail)]
