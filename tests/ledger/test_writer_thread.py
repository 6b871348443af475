"""The ledger's writer threads: batches run at the lowest CPU priority while the ledger
keeps up, at the process's own once a batch's records finished long ago (a backlog, a
spool replay), so that a busy host cannot starve the ledger."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from sluicegate.errors import StoreUnavailable
from sluicegate.ledger.writer_thread import CATCH_UP_AFTER_S, LOWEST_NICE, WriterThreads
from tests.ledger.records import record


def test_a_fresh_batch_goes_to_the_background_thread_and_a_late_one_catches_up():
    threads = WriterThreads("test-ledger")
    try:
        now = time.time()
        fresh = [record(1, ts=now - 0.3, latency_ms=200.0), record(2, ts=now)]
        assert threads.for_batch(fresh) is threads.background
        # a long call that ended just now is not late: its finish is what counts
        long_call = [record(3, ts=now - 120, latency_ms=119_900.0)]
        assert threads.for_batch(long_call) is threads.background
        behind = [record(4, ts=now - CATCH_UP_AFTER_S - 1), record(5, ts=now)]
        assert threads.for_batch(behind) is threads.catch_up
    finally:
        threads.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_only_the_background_thread_runs_at_the_lowest_priority():
    threads = WriterThreads("test-ledger")
    try:

        def nice() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        own = nice()
        assert threads.background.submit(nice).result(5) == max(own, LOWEST_NICE)
        assert threads.catch_up.submit(nice).result(5) == own
        assert nice() == own  # the caller's (the event loop's) is untouched
    finally:
        threads.shutdown()


async def test_work_after_shutdown_is_refused_as_the_store_being_unavailable():
    threads = WriterThreads("test-ledger")
    batch = [record(1, ts=time.time())]
    assert await threads.run(batch, lambda: threading.get_native_id()) != threading.get_native_id()
    threads.shutdown()
    with pytest.raises(StoreUnavailable):
        await threads.run(batch, lambda: 1)
