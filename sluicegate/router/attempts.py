"""The retry / fallback loop: a RoutePlan and a `call` -> an AttemptsOutcome.

    run_attempts                  for each candidate of the plan, in order:
      _admit                        a half-open circuit lets only its one probe through
      _with_retries                 up to `retry.attempts` tries, backing off with jitter;
                                    honours `retry_after` up to a cap, beyond it moves on
        _once                       one call: timed, recorded, breaker and latency updated
      _verdict                      fall back (status in fallback_status_codes, connection
                                    error, timeout) or stop (any other error: the client
                                    gets it as is, e.g. a provider 400)

`call(target, reason)` makes one upstream attempt and returns a result or raises an
`UpstreamError`. For a stream it returns once the provider has produced its first event
(or raises on the first-token timeout), so a stream can still fall back until its first
byte reaches the client; nothing here is stream-specific. Other `SluiceError`s raised by
`call` (say the request cannot be translated for that provider) stop the loop too. The
outcome carries every attempt for the ledger; `unwrap()` gives the result or raises.

`Router.run(plan, call)` is how the pipeline runs this loop, with the router's breakers
and latency. Time per output token is not known when `call` returns (a stream has barely
started); whoever learns the usage reports it: `Router.record_generation(outcome, ...)`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from sluicegate.errors import (
    SluiceError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sluicegate.model.record import AttemptRecord
from sluicegate.router.breaker import BreakerGate, BreakerStore
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.routes import AttemptReason, RetryPolicy, RoutePlan, Target

T = TypeVar("T")
Call = Callable[[Target, AttemptReason], Awaitable[T]]
Verdict = Literal["fall_back", "stop"]
MAX_RETRY_AFTER_SECONDS = 10.0


@dataclass
class AttemptsOutcome(Generic[T]):
    plan: RoutePlan  # the plan that was run: its keys name the targets' breakers and latency
    result: T | None
    error: SluiceError | None
    attempts: list[AttemptRecord]
    final_target: Target | None  # the target of the last attempt
    fallback_used: bool
    retry_used: bool
    reason: str  # what happened, in a sentence or three

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # no error: call returned a T


async def run_attempts(
    plan: RoutePlan,
    call: Call[T],
    *,
    breakers: BreakerStore,
    latency: LatencyTracker,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
) -> AttemptsOutcome[T]:
    """`deadline` is a time on `clock` after which no attempt starts and a running one is
    cut short (it becomes an UpstreamTimeout)."""
    run = _Run(plan, call, breakers, latency, deadline, clock, sleep, rng, max_retry_after)
    return await run.candidates()


@dataclass
class _Run(Generic[T]):
    plan: RoutePlan
    call: Call[T]
    breakers: BreakerStore
    latency: LatencyTracker
    deadline: float | None
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    rng: Callable[[], float]
    max_retry_after: float
    attempts: list[AttemptRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    opened: set[str] = field(default_factory=set)  # targets whose circuit we saw open

    async def candidates(self) -> AttemptsOutcome[T]:
        error: SluiceError | None = None
        target: Target | None = None
        for index, candidate in enumerate(self.plan.candidates):
            if self._out_of_time():
                self.notes.append("deadline reached")
                break
            admission = await self._admit(candidate)
            if admission == "denied":
                self.notes.append(f"{candidate.id}: half-open, another request holds the probe")
                continue
            target = candidate
            result, error = await self._with_retries(target, index, admission == "probe")
            if error is None:
                self.notes.append(f"{target.id} answered")
                return self._outcome(result, None, target)
            if self._verdict(error) == "stop":
                self.notes.append(f"{target.id}: {_describe(error)}, returned without fallback")
                return self._outcome(None, error, target)
            self.notes.append(f"{target.id}: {_describe(error)}")
        return self._outcome(None, error or self._nothing_tried(), target)

    async def _admit(self, target: Target) -> BreakerGate:
        if target.id in self.plan.probe_ids:
            return "probe"
        if target.id not in self.plan.needs_probe or self.plan.breaker is None:
            return "closed"
        return await self.breakers.admit(self.plan.key_for(target), self.plan.breaker)

    async def _with_retries(
        self, target: Target, index: int, probe: bool
    ) -> tuple[T | None, SluiceError | None]:
        first = index == 0 and target.id not in self.plan.fallback_ids
        reason: AttemptReason = "primary" if first else "fallback"
        tries = 1
        while True:
            result, error = await self._once(target, reason, probe)
            if error is None:
                return result, None
            delay = self._retry_delay(target, error, tries, probe)
            if delay is None:
                return None, error
            self.notes.append(f"{target.id}: {_describe(error)}, retrying in {delay:.2f}s")
            await self.sleep(delay)
            tries, reason = tries + 1, "retry"

    async def _once(
        self, target: Target, reason: AttemptReason, probe: bool
    ) -> tuple[T | None, SluiceError | None]:
        started = self.clock()
        try:
            result = await self._call(target, reason)
        except SluiceError as error:
            await self._failed(target, reason, probe, error, _ms_since(started, self.clock))
            return None, error
        await self._succeeded(target, reason, probe, _ms_since(started, self.clock))
        return result, None

    async def _call(self, target: Target, reason: AttemptReason) -> T:
        if self.deadline is None:
            return await self.call(target, reason)
        try:
            async with asyncio.timeout(self.deadline - self.clock()) as scope:
                return await self.call(target, reason)
        except TimeoutError as exc:
            if scope.expired():
                raise UpstreamTimeout("the request's deadline passed during the call") from exc
            raise

    async def _succeeded(
        self, target: Target, reason: AttemptReason, probe: bool, ms: float
    ) -> None:
        key, policy = self.plan.key_for(target), self.plan.breaker
        self.attempts.append(_record(target, 200, ms, None, reason))
        self.latency.record(key, ms, ok=True)
        if policy is not None and probe:
            await self.breakers.record_success(key, policy, probe=True)

    async def _failed(
        self, target: Target, reason: AttemptReason, probe: bool, error: SluiceError, ms: float
    ) -> None:
        key, policy = self.plan.key_for(target), self.plan.breaker
        status = error.upstream_status if isinstance(error, UpstreamHTTPError) else None
        self.attempts.append(_record(target, status, ms, error.class_name, reason))
        if self._verdict(error) == "stop":  # the target answered; the request was at fault
            if policy is not None and probe:
                await self.breakers.record_success(key, policy, probe=True)
            return
        self.latency.record(key, ms, ok=False)
        if policy is not None:
            state = await self.breakers.record_failure(key, policy, probe=probe)
            if state.state != "closed":
                self.opened.add(target.id)

    def _retry_delay(
        self, target: Target, error: SluiceError, tries: int, probe: bool
    ) -> float | None:
        """Seconds to wait before trying `target` again, or None to move on. A probe is
        not retried, nor a target whose circuit has just opened."""
        retry = target.retry
        if tries >= retry.attempts or probe or target.id in self.opened:
            return None
        if not _retryable(error, retry):
            return None
        retry_after = (error.retry_after if isinstance(error, UpstreamHTTPError) else None) or 0.0
        if retry_after > self.max_retry_after:
            return None
        delay = max(_backoff(retry, tries, self.rng), retry_after)
        return delay if self._time_left() > delay else None

    def _verdict(self, error: SluiceError) -> Verdict:
        if isinstance(error, UpstreamHTTPError):
            falls_back = error.upstream_status in self.plan.fallback_status_codes
            return "fall_back" if falls_back else "stop"
        return "fall_back" if isinstance(error, UpstreamError) else "stop"

    def _time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - self.clock()

    def _out_of_time(self) -> bool:
        return self._time_left() <= 0

    def _nothing_tried(self) -> SluiceError:
        if self._out_of_time():
            return UpstreamTimeout(f"the deadline passed before {self.plan.model!r} could be tried")
        return UpstreamUnavailable(
            f"no target of {self.plan.model!r} could be tried: {'; '.join(self.notes)}",
            code="circuit_open",
        )

    def _outcome(
        self, result: T | None, error: SluiceError | None, target: Target | None
    ) -> AttemptsOutcome[T]:
        reasons = {attempt.reason for attempt in self.attempts}
        return AttemptsOutcome(
            plan=self.plan,
            result=result,
            error=error,
            attempts=self.attempts,
            final_target=target,
            fallback_used="fallback" in reasons,
            retry_used="retry" in reasons,
            reason="; ".join(self.notes),
        )


def _retryable(error: SluiceError, retry: RetryPolicy) -> bool:
    if isinstance(error, UpstreamHTTPError):
        return error.upstream_status in retry.on_status_codes
    return isinstance(error, UpstreamError)


def _backoff(retry: RetryPolicy, tries: int, rng: Callable[[], float]) -> float:
    """Exponential from `delay_ms`, capped at `max_delay_ms`; jitter keeps 50-100% of it."""
    delay = min(retry.delay_ms * 2 ** (tries - 1), retry.max_delay_ms) / 1000
    return delay * (0.5 + rng() / 2) if retry.jitter else delay


def _record(
    target: Target, status: int | None, ms: float, error_class: str | None, reason: AttemptReason
) -> AttemptRecord:
    return AttemptRecord(
        provider=target.provider,
        model=target.model,
        status_code=status,
        latency_ms=ms,
        error_class=error_class,
        reason=reason,
    )


def _describe(error: SluiceError) -> str:
    if isinstance(error, UpstreamHTTPError):
        return f"HTTP {error.upstream_status}"
    return error.class_name


def _ms_since(started: float, clock: Callable[[], float]) -> float:
    return (clock() - started) * 1000
