"""Keeping an in-memory index of a table in step with the database: a background loop
that asks the store for its version (the largest `updated_at`) every interval and
reloads when it moved, serving the last loaded index while the store is down.

Virtual keys (`keys.py`) and admin API tokens (`admin_tokens.py`) both use it, so a
revocation reaches every replica within one interval, and an outage is logged the same
way for both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sluicegate.errors import StoreUnavailable


class OutageLog:
    """How a refresh reports a store outage: one warning when it starts (with a traceback
    only for an error that is not a known store error), then at most one every `every`
    seconds while it lasts, and one line when it ends. Polling twice a second, a traceback
    per failure buried everything else in the log."""

    def __init__(self, log: logging.Logger, what: str, serving: str, every: float) -> None:
        """`what`: the loop's name in the log ("key refresh"); `serving`: what is used
        meanwhile ("the last loaded keys")."""
        self._log = log
        self._what = what
        self._serving = serving
        self._every = every
        self._since: float | None = None
        self._last = 0.0
        self._failures = 0

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._failures += 1
        if self._since is None:
            self._since = self._last = now
            self._log.warning(
                "%s failed; serving %s until the store answers: %s",
                self._what,
                self._serving,
                exc,
                exc_info=not isinstance(exc, StoreUnavailable),
            )
        elif now - self._last >= self._every:
            self._last = now
            self._log.warning(
                "%s still failing after %.1f s (%d attempts); serving %s: %s",
                self._what,
                now - self._since,
                self._failures,
                self._serving,
                exc,
            )

    def succeeded(self) -> None:
        if self._since is None:
            return
        self._log.warning(
            "%s works again after %.1f s and %d failed attempts",
            self._what,
            time.monotonic() - self._since,
            self._failures,
        )
        self._since, self._failures = None, 0


class PollLoop:
    """Runs `step` every `interval` seconds in a task of its own until stopped; a step
    that raises is reported to the OutageLog and tried again at the next interval."""

    def __init__(self, step: Callable[[], Awaitable[None]], outage: OutageLog, name: str) -> None:
        self._step = step
        self._outage = outage
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self, interval: float) -> None:
        self._task = asyncio.create_task(self._run(interval), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._step()
            except Exception as exc:  # the store may be briefly down; keep the old index
                self._outage.failed(exc)
            else:
                self._outage.succeeded()
