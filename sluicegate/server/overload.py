"""Admission control for model calls, in the style of Envoy's overload manager, and the
watch on a client that leaves.

A worker serves at most `max_in_flight` model calls at once (a stream counts until its
last byte is sent). Past that, up to `max_queued` wait in a FIFO queue for at most
`queue_timeout_s`; a request that finds the queue full, or whose wait runs out, is shed:
answered at once with 503 + Retry-After in its client's format and recorded as
`overloaded`. Queueing without bounds is what made overload slow for everyone (p99 from
35 ms to over a second at 3x capacity, a third of the requests unanswered): a short queue
absorbs bursts, and the rest is refused while refusing is still cheap.

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
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_enter(self) -> bool:
        """Take a slot if one is free and nobody queues ahead (the hot path: no await)."""
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            return True
        return False

    def refusal(self) -> Overloaded | None:
        """The answer for a request that found no slot, if the queue has no place for it
        either (counted as shed); None: it may queue."""
        if len(self._waiters) >= self.max_queued:
            return self._shed("every in-flight slot and queue place of this worker is taken")
        return None

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

    def leave(self) -> None:
        """Give the slot back: to the first live waiter, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; in_flight is unchanged
                return
        self.in_flight -= 1

    def stats(self) -> dict[str, int]:
        return {
            "in_flight": self.in_flight,
            "queued": len(self._waiters),
            "max_in_flight": self.max_in_flight,
            "max_queued": self.max_queued,
            "shed": self.shed,
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

    __slots__ = ("_task", "_watch", "armed", "fired")

    def __init__(self, receive: Receive) -> None:
        self.armed = False
        self.fired = False
        self._task = asyncio.current_task()
        self._watch: asyncio.Future[Message] = asyncio.ensure_future(receive())
        self._watch.add_done_callback(self._gone)

    def left(self) -> bool:
        """Has the client gone, as far as this loop knows now? (The watch may have
        resolved without its callback having run yet.)"""
        return self.fired or (self._watch.done() and _disconnected(self._watch))

    async def last_look(self) -> bool:
        """`left()`, after letting the loop turn LAST_LOOK_TURNS times: the last check
        before a provider is called.

        A client that writes its request and closes in the same instant is the race:
        granian's I/O thread reads the close (hyper sees EOF once the body is read) and
        its blocking thread must take the GIL to resolve the watch, while this task holds
        the GIL and the core from the body to the upstream send. Each turn of the loop
        releases the GIL in its poll and runs callbacks delivered meanwhile. Measured
        (bench/overload.py, 1,600 such clients over 8 s on a loaded host): upstream calls
        for them 183-249 without a turn, 55-120 with one, 72-79 with two or three; it
        cannot reach zero (nothing in ASGI says "no close seen yet"). Yielding the core
        itself (`sched_yield`) reached zero but hands the core to other processes on a
        shared host (goodput fell by half): not done. Cost: two loop turns per admitted
        request, none for a shed one."""
        for _ in range(LAST_LOOK_TURNS):
            if self.left():
                return True
            await asyncio.sleep(0)
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
