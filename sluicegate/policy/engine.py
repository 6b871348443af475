"""The policy engine: rate limits and budgets enforced before the call, settled after it.

    admit(input)
      plan: every matching rule and budget window -> one counter check each (config order)
      store.admit(checks)            one atomic call: all reserved, or none
      ok      -> Admission(reservation, events, X-RateLimit-* headers); alerts in background
      breach  -> by the first breached check's action:
                 hard_block  raise PolicyBlocked (429, rule id, Retry-After)
                 queue       sleep (poll / until the window resets), plan again; 429 at timeout
                 fallback    Admission(fallback_model, fallback_rule_id), nothing reserved
    settle(admission, usage, cost)   reservations -> actuals; never raises

A rule listed in `exempt_rule_ids`, and an `audit` rule, is counted but not enforced
(an audit breach admits and records an event). Store failures follow `failure_mode`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from sluicegate.errors import StoreUnavailable
from sluicegate.model.record import PolicyEvent
from sluicegate.model.usage import Usage
from sluicegate.policy import budgets
from sluicegate.policy.admission import (
    Admission,
    AdmissionInput,
    Item,
    PolicyBlocked,
    actual_amount,
    plan,
    rate_headers,
)
from sluicegate.policy.compiled import CompiledPolicy
from sluicegate.policy.counters.base import AdmitResult, CounterStore, Level
from sluicegate.policy.notify import Alert, AlertSink

log = logging.getLogger(__name__)

FailureMode = Literal["fail_open", "fail_closed"]
_POLL_S = (0.02, 0.25)  # queue polling: first interval, cap


class PolicyEngine:
    def __init__(
        self,
        counters: CounterStore,
        *,
        notifier: AlertSink | None = None,
        failure_mode: FailureMode = "fail_open",
        clock: Callable[[], float] = time.time,
        reservation_ttl_s: float = 600.0,
        default_max_output_tokens: int = 4096,
        store_retry_s: float = 1.0,
    ):
        if failure_mode not in ("fail_open", "fail_closed"):
            raise ValueError(f"failure_mode is fail_open or fail_closed, not {failure_mode!r}")
        self._counters = counters
        self._notifier = notifier
        self.failure_mode: FailureMode = failure_mode
        self._clock = clock
        self._ttl_s = reservation_ttl_s
        self._default_max_output = default_max_output_tokens
        self._store_retry_s = store_retry_s
        self._policy = CompiledPolicy()
        self._down_until = 0.0  # monotonic; while in the future the store is not tried
        self.last_error: str | None = None
        self._alerted: dict[str, float] = {}  # mark key -> clock time it lapses
        self._tasks: set[asyncio.Task[None]] = set()

    def set_policy(self, compiled: CompiledPolicy) -> None:
        """Swap the policy (hot reload). Admissions in flight keep the one they started with."""
        self._policy = compiled

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    @property
    def healthy(self) -> bool:
        """False from a store failure until the next successful store call (for /readyz)."""
        return self.last_error is None

    async def admit(self, inp: AdmissionInput) -> Admission:
        policy = self._policy
        events: list[PolicyEvent] = []
        loop = asyncio.get_running_loop()
        queued: tuple[str, str, float, float] | None = None  # kind, rule, since, deadline
        poll = _POLL_S[0]
        while True:
            now = self._clock()
            items = plan(policy, inp, now, self._default_max_output)
            if not items:
                return self._admission(inp, events)
            reservation_id = _new_id(inp)
            try:
                result = await self._store_admit(items, reservation_id)
            except StoreUnavailable as exc:
                return self._store_failed(inp, events, exc)
            self._schedule_alerts(items, result, now)
            if result.ok:
                if queued:
                    events.append(_queued_event(queued, loop.time()))
                return self._admitted(inp, items, result, reservation_id, events, now)
            item = items[result.failed_index or 0]
            level = result.levels[result.failed_index or 0]
            action = item.breach.action
            if action == "queue" and item.check.amount <= item.limit:
                if queued is None or queued[1] != item.rule_id:
                    since = queued[2] if queued else loop.time()
                    queued = (item.kind, item.rule_id, since, since + item.queue_timeout_s)
                remaining = queued[3] - loop.time()
                if remaining > 0:
                    await asyncio.sleep(min(poll, max(0.005, item.window_end - now), remaining))
                    poll = min(poll * 2, _POLL_S[1])
                    continue
                events.append(_queued_event(queued, loop.time()))
            elif action == "fallback" and item.breach.fallback_model != inp.model:
                return self._fallback(inp, item, events)
            raise self._blocked(item, level, now, events)

    async def settle(self, admission: Admission, usage: Usage | None, cost_usd: float | None) -> None:
        """Replace reservations by actual consumption: tokens by `usage` (None releases
        them), budgets by `cost_usd` (None releases); the request itself stays counted.
        Settling twice does nothing. Never raises: errors are logged."""
        if admission.reservation_id is None or admission.settled:
            return
        admission.settled = True
        actuals = {h.key: actual_amount(h, admission, usage, cost_usd) for h in admission.holds}
        try:
            await self._counters.settle(admission.reservation_id, actuals)
        except StoreUnavailable as exc:
            self._note_failure(exc)
            log.warning("policy: could not settle %s: %s", admission.request_id, exc)
        except Exception:
            log.exception("policy: could not settle %s", admission.request_id)

    async def release(self, admission: Admission) -> None:
        """Undo an admission entirely, the request count included. Never raises."""
        if admission.reservation_id is None or admission.settled:
            return
        admission.settled = True
        try:
            await self._counters.release(admission.reservation_id)
        except Exception as exc:
            log.warning("policy: could not release %s: %s", admission.request_id, exc)

    async def budget_status(self) -> list[dict[str, Any]]:
        """Per budget and window, for GET /api/budgets. Raises StoreUnavailable."""
        return await budgets.budget_status(self._policy, self._counters, self._clock())

    async def rebuild_budgets(self, sum_cost: budgets.SumCost) -> list[dict[str, Any]]:
        """Seed absent budget counters from the ledger (run at start-up, before traffic)."""
        return await budgets.rebuild(self._policy, self._counters, sum_cost, self._clock())

    async def close(self, timeout_s: float = 5.0) -> None:
        """Wait briefly for background alert work."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def _store_admit(self, items: list[Item], reservation_id: str) -> AdmitResult:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"counter store unavailable: {self.last_error}")
        try:
            result = await self._counters.admit([i.check for i in items], reservation_id, self._ttl_s)
        except StoreUnavailable as exc:
            self._note_failure(exc)
            raise
        self.last_error = None
        return result

    def _note_failure(self, exc: Exception) -> None:
        self.last_error = str(exc)
        self._down_until = time.monotonic() + self._store_retry_s

    def _store_failed(self, inp: AdmissionInput, events: list[PolicyEvent], exc: StoreUnavailable) -> Admission:
        if self.failure_mode == "fail_closed":
            raise exc
        events.append(PolicyEvent(kind="policy", rule_id="counter-store", action="fail_open",
                                  detail=str(exc)[:200]))  # fmt: skip
        return self._admission(inp, events)

    def _admission(self, inp: AdmissionInput, events: list[PolicyEvent], **kw: Any) -> Admission:
        return Admission(
            request_id=inp.request_id,
            events=events,
            estimated_input_tokens=inp.estimated_input_tokens,
            reserved_output_tokens=inp.max_output_tokens or self._default_max_output,
            **kw,
        )

    def _admitted(self, inp: AdmissionInput, items: list[Item], result: AdmitResult,
                  reservation_id: str, events: list[PolicyEvent], now: float) -> Admission:  # fmt: skip
        for item, level in zip(items, result.levels):
            if item.breach.action == "audit" and item.exceeds(level):
                events.append(PolicyEvent(kind=item.kind, rule_id=item.rule_id, action="audit",
                                          detail=_over(item, level)))  # fmt: skip
        return self._admission(
            inp,
            events,
            reservation_id=reservation_id,
            holds=tuple(i.hold for i in items),
            headers=rate_headers(items, result.levels, now),
        )

    def _fallback(self, inp: AdmissionInput, item: Item, events: list[PolicyEvent]) -> Admission:
        model = item.breach.fallback_model
        events.append(PolicyEvent(kind=item.kind, rule_id=item.rule_id, action="fallback",
                                  detail=f"to {model or 'a cheaper model'}"))  # fmt: skip
        return self._admission(inp, events, fallback_model=model, fallback_rule_id=item.rule_id,
                               fallback_kind=item.breach.fallback_kind)  # fmt: skip

    def _blocked(self, item: Item, level: Level, now: float, events: list[PolicyEvent]) -> PolicyBlocked:
        retry_after = max(0.0, item.window_end - now)
        events.append(PolicyEvent(kind=item.kind, rule_id=item.rule_id, action="hard_block",
                                  detail=_over(item, level)))  # fmt: skip
        what = "budget" if item.kind == "budget" else "rate limit"
        return PolicyBlocked(
            f"{what} '{item.rule_id}' exceeded: {_over(item, level)}; retry in {math.ceil(retry_after)}s",
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
            task = asyncio.get_running_loop().create_task(self._fire(key, ttl, alert))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fire(self, key: str, ttl: float, alert: Alert) -> None:
        try:
            if await self._counters.mark_once(key, ttl) and self._notifier is not None:
                self._notifier.submit(alert)
        except Exception as exc:
            self._alerted.pop(key, None)  # try again on a later request
            log.warning("policy: alert %s not fired: %s", key, exc)


def _new_id(inp: AdmissionInput) -> str:
    return f"{inp.request_id}.{uuid.uuid4().hex[:8]}"


def _queued_event(queued: tuple[str, str, float, float], now: float) -> PolicyEvent:
    kind, rule_id, since, _ = queued
    return PolicyEvent(kind=kind, rule_id=rule_id, action="queued",
                       detail=f"waited {round((now - since) * 1000)} ms")  # fmt: skip


def _over(item: Item, level: Level) -> str:
    if item.kind == "budget":
        return (f"${level.used / 1e6:,.2f} spent + ${level.reserved / 1e6:,.2f} in flight + "
                f"${item.check.amount / 1e6:,.2f} for this request > ${item.limit / 1e6:,.2f} "
                f"({item.window.label})")  # fmt: skip
    unit = item.hold.measure if item.hold.measure == "requests" else f"{item.hold.token_type} tokens"
    return (f"{level.used + level.reserved} + {item.check.amount} {unit} > {item.limit} per "
            f"{item.window.label} ({item.scope_label})")  # fmt: skip
