"""The plan run against a gateway: sessions side by side (at most `concurrency`), each
session's calls in order, its outcome reported when it ends. Bounded by the plan's size
and by `duration_s` (sessions still running then are cancelled); every call has its own
timeout (drivers). A rich progress bar counts calls."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sluicegate.demo.drivers import SessionDriver
from sluicegate.demo.outcomes import report_outcome
from sluicegate.demo.plan import DemoPlan, PlannedSession

LOOP_STOP_AFTER = 5  # the looping agent gives up after this many refusals in a row


@dataclass
class RunResult:
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[int] = field(default_factory=Counter)
    finished: bool = True  # False: the duration ran out first

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        return " ".join(
            f"{status or 'no answer'}:{n}" for status, n in sorted(self.statuses.items())
        )


@dataclass(frozen=True)
class Target:
    url: str
    admin_key: str
    keys: dict[str, str]  # user id -> API key
    github_secret: str | None = None


async def run(
    target: Target,
    demo_plan: DemoPlan,
    *,
    concurrency: int,
    duration_s: float,
    show_progress: bool = True,
) -> RunResult:
    result = RunResult()
    slots = asyncio.Semaphore(max(1, concurrency))
    progress = Progress(
        TextColumn("demo traffic"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[summary]}"),
        disable=not show_progress,
    )
    task = progress.add_task("calls", total=demo_plan.requests, summary="")

    def counted(status: int) -> None:
        result.statuses[status] += 1
        progress.update(task, completed=result.calls, summary=result.summary())

    async with httpx.AsyncClient(
        base_url=target.url, headers={"authorization": f"Bearer {target.admin_key}"}
    ) as admin:

        async def one(session: PlannedSession) -> None:
            async with slots:
                if await _run_session(target, session, counted):
                    status = await report_outcome(admin, session, target.github_secret)
                    if session.outcome is not None:
                        result.outcomes[status] += 1

        with progress:
            try:
                async with asyncio.timeout(duration_s):
                    await asyncio.gather(*(one(s) for s in demo_plan.sessions))
            except TimeoutError:
                result.finished = False
    return result


async def _run_session(
    target: Target, session: PlannedSession, counted: Callable[[int], None]
) -> bool:
    """Send the session's calls in order; True when at least one was answered 200."""
    driver = SessionDriver(target.url, target.keys[session.user.user_id], session)
    answered, refused_in_a_row = False, 0
    try:
        for call in session.calls:
            answer = await driver.send(call)
            counted(answer.status)
            answered = answered or answer.status == 200
            refused_in_a_row = refused_in_a_row + 1 if answer.status == 429 else 0
            if session.looping and refused_in_a_row >= LOOP_STOP_AFTER:
                break
    finally:
        await driver.close()
    return answered
