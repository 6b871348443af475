"""Panels timed with and without one rollup table, side by side in one run, interleaved
(`bench/panels.py --before-after TABLE`).

"after" is a panel as it runs: the reader picks from every rollup. "before" is the same
code with TABLE taken out of the tables the reader picks from (`sources.PLAIN_SOURCES`),
as the panel answered before that table existed. Both run in this process, on one engine
over the bench's database: the panel's own `answer()` (every statement, and the Python
that assembles the answer) without HTTP, one call of each side in turn so the host's load
hits both alike. Each pair of answers is checked equal but for the table read.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec

from sluicegate.analytics import sources
from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.base import PanelAnswer, PanelContext
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import scoped
from sluicegate.config.live import ConfigSnapshot
from sluicegate.db.engine import create_engine_for
from sluicegate.server.roles import AdminPrincipal, Role, analytics_scope

ADMIN = AdminPrincipal("bench", Role.ADMIN)
Shapes = Sequence[tuple[str, dict[str, str]]]


@dataclass
class Compared:
    database: str
    panel: str
    query: str
    before_p50_ms: float
    before_p95_ms: float
    after_p50_ms: float
    after_p95_ms: float
    before_source: str
    after_source: str
    same: bool  # the two answers equal, but for the table read

    @property
    def ratio(self) -> float:
        return self.before_p50_ms / self.after_p50_ms if self.after_p50_ms else 0.0


@contextmanager
def without(table: str) -> Iterator[None]:
    """The reader's tables with `table` taken out, for the duration."""
    kept = sources.PLAIN_SOURCES
    sources.PLAIN_SOURCES = tuple(s for s in kept if str(s.table.name) != table)
    if len(sources.PLAIN_SOURCES) == len(kept):
        sources.PLAIN_SOURCES = kept
        raise ValueError(f"--before-after: the reader reads no table named {table!r}")
    try:
        yield
    finally:
        sources.PLAIN_SOURCES = kept


async def compare(
    kind: str,
    url: str,
    settings: AnalyticsSettings,
    panels: Sequence[str],
    shapes: Mapping[str, Shapes],
    table: str,
    repeats: int,
    before: Callable[[], AbstractContextManager[None]] | None = None,
) -> list[Compared]:
    """`before`: what makes a call the "before" side (default: `without(table)`)."""
    engine = create_engine_for(url)
    context = PanelContext(
        AnalyticsReader(engine), settings, ConfigSnapshot.build(0, [], loaded_at=time.time())
    )
    out = []
    try:
        for panel in panels:
            for label, params in shapes[panel]:
                out.append(
                    await _pair(context, kind, panel, label, params, repeats, before or _no(table))
                )
    finally:
        await engine.dispose()
    return out


async def _pair(
    context: PanelContext,
    kind: str,
    panel: str,
    label: str,
    params: dict[str, str],
    repeats: int,
    before_side: Callable[[], AbstractContextManager[None]],
) -> Compared:
    before: list[float] = []
    after: list[float] = []
    now = time.time()  # one "now" for both sides: the same window asked, to the second
    with before_side():
        old = await _ask(context, panel, params, now)  # warm both
    new = await _ask(context, panel, params, now)
    for _ in range(repeats):
        with before_side():
            before.append(await _timed(context, panel, params, now))
        after.append(await _timed(context, panel, params, now))
    return Compared(
        kind,
        panel,
        label,
        round(statistics.median(before), 1),
        round(_p95(before), 1),
        round(statistics.median(after), 1),
        round(_p95(after), 1),
        old.source,
        new.source,
        _figures(old) == _figures(new),
    )


def _no(table: str) -> Callable[[], AbstractContextManager[None]]:
    return lambda: without(table)


async def _ask(
    context: PanelContext, panel: str, params: dict[str, str], now: float
) -> PanelAnswer[Any]:
    found = PANELS[panel]
    query = parse_query(
        list(params.items()),
        panel=panel,
        default_group_by=found.default_group_by(context.settings),
        default_limit=found.default_limit,
        now=now,
    )
    return await found.answer(context, scoped(query, analytics_scope(ADMIN)))


async def _timed(context: PanelContext, panel: str, params: dict[str, str], now: float) -> float:
    started = time.perf_counter()
    await _ask(context, panel, params, now)
    return (time.perf_counter() - started) * 1000


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(-(-95 * len(ordered) // 100) - 1, 0)]


def _figures(answer: PanelAnswer[Any]) -> Any:
    built = msgspec.to_builtins(answer)
    del built["source"]
    return built


def report(compared: list[Compared], table: str, sides: str = "") -> str:
    w = max(len(c.panel) for c in compared) + 1
    header = (
        f"{'database':<11}{'panel':<{w}}{'query':<22}{'before p50':>11}{'p95':>8}"
        f"{'after p50':>10}{'p95':>8}{'ratio':>8}  answers"
    )
    lines = [sides or f"without {table} (before) and with it (after), in process:", header]
    lines.append("-" * len(header))
    for c in compared:
        same = "same" if c.same else "DIFFER"
        lines.append(
            f"{c.database:<11}{c.panel:<{w}}{c.query:<22}{c.before_p50_ms:>11.1f}"
            f"{c.before_p95_ms:>8.1f}{c.after_p50_ms:>10.1f}{c.after_p95_ms:>8.1f}"
            f"{c.ratio:>7.1f}x  {same} ({c.before_source} -> {c.after_source})"
        )
    return "\n".join(lines)
