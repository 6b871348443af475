"""The ledger writer: the hot path enqueues, one background task writes in batches.

    record(rec) --put_nowait--> queue --batch--> store.write_batch
         | queue full                 | store down / failing
         v                            v
       spool  <------------------  spool  --replay when the store answers again--> store

`record` never blocks and never raises. A batch the store cannot take goes to the spool
and the store is left alone for `retry_interval` (new batches go straight to the spool);
then a replay probes it. A batch the store *refuses* (`StoreRejected`: bad data, not an
outage) is split in halves until the offending records are isolated; each is written again
with the text no dialect stores (NUL, lone surrogates) replaced, and only if the store
refuses that too is it set aside in the spool's rejected file, so one bad record never
jams the ledger. Nothing is dropped silently: the only loss is a spool that cannot take
more (full, disk errors, or an in-memory spool at shutdown), logged at ERROR with the
count and counted in `status().dropped`.

`landed_through()` says how far the ledger has landed: a time T (on the writer's clock)
such that every record accepted before T is in the store, none waiting in the queue, a
batch being written or the spool. A budget rebuild reads the ledger only once T (every
replica's: ledger/landed_marks.py) has passed the counters' cutoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress

import msgspec

from sluicegate.db.errors import StoreRejected
from sluicegate.ledger.spool import FileSpool, MemorySpool, Spool, SpoolFull
from sluicegate.ledger.store import LedgerStore
from sluicegate.model.record import LedgerRecord
from sluicegate.model.storable import storable

log = logging.getLogger(__name__)

LOSS_LOG_INTERVAL = 5.0  # seconds between ERROR lines while records keep being lost


class WriterStatus(msgspec.Struct, kw_only=True):
    queued: int  # accepted, not yet written or spooled
    spooled: int  # waiting in the spool for the store
    written: int
    set_aside: int
    dropped: int
    store_available: bool  # the last write or probe succeeded
    last_error: str | None  # why the last write or probe failed, while it is failing


class LedgerWriter:
    def __init__(
        self,
        store: LedgerStore,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        spool_path: str | None = None,
        spool: Spool | None = None,
        max_queue: int = 100_000,
        retry_interval: float = 2.0,
        close_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`spool` (else a `FileSpool` at `spool_path`, else in memory) holds what the
        store cannot take; `close_timeout` bounds the last replay attempt at shutdown;
        `clock` times `landed_through` (the clock requests' arrival times are read on)."""
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._close_timeout = close_timeout
        if spool is None:
            spool = FileSpool(spool_path) if spool_path else MemorySpool(max_queue)
        self._spool = spool
        self._queue: asyncio.Queue[LedgerRecord] = asyncio.Queue(max_queue)
        self._clock = clock
        # when each record not yet handled was accepted (bounded like the queue)
        self._accepted_at: deque[float] = deque()
        # landed_through() when the spool last went from empty to not (read while it is
        # not empty); a spool kept from an earlier run holds records older than any here
        self._unlanded_since: float | None = 0.0 if spool.count else None
        self._landed = asyncio.Event()  # set when landed_through() may have moved
        self._has_work = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._replay_lock = asyncio.Lock()
        self._flushers: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._accepted = self._handled = 0
        self._written = self._set_aside = self._dropped = 0
        self._down_until = 0.0
        self._spool_retry_at = 0.0
        self._last_error: str | None = None
        self._overflowing = False
        self._unlogged_losses = 0
        self._next_loss_log = 0.0

    # --- hot path ---------------------------------------------------------------
    def record(self, rec: LedgerRecord) -> None:
        """Queue one record (from the event loop's thread). Never blocks, never raises."""
        try:
            if self._closed:
                self._spool_append([rec])
                return
            self._queue.put_nowait(rec)
            self._accepted_at.append(self._clock())
        except asyncio.QueueFull:
            if not self._overflowing:
                log.warning("ledger queue full: spooling records straight to the spool")
                self._overflowing = True
            self._spool_append([rec])
            return
        except Exception:  # never let bookkeeping break a request
            log.exception("ledger writer could not take a record")
            return
        self._accepted += 1
        self._has_work.set()
        if self._queue.qsize() >= self._batch_size:
            self._batch_full.set()

    @property
    def spooling(self) -> bool:
        """The store is failing: new batches go to the spool until a probe succeeds."""
        return self._last_error is not None

    @property
    def spooled(self) -> int:
        return self._spool.count

    @property
    def pending(self) -> int:
        """Records not yet in the store: queued plus spooled."""
        return (self._accepted - self._handled) + self._spool.count

    def landed_through(self) -> float:
        """A time T on the writer's clock such that every record accepted before T is in
        the store (or set aside, or counted lost): see the module docstring."""
        oldest = self._accepted_at[0] if self._accepted_at else self._clock()
        if self._unlanded_since is None or not self._spool.count:
            return oldest
        return min(oldest, self._unlanded_since)

    async def landed_moved(self, timeout_s: float) -> None:
        """Return once `landed_through` may have moved (a batch was handled, the spool
        replayed), or after `timeout_s`."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._landed.wait(), timeout_s)
        self._landed.clear()

    def spool_info(self) -> dict[str, object]:
        """Where the spool is and how full (for /readyz)."""
        return self._spool.describe()

    def status(self) -> WriterStatus:
        return WriterStatus(
            queued=self._accepted - self._handled,
            spooled=self._spool.count,
            written=self._written,
            set_aside=self._set_aside,
            dropped=self._dropped,
            store_available=self._last_error is None,
            last_error=self._last_error,
        )

    # --- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")
            self._task.add_done_callback(self._on_worker_exit)

    async def flush(self) -> None:
        """Wait until every record accepted so far is written or spooled; then, unless
        the store is in its back-off after a failure, replay the spool."""
        if self._task is None or self._task.done():
            raise RuntimeError("ledger writer is not running")
        target = self._accepted
        if self._handled < target:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._flushers.append((target, done))
            self._has_work.set()
            self._batch_full.set()
            await done
        if self._spool.count and not self._store_down():
            await self.replay()

    async def close(self) -> None:
        """Flush, make a last replay attempt whatever the back-off, then stop the
        background task. Records that arrive later go to the spool."""
        if self._closed:
            return
        await self.start()
        while True:
            await self.flush()
            if self._spool.count:
                await self._last_replay()
            if self._handled >= self._accepted:  # nothing arrived meanwhile
                break
        self._closed = True
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        if self._spool.count and not self._spool.durable:
            self._lose(self._spool.count, "the in-memory spool ends with the process")
        elif self._spool.count:
            log.warning(
                "ledger: %d records wait in the spool %s for the next start",
                self._spool.count,
                self._spool.describe().get("path"),
            )
        self._log_losses(force=True)
        self._spool.close()

    async def _last_replay(self) -> None:
        """One more replay whatever the back-off, bounded: an unreachable host must not
        hold shutdown (a durable spool keeps what is not replayed)."""
        try:
            await asyncio.wait_for(self.replay(), self._close_timeout)
        except TimeoutError:
            log.warning(
                "ledger: the store did not answer within %ss at shutdown", self._close_timeout
            )

    async def replay(self) -> None:
        """Move spooled records to the store, until the spool is empty or the store fails."""
        async with self._replay_lock:
            try:
                while batch := self._spool.peek(self._batch_size):
                    if not await self._write(batch):
                        return
                    self._spool.commit()
                    if not self._spool.count:
                        self._landed.set()
            except OSError:
                log.exception("ledger spool could not be read; will retry")
                self._spool_retry_at = time.monotonic() + self._retry_interval

    # --- the background task ----------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a spool I/O error must not stop the writer
                log.exception("ledger writer step failed")
                await asyncio.sleep(self._flush_interval)

    async def _step(self) -> None:
        await self._wait_for_work()
        batch = await self._collect()
        if batch:
            await self._deliver(batch)
            self._handled += len(batch)
            for _ in batch:
                self._accepted_at.popleft()
            self._landed.set()
            self._release_flushers()
        elif self._queue.empty():
            self._overflowing = False
        if self._spool.count and time.monotonic() >= self._replay_due_at():
            await self.replay()
        self._log_losses()

    async def _wait_for_work(self) -> None:
        if not self._queue.empty():
            return
        self._has_work.clear()
        timeout = None
        if self._spool.count:
            timeout = max(0.0, self._replay_due_at() - time.monotonic())
        with suppress(TimeoutError):
            await asyncio.wait_for(self._has_work.wait(), timeout)

    async def _collect(self) -> list[LedgerRecord]:
        batch = self._drain([])
        if batch and len(batch) < self._batch_size and not self._flushers:
            self._batch_full.clear()  # linger so that batches fill under steady traffic
            with suppress(TimeoutError):
                await asyncio.wait_for(self._batch_full.wait(), self._flush_interval)
            self._drain(batch)
        return batch

    def _drain(self, batch: list[LedgerRecord]) -> list[LedgerRecord]:
        while len(batch) < self._batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _deliver(self, batch: list[LedgerRecord]) -> None:
        if self._store_down() or not await self._write(batch):
            self._spool_append(batch)

    async def _write(self, batch: list[LedgerRecord]) -> bool:
        """True once every record is stored or set aside; False if the store failed."""
        try:
            await self._store.write_batch(batch)
        except StoreRejected as exc:
            if len(batch) == 1:
                return await self._refused(batch[0], str(exc))
            middle = len(batch) // 2
            return await self._write(batch[:middle]) and await self._write(batch[middle:])
        except Exception as exc:  # StoreUnavailable, or anything else a store may raise
            self._mark_down(exc)
            return False
        self._written += len(batch)
        self._mark_up()
        return True

    async def _refused(self, rec: LedgerRecord, reason: str) -> bool:
        """The last line of defence for one record the store refused: written again with
        unstorable text replaced; set aside (durably) only if refused again."""
        cleaned = _storable_record(rec)
        if cleaned is not None:
            try:
                await self._store.write_batch([cleaned])
            except StoreRejected as exc:
                rec, reason = cleaned, str(exc)
            except Exception as exc:
                self._mark_down(exc)
                return False
            else:
                log.warning("ledger record %s: unstorable text replaced", rec.request_id)
                self._written += 1
                self._mark_up()
                return True
        self._reject(rec, reason)
        return True

    # --- bookkeeping ------------------------------------------------------------
    def _spool_append(self, records: Sequence[LedgerRecord]) -> None:
        if not self._spool.count:  # what it holds was accepted after this
            self._unlanded_since = self.landed_through()
        try:
            self._spool.append(records)
        except SpoolFull as exc:
            self._lose(exc.lost, str(exc))
        except (TypeError, ValueError):  # a value the spool cannot encode: clean, once
            self._spool_append_cleaned(records)
        except Exception as exc:
            self._lose(len(records), f"the spool failed: {type(exc).__name__}: {exc}")

    def _spool_append_cleaned(self, records: Sequence[LedgerRecord]) -> None:
        try:
            self._spool.append([_storable_record(r) or r for r in records])
        except SpoolFull as exc:
            self._lose(exc.lost, str(exc))
        except Exception as exc:
            self._lose(len(records), f"the spool failed: {type(exc).__name__}: {exc}")

    def _reject(self, rec: LedgerRecord, reason: str) -> None:
        log.error("ledger store refused record %s: %s", rec.request_id, reason)
        try:
            self._spool.set_aside([rec], reason)
            self._set_aside += 1
        except SpoolFull as exc:
            self._lose(exc.lost, f"could not set aside a refused record: {exc}")
        except Exception as exc:
            self._lose(1, f"could not set aside a refused record: {type(exc).__name__}: {exc}")

    def _lose(self, count: int, why: str) -> None:
        """Records that could not be kept anywhere: counted, and logged at ERROR with the
        count (at most one line every few seconds, so that a flood stays readable)."""
        self._dropped += count
        self._unlogged_losses += count
        if time.monotonic() >= self._next_loss_log:
            log.error("ledger: %d records LOST: %s", self._unlogged_losses, why)
            self._unlogged_losses = 0
            self._next_loss_log = time.monotonic() + LOSS_LOG_INTERVAL

    def _log_losses(self, *, force: bool = False) -> None:
        """The losses not logged yet, once their interval has passed (or now)."""
        if self._unlogged_losses and (force or time.monotonic() >= self._next_loss_log):
            log.error(
                "ledger: %d more records LOST (%d in all since start)",
                self._unlogged_losses,
                self._dropped,
            )
            self._unlogged_losses = 0
            self._next_loss_log = time.monotonic() + LOSS_LOG_INTERVAL

    def _replay_due_at(self) -> float:
        return max(self._down_until, self._spool_retry_at)

    def _store_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _mark_down(self, exc: Exception) -> None:
        if self._last_error is None:
            log.warning("ledger store unavailable, spooling: %s", exc)
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._down_until = time.monotonic() + self._retry_interval

    def _mark_up(self) -> None:
        if self._last_error is not None:
            log.info("ledger store is back; replaying %d spooled records", self._spool.count)
        self._last_error = None
        self._down_until = 0.0

    def _release_flushers(self) -> None:
        waiting = []
        for target, done in self._flushers:
            if self._handled >= target:
                if not done.done():
                    done.set_result(None)
            else:
                waiting.append((target, done))
        self._flushers = waiting

    def _on_worker_exit(self, task: asyncio.Task[None]) -> None:
        for _, done in self._flushers:
            if not done.done():
                done.set_exception(RuntimeError("ledger writer stopped"))
        self._flushers = []


def _storable_record(rec: LedgerRecord) -> LedgerRecord | None:
    """`rec` with the text no dialect stores replaced (and values no encoder takes as
    their repr); None when it holds none."""
    raw = msgspec.to_builtins(rec, enc_hook=repr)
    cleaned = msgspec.convert(storable(raw), LedgerRecord)
    return None if cleaned == rec else cleaned
