"""The threads a ledger store does its blocking batch work on: one at the lowest CPU
priority while the ledger keeps up, one at the process's own once it falls behind.

A serve worker's event loop shares its core with this work (bench/overload.py pins the
worker to one core; a container limited to one CPU is the same). At the default priority
the kernel gives the two turns: each 500-record batch's inserts and rollup deltas (10-13 ms
of CPU at ~1,700 req/s) delayed the loop by as much, every 250 ms, and those delays were
most of the 503 answers' p99 under overload (bench/README.md, "Overload"). At nice 19 the
work runs when the loop waits for I/O, which at any load the gateway can serve it does
often; the batches' CPU is unchanged, only later.

But on a host where other processes keep the core busy, a nice-19 thread barely runs:
measured there, the ledger fell ~50,000 records behind over 1M requests (RSS +34%). So a
batch whose oldest record finished more than `CATCH_UP_AFTER_S` ago is written on the
normal-priority thread instead, until the ledger has caught up. The two threads never
write at once (the store writes one batch at a time).

The priority is the thread's own (Linux applies setpriority to a thread id); where the
platform cannot, the thread keeps the process's priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sluicegate.errors import StoreUnavailable
from sluicegate.model.record import LedgerRecord

T = TypeVar("T")

LOWEST_NICE = 19
# Far above a batch's usual age (the writer flushes every 0.2 s), far below the time a
# backlog takes to fill the writer's queue.
CATCH_UP_AFTER_S = 1.0


class WriterThreads:
    def __init__(self, name: str) -> None:
        self.background = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name, initializer=_lower_this_threads_priority
        )
        self.catch_up = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-catch-up")

    def for_batch(self, records: Sequence[LedgerRecord]) -> ThreadPoolExecutor:
        """The thread for this batch: the background one unless the ledger is behind."""
        if records and _finished(records[0]) < time.time() - CATCH_UP_AFTER_S:
            return self.catch_up
        return self.background

    async def run(self, records: Sequence[LedgerRecord], work: Callable[[], T]) -> T:
        """`work` for this batch of `records`, on the thread `for_batch` picks;
        StoreUnavailable once the threads are shut down (the store was closed)."""
        loop = asyncio.get_running_loop()
        try:
            done = loop.run_in_executor(self.for_batch(records), work)
        except RuntimeError as exc:  # cannot schedule new futures after shutdown
            raise StoreUnavailable(f"ledger write: {exc}") from exc
        return await done

    def shutdown(self) -> None:
        """After the batch running, if any."""
        self.background.shutdown(wait=True)
        self.catch_up.shutdown(wait=True)


def _finished(record: LedgerRecord) -> float:
    return record.ts + (record.latency_ms or 0.0) / 1000


def _lower_this_threads_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_NICE)
