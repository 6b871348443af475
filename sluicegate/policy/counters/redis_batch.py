"""Group commit for the Redis counter store: many concurrent callers, one call per batch.

Callers queue an item and wait for its own outcome; one flusher task hands the queue to
`send` in batches of up to `limit` items, and while one call is in flight the next batch
accumulates. Nothing lingers: batches form only from items that arrive while a call is in
flight, and a lone item goes out at once.

A failed call fails every caller of its batch with an exception of its own. A caller
that is cancelled does not cancel the others. What becomes of its item depends on the
kind of item:

- must-apply items (settlements): applied regardless; an idle coalescer starts the
  flusher, so a lone item goes out on the next turn of the event loop.
- abandonable items (admissions, given an `abandoned` hook): a cancelled caller's item is
  skipped while still queued, and an outcome nobody waits for any more goes to
  `abandoned(item, outcome)` (the store releases an admission made for nobody). A caller
  finding the coalescer idle makes its call itself, at once: a hop through the flusher
  task would let every task ready to run go first (at low load, measured: +0.2 ms a
  request in the gateway). Cancelled during that call, it leaves an unknown outcome:
  `abandoned(item, None)`.

`Keys` numbers the keys of one batched script call (the scripts name them by position).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sluicegate.errors import StoreUnavailable

I = TypeVar("I")  # noqa: E741 - an item queued by a caller
R = TypeVar("R")  # its outcome

log = logging.getLogger(__name__)


class Coalescer(Generic[I, R]):
    def __init__(
        self,
        send: Callable[[list[I]], Awaitable[Sequence[R | Exception]]],
        limit: int,
        what: str,
        *,
        abandoned: Callable[[I, R | None], None] | None = None,
        failed: Callable[[I], None] | None = None,
    ):
        """`send(items)` makes one call for the batch and returns one outcome per item, in
        order (an Exception fails that item's caller); raising fails them all.
        `abandoned`: makes items abandonable (see the module docstring); it must not
        raise. `failed(item)`: each item of a batch whose call raised StoreUnavailable
        (its caller fails all the same): the store keeps it to send again."""
        self.limit = max(1, limit)
        self._send = send
        self._what = what
        self._abandoned = abandoned
        self._failed = failed
        self._queue: list[tuple[I, asyncio.Future[R] | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._inline: asyncio.Future[None] | None = None  # a caller's own call, in flight

    async def call(self, item: I) -> R:
        """Return the outcome of `item` once its call is answered."""
        loop = asyncio.get_running_loop()
        if self._abandoned is not None and not self._busy(loop):
            return await self._call_inline(item, loop)
        future: asyncio.Future[R] = loop.create_future()
        self._put(item, future)
        try:
            return await future
        except asyncio.CancelledError:
            # Answered, but cancelled before this task resumed: the outcome is ours to drop.
            # (Had the future itself been cancelled, the flusher would have handed it on.)
            if (
                future.done()
                and not future.cancelled()
                and future.exception() is None
                and self._abandoned is not None
            ):
                self._abandoned(item, future.result())
            raise

    def put(self, item: I) -> None:
        """Queue `item` without waiting for it (its outcome is dropped; a failure logged)."""
        self._put(item, None)

    async def wait_idle(self) -> None:
        """Return once the queue is empty and no call is in flight (not cancelled if the
        caller is)."""
        loop = asyncio.get_running_loop()
        while self._busy(loop):
            pending = self._inline if self._inline is not None else self._flusher
            assert pending is not None
            await asyncio.wait({pending})

    def _busy(self, loop: asyncio.AbstractEventLoop) -> bool:
        flusher = self._flusher
        return self._inline is not None or (
            flusher is not None and not flusher.done() and flusher.get_loop() is loop
        )

    def _put(self, item: I, future: asyncio.Future[R] | None) -> None:
        loop = asyncio.get_running_loop()
        self._queue.append((item, future))
        if not self._busy(loop):
            self._flusher = loop.create_task(self._flush())

    async def _call_inline(self, item: I, loop: asyncio.AbstractEventLoop) -> R:
        """The call for a lone item, made by its caller; items queued meanwhile go to the
        flusher once it is answered."""
        assert self._abandoned is not None
        self._inline = loop.create_future()
        try:
            outcomes = await self._send([item])
        except asyncio.CancelledError:
            self._abandoned(item, None)  # sent or not, applied or not: unknown
            raise
        finally:
            self._inline.set_result(None)
            self._inline = None
            if self._queue:
                self._flusher = loop.create_task(self._flush())
        if len(outcomes) != 1:
            raise RuntimeError(f"{len(outcomes)} outcomes for 1 {self._what}")
        if isinstance(outcomes[0], Exception):
            raise outcomes[0]
        return outcomes[0]

    async def _flush(self) -> None:
        """Send the queue batch by batch until it is empty."""
        batch: list[tuple[I, asyncio.Future[R] | None]] = []
        try:
            while self._queue:
                batch = self._take()
                if batch:
                    await self._run(batch)
                batch = []
        except BaseException as exc:
            # Cancelled (the loop is going away), or a bug: nobody is left waiting. A batch
            # in flight may have been applied: an admission then stays reserved until its
            # ttl, as after any call whose outcome is unknown.
            why = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"failed ({exc!r})"
            failed, self._queue = batch + self._queue, []
            lost = StoreUnavailable(f"counter store (Redis): {self._what} {why}")
            for _, future in failed:
                _fail(future, lost)
            self._log_unwaited(sum(future is None for _, future in failed), lost)
            raise

    def _take(self) -> list[tuple[I, asyncio.Future[R] | None]]:
        batch: list[tuple[I, asyncio.Future[R] | None]] = []
        queue, taken = self._queue, 0
        while taken < len(queue) and len(batch) < self.limit:
            entry = queue[taken]
            taken += 1
            if not (self._abandoned and entry[1] is not None and entry[1].cancelled()):
                batch.append(entry)
        del queue[:taken]
        return batch

    async def _run(self, batch: list[tuple[I, asyncio.Future[R] | None]]) -> None:
        try:
            outcomes = await self._send([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} {self._what}s")
        except Exception as exc:
            for _, future in batch:
                _fail(future, exc)
            kept = self._failed is not None and isinstance(exc, StoreUnavailable)
            if kept and self._failed is not None:
                for item, _ in batch:
                    self._failed(item)
            self._log_unwaited(sum(future is None for _, future in batch), exc, kept)
            return
        for (item, future), outcome in zip(batch, outcomes):
            if isinstance(outcome, Exception):
                _fail(future, outcome)
                if future is None:
                    self._log_unwaited(1, outcome)
            elif future is None:
                pass
            elif future.cancelled():
                if self._abandoned is not None:
                    self._abandoned(item, outcome)
            elif not future.done():
                future.set_result(outcome)

    def _log_unwaited(self, count: int, exc: Exception, kept: bool = False) -> None:
        """Nobody waits for a queued-and-forgotten item (`put`): its failure is logged."""
        if count:
            again = " (kept to send again)" if kept else ""
            log.warning(
                "counter store (Redis): %d %s(s) not applied%s: %s", count, self._what, again, exc
            )


def _fail(future: asyncio.Future[R] | None, exc: Exception) -> None:
    """Each caller gets its own exception object (they are raised concurrently)."""
    if future is None or future.done():
        return
    mine: Exception = exc
    if isinstance(exc, StoreUnavailable):
        mine = StoreUnavailable(str(exc))
        mine.__cause__ = exc.__cause__
    future.set_exception(mine)


class Keys:
    """The KEYS of one batched script call, each key once (concurrent requests mostly
    share their counters; redis-py's cost grows with every argument): the batch argument
    names them by position (1-based)."""

    __slots__ = ("keys", "_at", "_base")

    def __init__(self, base: str):
        self.keys: list[str] = []
        self._at: dict[str, int] = {}
        self._base = base

    def counter(self, logical: str) -> int:
        """The position of the counter's hash; its sorted set follows it."""
        at = self._at.get(logical)
        if at is None:
            at = self._at[logical] = len(self.keys) + 1
            self.keys += (f"{self._base}c:{logical}", f"{self._base}z:{logical}")
        return at

    def reservation(self, reservation_id: str) -> int:
        self.keys.append(f"{self._base}r:{reservation_id}")
        return len(self.keys)

    def mark(self, key: str) -> int:
        """The position of a mark key (the seeding mark admit.lua checks)."""
        self.keys.append(key)
        return len(self.keys)
