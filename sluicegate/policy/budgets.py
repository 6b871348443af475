"""Budget-side work that is not admission itself: threshold alerts, status for the API,
and rebuilding spend counters from the ledger when the counter store starts empty.

Alerts are driven by *settled* spend (`used`), not by reservations, so a large worst-case
reservation never pages anyone on its own. A budget that refuses an admission counts as
at least 100% (it would be exceeded), so the 100% alert fires even though a hard block
keeps settled spend just under the ceiling.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from sluicegate.alerts.alert import Alert
from sluicegate.policy.admission import Item, budget_key
from sluicegate.policy.compiled import CompiledBudget, CompiledPolicy
from sluicegate.policy.counters.base import AdmitResult, CounterStore, Level, bucket_start
from sluicegate.policy.documents import usd_to_micros
from sluicegate.policy.windows import Window, iso


class SumCost(Protocol):
    """`LedgerStore.sum_cost`: USD spent by rows that arrived in [since, until) (unix
    seconds) matching every pair of `match`; a name is an envelope field (key_id, user_id,
    team, project, session_id, workflow_tag, environment, cost_center) or else a free
    metadata key."""

    def __call__(
        self, since: float, match: dict[str, str], until: float | None = None, /
    ) -> Awaitable[float]: ...


def usd(amount: float) -> str:
    """Dollars as people read them: cents from $1 up, six places below (tiny test ceilings)."""
    if amount == 0 or abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0")


def due_alerts(
    items: list[Item], result: AdmitResult, now: float
) -> list[tuple[str, float, Alert]]:
    """(once-per-window mark key, mark TTL, alert) for every threshold reached."""
    due = []
    for index, (item, level) in enumerate(zip(items, result.levels)):
        budget = item.budget
        if budget is None or not budget.alerts:
            continue
        pct = level.used / item.limit * 100
        refused = result.failed_index == index or (not item.enforced and item.exceeds(level))
        if refused:
            pct = max(pct, (level.used + level.reserved + item.check.amount) / item.limit * 100)
        for rule in budget.alerts:
            if pct < rule.at_pct:
                break
            suffix = item.window.counter_suffix(now)
            key = f"alert:{budget.id}:{item.window.label}:{suffix}:{rule.at_pct:g}"
            ttl = item.window.seconds if not item.window.resets else item.window_end - now + 60
            due.append((key, ttl, _alert(item, budget, level, pct, rule.at_pct, rule.notify, now)))
    return due


def _alert(
    item: Item,
    budget: CompiledBudget,
    level: Level,
    pct: float,
    threshold: float,
    notify: tuple[str, ...],
    now: float,
) -> Alert:
    """A budget threshold as an alert: critical from 100%, a warning below; one dedup key
    per budget, window and threshold."""
    window = item.window
    resets_at = iso(item.window_end, window.tz) if window.resets else None
    window_start = iso(item.window_start, window.tz) if window.resets else None
    spent = level.used / 1e6
    return Alert(
        id=uuid.uuid4().hex,
        kind="budget",
        rule_id=budget.id,
        severity="critical" if threshold >= 100 else "warning",
        summary=(
            f"Budget {budget.id} reached {threshold:g}% ({pct:.1f}%): {usd(spent)} of "
            f"{usd(budget.ceiling_usd)} ({window.label}"
            + (f", resets {resets_at})" if resets_at else ")")
        ),
        dedup_key=f"{budget.id}:{window.label}:{window_start}:{threshold:g}",
        notify=notify,
        ts=now,
        details={
            "window": window.label,
            "threshold_pct": threshold,
            "pct": round(pct, 2),
            "spent_usd": round(spent, 6),
            "reserved_usd": round(level.reserved / 1e6, 6),
            "ceiling_usd": budget.ceiling_usd,
            "window_start": window_start,
            "resets_at": resets_at,
            "scope": dict(budget.scope),
        },
    )


async def budget_status(
    policy: CompiledPolicy, store: CounterStore, now: float
) -> list[dict[str, Any]]:
    rows = [(b, w, budget_key(b, w, now)) for b in policy.budgets for w in b.windows]
    levels = await store.usage([key for _, _, key in rows])
    out = []
    for budget, window, key in rows:
        level = levels.get(key, Level(0, 0))
        start, end = window.bounds(now)
        out.append(
            {
                "id": budget.id,
                "document": budget.document,
                "window": window.label,
                "timezone": window.tz.key,
                "ceiling_usd": budget.ceiling_usd,
                "spent_usd": round(level.used / 1e6, 6),
                # held for requests in flight; capacity leased by replicas apart (idle
                # replicas hold leases until they give them back)
                "reserved_usd": round((level.reserved - level.leased) / 1e6, 6),
                "leased_usd": round(level.leased / 1e6, 6),
                "pct": round(level.used / budget.ceiling_micros * 100, 2),
                "window_start": iso(start, window.tz) if window.resets else iso(start),
                "resets_at": iso(end, window.tz) if window.resets else None,
                "scope": dict(budget.scope),
                # who besides admins may see it (GET /api/budgets): see budget_audience
                "teams": None if budget.teams is None else sorted(budget.teams),
                "names_users": budget.names_users,
                "on_exceed": budget.breach.action,
            }
        )
    return out


async def rebuild(
    policy: CompiledPolicy,
    store: CounterStore,
    sum_cost: SumCost,
    now: float | None = None,
    landed: Callable[[float], Awaitable[object]] | None = None,
) -> list[dict[str, Any]]:
    """Raise every budget counter's ledger part to the ledger's spend of the requests that
    arrived in its window before the counter's cutoff (see counters/base.py). Safe to run
    at any time, from any number of replicas, as often as wanted: it only ever raises the
    ledger part to what the ledger holds. `landed(t)`: awaited between taking the cutoffs
    and reading the ledger, `t` the latest cutoff; returns once the rows of requests that
    finished before `t` have landed (or it gives up: landed_wait.py)."""
    now = time.time() if now is None else now
    report: list[dict[str, Any]] = []
    todo: list[tuple[int, CompiledBudget, Window, str]] = []  # report index, ...
    for budget in policy.budgets:
        for window in budget.windows:
            row: dict[str, Any] = {"id": budget.id, "window": window.label}
            if budget.ledger_filters is None:
                report.append(
                    {**row, "seeded": False, "reason": "scope not expressible as ledger filters"}
                )
                continue
            key = budget_key(budget, window, now)
            cutoff = await store.cutoff(key, window.expires_at(now), window.slide)
            if float(cutoff) <= 0:  # a counter from before cutoffs: it counted its whole window
                report.append({**row, "seeded": False, "reason": "counted by the store"})
                continue
            todo.append((len(report), budget, window, cutoff))
            report.append(row)
    if todo and landed is not None:
        await landed(max(float(cutoff) for *_, cutoff in todo))
    for index, budget, window, cutoff in todo:
        report[index].update(await _seed(store, sum_cost, budget, window, cutoff, now))
    return report


async def _seed(
    store: CounterStore,
    sum_cost: SumCost,
    budget: CompiledBudget,
    window: Window,
    cutoff: str,
    now: float,
) -> dict[str, Any]:
    """Seed one counter at `cutoff`; should the counter be made anew meanwhile (its data
    lost again), at its new cutoff."""
    key, expires_at = budget_key(budget, window, now), window.expires_at(now)
    filters = budget.ledger_filters or ()
    for _ in range(3):
        before = float(cutoff)
        used: int | dict[int, int]
        if window.resets:
            used = await _spent_before(sum_cost, window.bounds(now)[0], before, filters)
            spent = used
        else:
            used = await _bucket_spend(sum_cost, window, filters, now, before)
            spent = sum(used.values())
        grew = await store.seed(key, cutoff, used, expires_at, window.slide)
        if grew >= 0:
            return {
                "seeded": True,
                "ledger_spent_usd": round(spent / 1e6, 6),
                "added_usd": round(grew / 1e6, 6),
                "cutoff": before,
            }
        cutoff = await store.cutoff(key, expires_at, window.slide)
    return {"seeded": False, "reason": "the counter was made anew while being seeded"}


async def _spent_before(
    sum_cost: SumCost, since: float, before: float, filters: tuple[Mapping[str, str], ...]
) -> int:
    """Micro-dollars of rows that arrived in [since, before)."""
    total = 0
    if before > since:
        for f in filters:
            total += usd_to_micros(await sum_cost(since, dict(f), before))
    return total


async def _bucket_spend(
    sum_cost: SumCost,
    window: Window,
    filters: tuple[Mapping[str, str], ...],
    now: float,
    before: float,
) -> dict[int, int]:
    """Spend per live bucket of a rolling window, of rows that arrived before `before`."""
    size = window.bucket_s
    first = bucket_start(now - window.seconds, size)
    if first + size <= now - window.seconds:
        first += size
    starts = [s for s in range(first, bucket_start(now, size) + 1, size) if s < before]
    return {
        start: await _spent_before(sum_cost, start, min(start + size, before), filters)
        for start in starts
    }
