"""Admission control for model calls, in the style of Envoy's overload manager, and the
watch on a client that leaves.

A worker serves at most `max_in_flight` model calls at once (a stream counts until its
last byte is sent). Past that, up to `max_queued` wait in a FIFO queue for at most
`queue_timeout_s`; a request that finds the queue full, or that would not get a slot within
that deadline, is shed: answered at once with 503 + Retry-After in its client's format and
recorded as `overloaded`. Queueing without bounds is what made overload slow for everyone (p99 from
35 ms to over a second at 3x capacity, a third of the requests unanswered): a short queue
absorbs bursts, and the rest is refused while refusing is still cheap.

Whether a slot would come in time is estimated before queueing, by Little's law: with
every slot taken, slots free at `max_in_flight / mean hold time` a second, so the n-th in
line waits about `n x mean hold / max_in_flight`. A request whose expected wait is past
half the deadline is refused at once instead of queueing only to be refused at the
deadline (at 3x capacity, 44% of the 503s were such waits: they cost the client the whole
deadline and held a queue place). Half: the estimate is a mean, and releases come in
bursts (slots taken together free together), so a wait near the mean runs past it often;
with the whole deadline as the bound, a quarter of the 503s at 3x capacity still waited it
out (bench/overload.py). The mean is an exponentially weighted one over recent releases (the
last few dozen); before any slot has been released the queue is used as is. The deadline
still bounds the wait of a request the estimate let in.

Health endpoints and the admin API do not pass through the gate, so they answer while the
data plane is saturated.

`Departure` watches one request's connection. A client that leaves while queued or while
the provider is being called has its task cancelled: the upstream call is abandoned
(nothing sent yet: no provider call at all) and the ledger records 499. Granian (like
uvicorn) never cancels a handler itself; it only answers `receive()` with
`http.disconnect`, which nothing reads while the pipeline waits on the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from starlette.types import Message, Receive

from sluicegate.errors import Overloaded

# Loop turns before a provider is called, so that a close granian has already read is
# delivered first (Departure.last_look).
LAST_LOOK_TURNS = 2
# Weight of the newest slot hold time in the mean (about the last 16 releases count).
HOLD_WEIGHT = 1 / 16
# A request queues only if its expected wait is within this share of the deadline.
QUEUE_MARGIN = 0.5
# Share of the in-flight slots taken from which the gateway is crowded: an admitted call
# then waits the departure grace (Departure.last_look) before its provider is called.
# In-flight calls = rate x call time (Little), so the grace is paid where calls are long
# (where 2 ms is nothing) and skipped where they are short (where it doubled the added
# latency: bench/README.md); an eighth fills within ~15 ms of a 3x overload's onset.
CROWDED_SHARE = 1 / 8


class AdmissionGate:
    """In-flight slots and a bounded queue for one worker's event loop (no locks: one
    loop, and every method but `wait_turn` runs without suspending)."""

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_queued: int,
        queue_timeout_s: float,
        retry_after_s: float = 1.0,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.shed = 0  # requests refused since start (readyz shows it)
        self.mean_hold_s: float | None = None  # of recently released slots; None: none yet
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_enter(self) -> bool:
        """Take a slot if one is free and nobody queues ahead (the hot path: no await)."""
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            return True
        return False

    def crowded(self) -> bool:
        """Are slots getting scarce: at least CROWDED_SHARE of them taken, or anyone
        queued? Only then is an upstream call for a client that has already left worth a
        wait to avoid (`serve --departure-grace-ms`): it would hold a slot others may need.
        With slots to spare the watch still cancels such a call as soon as the close is
        seen, and it is billed at its reservation, so no call pays the grace's latency."""
        return bool(self._waiters) or self.in_flight >= self.max_in_flight * CROWDED_SHARE

    def refusal(self) -> Overloaded | None:
        """The answer for a request that found no slot, if the queue has no place for it
        either, or none that would be served before the deadline (counted as shed); None:
        it may queue."""
        if len(self._waiters) >= self.max_queued:
            return self._shed("every in-flight slot and queue place of this worker is taken")
        expected = self.expected_wait_s()
        if expected is not None and expected > self.queue_timeout_s * QUEUE_MARGIN:
            return self._shed(
                f"no in-flight slot expected within {self.queue_timeout_s * 1000:.0f} ms "
                f"(about {expected * 1000:.0f} ms at the recent rate)"
            )
        return None

    def expected_wait_s(self) -> float | None:
        """How long a request queued now would wait for a slot (Little's law, see the
        module's docstring); None before any slot has been released."""
        if self.mean_hold_s is None:
            return None
        return (len(self._waiters) + 1) * self.mean_hold_s / self.max_in_flight

    async def wait_turn(self) -> None:
        """Queue for a slot. Overloaded when the queue is full or the wait runs out;
        a cancelled waiter (its client left) gives back a slot it was just handed."""
        shed = self.refusal()
        if shed is not None:
            raise shed
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await waiter
        except TimeoutError:
            if not _granted(waiter):
                raise self._shed(
                    f"no in-flight slot freed within {self.queue_timeout_s * 1000:.0f} ms"
                ) from None
        except BaseException:
            if _granted(waiter):
                self.leave()
            raise
        finally:
            if not waiter.done() or waiter.cancelled():
                self._remove(waiter)

    def leave(self, held_s: float | None = None) -> None:
        """Give the slot back: to the first live waiter, else to the pool. `held_s`: how
        long it was held (feeds the expected wait; None: a slot handed over and given back
        unused)."""
        if held_s is not None:
            mean = self.mean_hold_s
            self.mean_hold_s = held_s if mean is None else mean + HOLD_WEIGHT * (held_s - mean)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; in_flight is unchanged
                return
        self.in_flight -= 1

    def stats(self) -> dict[str, int | float | None]:
        return {
            "in_flight": self.in_flight,
            "queued": len(self._waiters),
            "max_in_flight": self.max_in_flight,
            "max_queued": self.max_queued,
            "shed": self.shed,
            "mean_hold_ms": None if self.mean_hold_s is None else round(self.mean_hold_s * 1000, 1),
        }

    def _shed(self, why: str) -> Overloaded:
        self.shed += 1
        return Overloaded(f"the gateway is overloaded: {why}", retry_after=self.retry_after_s)

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)  # at most max_queued long


