"""The thread a ledger store does its blocking batch work on, at the lowest CPU priority.

A serve worker's event loop shares its core with this thread (bench/overload.py pins the
worker to one core; a container limited to one CPU is the same). At the default priority
the kernel gives the two turns: each 500-record batch's inserts and rollup deltas (10-13 ms
of CPU at ~1,700 req/s) delayed the loop by as much, every 250 ms, and those delays were
most of the 503 answers' p99 under overload (bench/README.md, "Overload"). At nice 19 the
thread runs when the loop waits for I/O, which at any load the gateway can serve it does
often; the batches' CPU is unchanged and still spent (a few % of the core), only later.

The priority is the thread's own (Linux applies setpriority to a thread id); where the
platform cannot, the thread keeps the process's priority.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

LOWEST_NICE = 19


def writer_thread(name: str) -> ThreadPoolExecutor:
    """One thread, lowered to the lowest CPU priority when it starts."""
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=name, initializer=_lower_this_threads_priority
    )


def _lower_this_threads_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_NICE)
