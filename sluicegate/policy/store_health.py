"""The counter store's health and the budget spend it holds, for the policy engine.

    admit(checks)        the store's admit, skipped while it is known down (for
                         `retry_s` after a failure: admissions fail open or closed at
                         once instead of paying a timeout each); an outage and the
                         recovery are logged once each
    check()              ping (for /readyz, and every `check_s` once budgets were
                         rebuilt); a store that lost its data with no outage seen has
                         lost its seeding mark too: budget spend is rebuilt
    reseeded()           after StoreUnseeded: wait (at most `seed_wait_s`) for the one
                         rebuild every waiting admission shares
    rebuild(policy)      one pass of `budgets.rebuild` from the ledger, then the
                         seeding mark; passes repeat over the next minutes (`check_s` x
                         0.2, 1, 3, 9, 27, 81) for rows of requests in flight at a loss.
                         Each pass reads the ledger once every live replica's writer has
                         landed the rows of requests finished before the cutoffs
                         (`landed`, at most `landed_wait_s`): whichever pass finds the
                         store empty (a scheduled one may) makes the cutoffs `now`

Budget spend is rebuilt at start-up (`rebuild_budgets`), when a config adds a budget
window (the engine asks), after an outage and when the store lost its data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sluicegate.errors import StoreUnavailable, StoreUnseeded
from sluicegate.policy import budgets
from sluicegate.policy.compiled import CompiledPolicy
from sluicegate.policy.counters.base import AdmitResult, Check, CounterStore
from sluicegate.policy.landed_wait import LandedMarks, wait_landed

log = logging.getLogger("sluicegate.policy.engine")

SEEDED_MARK = "budgets-seeded"  # in the counter store while it holds seeded budget spend
_SEEDED_TTL_S = 400 * 86400  # should it lapse, one needless (harmless) rebuild
# Rebuild passes after a rebuild, in store checks (5 s): the first one once the ledger
# writer has flushed (every 0.2 s) what was settled before, the others for late rows.
_REFRESH_AFTER = (0.2, 1, 3, 9, 27, 81)
_WATCH_TICK_S = 0.25  # the watch wakes at least this often (a pass may fall due)


class StoreHealth:
    def __init__(
        self,
        counters: CounterStore,
        *,
        policy: Callable[[], CompiledPolicy],
        tasks: set[asyncio.Task[Any]],
        admits_while_down: str,
        clock: Callable[[], float],
        retry_s: float,
        check_s: float,
        seed_wait_s: float,
        landed_wait_s: float,
    ):
        self._counters = counters
        self._policy = policy  # the engine's live policy
        self._tasks = tasks  # the engine's background tasks (drained together)
        self._admits_while_down = admits_while_down  # for the outage log line
        self._clock = clock
        self.retry_s = retry_s
        self._check_s = check_s
        self._seed_wait_s = seed_wait_s
        self._landed_wait_s = landed_wait_s
        self._watch: asyncio.Task[None] | None = None
        self._reseeding: asyncio.Task[Any] | None = None  # the rebuild admissions wait for
        self._refresh_at: list[float] = []  # monotonic times of the next rebuild passes
        self._marked = False  # this engine set the seeding mark once
        self._down_until = 0.0  # monotonic; while in the future the store is not tried
        self.last_error: str | None = None
        self.sum_cost: budgets.SumCost | None = None  # the ledger, once rebuild_budgets ran
        self.landed: LandedMarks | None = None  # how far it landed (None: nothing to wait for)

    @property
    def healthy(self) -> bool:
        """False from a store failure until the next successful store call (for /readyz)."""
        return self.last_error is None

    def retry_after(self) -> float:
        """Seconds until the store is tried again (what a fail_closed refusal says)."""
        return max(self.retry_s, self._down_until - time.monotonic())

    async def admit(
        self, checks: Sequence[Check], reservation_id: str, ttl_s: float, arrived_at: float
    ) -> AdmitResult:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"counter store unavailable: {self.last_error}")
        try:
            result = await self._counters.admit(checks, reservation_id, ttl_s, arrived_at)
        except StoreUnseeded:
            raise  # it answers: not an outage
        except StoreUnavailable as exc:
            self.note_failure(exc)
            raise
        self.note_success()
        return result

    async def rebuild_budgets(
        self, sum_cost: budgets.SumCost, landed: LandedMarks | None = None
    ) -> list[dict[str, Any]]:
        """Rebuild budget spend from the ledger (run at start-up, before traffic); later
        rebuilds after a loss wait for `landed`. Never raises: an unreachable store or
        ledger is logged and reported."""
        self.sum_cost, self.landed = sum_cost, landed
        report = await self.rebuild(self._policy(), passes=True)
        if hasattr(self._counters, "ping") and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_store())
        return report

    async def check(self) -> bool:
        ping = getattr(self._counters, "ping", None)
        if ping is None:  # in process: it cannot lose its data without us
            return self.healthy
        was_down = self.last_error is not None
        try:
            await ping()
            lost = (
                not was_down
                and self.sum_cost is not None
                and not await self._counters.marked(SEEDED_MARK)
            )
        except StoreUnavailable as exc:
            self.note_failure(exc)
            return self.healthy
        self.note_success()  # after an outage: rebuilds
        if lost:
            self._start_reseed(lost=True)
        return self.healthy

    async def reseeded(self) -> bool:
        """The store lost its data: wait (at most `seed_wait_s`) for budget spend to be
        rebuilt, by one rebuild every waiting admission shares. True once it is."""
        task = self._start_reseed(lost=True)
        try:
            await asyncio.wait_for(asyncio.shield(task), self._seed_wait_s)
        except TimeoutError:
            return False
        return True

    def note_failure(self, exc: Exception) -> None:
        if self.last_error is None:
            log.warning(
                "policy: counter store unavailable, admitting %s until it returns: %s",
                self._admits_while_down,
                exc,
            )
        self.last_error = str(exc)
        self._down_until = time.monotonic() + self.retry_s

    def note_success(self) -> None:
        if self.last_error is None:
            return
        log.warning("policy: counter store reachable again; limits and budgets enforced")
        self.last_error, self._down_until = None, 0.0
        if self.sum_cost is not None:  # it may have restarted empty
            self._start_reseed(lost=False)

    async def rebuild(self, policy: CompiledPolicy, passes: bool = False) -> list[dict[str, Any]]:
        """One rebuild pass (`passes`: and schedule the passes that follow it)."""
        assert self.sum_cost is not None
        if passes:
            start = time.monotonic()
            self._refresh_at = [start + n * self._check_s for n in _REFRESH_AFTER]
        landed = self._wait_landed if self.landed is not None else None
        try:
            report = await budgets.rebuild(
                policy, self._counters, self.sum_cost, self._clock(), landed
            )
        except StoreUnavailable as exc:
            self.note_failure(exc)
            return [{"seeded": False, "reason": str(exc)}]
        except Exception as exc:  # the ledger store: enforcement goes on from what Redis has
            log.exception("policy: budget counters not rebuilt from the ledger")
            return [{"seeded": False, "reason": f"{type(exc).__name__}: {exc}"}]
        for row in report:
            if row.get("added_usd"):
                log.info(
                    "policy: budget %s (%s) seeded from the ledger: $%s spent before %s",
                    row["id"],
                    row["window"],
                    row.get("ledger_spent_usd"),
                    row.get("cutoff"),
                )
        try:  # what check() and admissions look for: the store holds the spend
            if await self._counters.mark_once(SEEDED_MARK, _SEEDED_TTL_S) and self._marked:
                log.warning(
                    "policy: the counter store had lost its data (no seeding mark): budget "
                    "spend rebuilt from the ledger"
                )
            self._marked = True
        except StoreUnavailable as exc:
            self.note_failure(exc)
        return report

    async def _wait_landed(self, cutoff: float) -> None:
        assert self.landed is not None
        await wait_landed(self.landed, cutoff, self._landed_wait_s)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None

    async def _watch_store(self) -> None:
        """The store check every `check_s`, and the rebuild passes when due."""
        next_check = time.monotonic() + self._check_s
        while True:
            due = min([next_check, *self._refresh_at[:1]])
            await asyncio.sleep(min(_WATCH_TICK_S, max(0.0, due - time.monotonic())))
            try:
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self._check_s
                    await self.check()
                if self._refresh_at and time.monotonic() >= self._refresh_at[0]:
                    self._refresh_at.pop(0)
                    await self.rebuild(self._policy())
            except Exception:  # a bug: logged, and the next check runs all the same
                log.exception("policy: counter store check failed")

    def _start_reseed(self, lost: bool) -> asyncio.Task[Any]:
        """The rebuild in progress, or a new one (`lost`: the store lost its data, not
        merely came back)."""
        task = self._reseeding
        if task is None or task.done():
            task = self._reseeding = asyncio.get_running_loop().create_task(self._reseed(lost))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return task

    async def _reseed(self, lost: bool) -> None:
        if self.sum_cost is None:  # nothing to rebuild from: the empty store is right
            try:
                await self._counters.mark_once(SEEDED_MARK, _SEEDED_TTL_S)
            except StoreUnavailable as exc:
                self.note_failure(exc)
            return
        if lost:
            log.warning("policy: the counter store lost its data (no seeding mark)")
        await self.rebuild(self._policy(), passes=True)