def _granted(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled()


class Departure:
    """Cancels the task serving a request when its client leaves, while `armed`.

    It keeps one pending `receive()` (after the body: the next message can only be
    `http.disconnect`). Under granian that is a future with callbacks, so the watch costs
    no task; under other servers `receive()` is a coroutine and gets one. Disarmed before
    the answer is sent: a client that leaves then is the sender's business.
    """

    __slots__ = ("_grace_s", "_task", "_watch", "armed", "fired")

    def __init__(self, receive: Receive, *, grace_s: float = 0.0) -> None:
        self.armed = False
        self.fired = False
        self._grace_s = grace_s
        self._task = asyncio.current_task()
        self._watch: asyncio.Future[Message] = asyncio.ensure_future(receive())
        self._watch.add_done_callback(self._gone)

    def left(self) -> bool:
        """Has the client gone, as far as this loop knows now? (The watch may have
        resolved without its callback having run yet.)"""
        return self.fired or (self._watch.done() and _disconnected(self._watch))

    async def last_look(self) -> bool:
        """`left()`, after letting the loop turn LAST_LOOK_TURNS times and then waiting
        `grace_s` (`serve --departure-grace-ms`): the last check before a provider is
        called.

        A client that writes its request and closes in the same instant is the race:
        granian's I/O thread reads the close (hyper sees EOF once the body is read) and
        its thread must take the GIL to resolve the watch, while this task holds the GIL
        and the core from the body to the upstream send. Nothing in ASGI says "no close
        seen yet", so only time lets it through: each turn of the loop releases the GIL
        in its poll, and a wait on a timer lets the other requests run meanwhile, so it
        costs latency, not CPU. Measured (bench/overload.py, one client in ten closing as
        it sends, ~1,800 of them in 10 s, quiet host): upstream calls for them 407 with
        two turns only, 24 with 1 ms of grace, 0 with 2 ms (the default). Yielding the
        core instead (`sched_yield`) also reached zero but handed the core to other
        processes on a shared host (goodput fell by half)."""
        for _ in range(LAST_LOOK_TURNS):
            if self.left():
                return True
            await asyncio.sleep(0)
        if self._grace_s > 0 and not self.left():
            await asyncio.sleep(self._grace_s)
        return self.left()

    def _gone(self, watch: asyncio.Future[Message]) -> None:
        if not _disconnected(watch):
            return
        self.fired = True
        if self.armed and self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        self.armed = False
        self._watch.remove_done_callback(self._gone)
        if isinstance(self._watch, asyncio.Task):
            self._watch.cancel()


def _disconnected(watch: asyncio.Future[Message]) -> bool:
    if watch.cancelled() or watch.exception() is not None:
        return False
    return bool(watch.result().get("type") == "http.disconnect")
