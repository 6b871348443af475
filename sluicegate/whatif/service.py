"""`WhatIf.run`: a config change replayed on the ledger before it is applied.

    validate     the change as `apply --dry-run` would make it (ConfigService: the same
                 parsing, set checks, compile and warnings; invalid -> the same 400)
    compile      the resulting set and the set it replaces, as the gateway compiles them
    seed         budget spend from before the window, from the ledger
    replay       the window's rows, oldest first, a page at a time: the next page is read
                 while a worker thread replays this one (`Replayer.replay_page`)
    assemble     the report

Nothing live changes: no version is written, no live counter touched. Bounded: at most
`max_rows` rows (then `truncated`), `deadline_s` of wall clock (then a 503 saying how far
it got), `max_running` what-ifs at once per process (then a 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.parse import Document, Format
from sluicegate.config.service import ApplyResult, ConfigService
from sluicegate.errors import SluiceError
from sluicegate.policy.budgets import SumCost
from sluicegate.policy.windows import iso
from sluicegate.server.config_review import CompiledConfig
from sluicegate.whatif.assemble import WhatIfReport, assemble
from sluicegate.whatif.replayer import Replayer
from sluicegate.whatif.rows import key_names, read_page
from sluicegate.whatif.window import ReplayWindow

T = TypeVar("T")
Compile = Callable[[ConfigSnapshot], CompiledConfig]
FLUSH_WAIT_S = 5.0  # for the ledger writer to land what has finished (read-your-writes)


class WhatIfLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_rows: int = 2_000_000
    deadline_s: float = 300.0
    page_rows: int = 500  # each page's rows are built on the event loop: keep it short
    max_counter_keys: int = 50_000  # per rule window, as in-memory counters cap them
    max_running: int = 1  # per process: each takes a core while it runs


class WhatIfBusy(SluiceError):
    status = 429
    error_type = "rate_limit_error"
    code = "what_if_busy"


class WhatIfDeadline(SluiceError):
    status = 503
    error_type = "timeout_error"
    code = "what_if_deadline"


class WhatIf:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        config: ConfigService,
        compile: Compile,
        sum_cost: SumCost,
        flush: Callable[[], Awaitable[None]],
        limits: WhatIfLimits = WhatIfLimits(),
    ) -> None:
        self._engine = engine
        self._config = config
        self._compile = compile
        self._sum_cost = sum_cost
        self._flush = flush
        self.limits = limits
        self._running = 0

    async def run(
        self,
        text: str,
        window: ReplayWindow,
        *,
        applied_by: str,
        replace: bool = False,
        strict: bool = False,
        format: Format = "auto",
    ) -> WhatIfReport:
        """The report; ConfigValidationError (400) for a change apply would refuse,
        WhatIfBusy (429), WhatIfDeadline (503), StoreUnavailable (503)."""
        if self._running >= self.limits.max_running:
            raise WhatIfBusy(
                f"{self.limits.max_running} what-ifs are already running on this gateway; "
                "try again when one has finished"
            )
        self._running += 1
        try:
            return await self._run(text, window, applied_by, replace, strict, format)
        finally:
            self._running -= 1

    async def _run(
        self,
        text: str,
        window: ReplayWindow,
        applied_by: str,
        replace: bool,
        strict: bool,
        format: Format,
    ) -> WhatIfReport:
        started = time.monotonic()
        deadline = started + self.limits.deadline_s
        result = await self._config.apply(
            text,
            applied_by=applied_by,
            dry_run=True,
            replace=replace,
            format=format,
            strict=strict,
            source_name="what-if",
        )
        proposed, live = await asyncio.to_thread(self._compile_both, result)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(), FLUSH_WAIT_S)
        names = await key_names(self._engine)
        replayer = Replayer(live, proposed, names, max_counter_keys=self.limits.max_counter_keys)
        progress = _Progress(replayer, self.limits.deadline_s)
        seeded = await progress.within(
            deadline, replayer.policy.seed_budgets(self._sum_cost, window.since)
        )
        truncated = await self._replay(replayer, window, deadline, progress)
        return assemble(
            replayer,
            result,
            window,
            seeded,
            truncated=truncated,
            max_rows=self.limits.max_rows,
            elapsed_s=time.monotonic() - started,
        )

    def _compile_both(self, result: ApplyResult) -> tuple[CompiledConfig, CompiledConfig]:
        """The proposed set and the live one, compiled (in a worker thread: catalogues
        and price look-ups take a while)."""
        return self._compile(_snapshot(result.resulting)), self._compile_live(result.replacing)

    def _compile_live(self, documents: Sequence[Document]) -> CompiledConfig:
        """The set in place; should it no longer compile, the gateway's defaults."""
        try:
            return self._compile(_snapshot(documents))
        except Exception:  # it was compiled when applied; a later catalogue may differ
            return self._compile(_snapshot(()))

    async def _replay(
        self, replayer: Replayer, window: ReplayWindow, deadline: float, progress: _Progress
    ) -> str | None:
        """Every page of the window through the replayer; "max_rows" if the row bound
        stopped it before the end, else None."""
        limits = self.limits

        def fetch(after: tuple[float, str] | None, size: int) -> asyncio.Task[list[Any]]:
            page = read_page(self._engine, window.since, window.until, after, size)
            return asyncio.get_running_loop().create_task(page)

        read = 0
        size = min(limits.page_rows, limits.max_rows)
        pending: asyncio.Task[list[Any]] | None = fetch(None, size)
        try:
            while pending is not None:
                page = await progress.within(deadline, pending)
                if not page:
                    return None
                read += len(page)
                full = len(page) == size
                after = (page[-1].ts, page[-1].request_id)
                size = min(limits.page_rows, limits.max_rows - read)
                pending = fetch(after, size) if full and size > 0 else None
                await progress.within(deadline, asyncio.to_thread(replayer.replay_page, page))
                if full and size <= 0:  # the bound: are there rows it leaves out?
                    more = await progress.within(deadline, fetch(after, 1))
                    return "max_rows" if more else None
            return None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()


class _Progress:
    """Waits bounded by the what-if's deadline; past it, a 503 saying how far it got."""

    def __init__(self, replayer: Replayer, deadline_s: float) -> None:
        self._replayer = replayer
        self._deadline_s = deadline_s

    async def within(self, deadline: float, awaitable: Awaitable[T]) -> T:
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return await asyncio.wait_for(awaitable, remaining)
        except TimeoutError:
            if isinstance(awaitable, asyncio.Future) and not awaitable.done():
                awaitable.cancel()
            elif asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" warning
            last = self._replayer.last
            where = f" up to {iso(last[0])}" if last else ""
            raise WhatIfDeadline(
                f"the what-if did not finish within {self._deadline_s:g}s (it replayed "
                f"{self._replayer.rows:,} rows{where}); replay a shorter window, or raise "
                "serve's --what-if-deadline"
            ) from None


def _snapshot(documents: Sequence[Document]) -> ConfigSnapshot:
    return ConfigSnapshot.build(0, documents, loaded_at=0.0)
