"""Panels timed before and after a change, side by side in one run, interleaved
(`bench/panels.py --before-after TABLE` or `--before-after code:CHECKOUT`).

"after" is a panel as it runs: the reader picks from every rollup. "before" is either the
same code with TABLE taken out of the tables the reader picks from
(`sources.PLAIN_SOURCES`), as the panel answered before that table existed; or, with
`code:CHECKOUT`, the panel's own module as another checkout has it (e.g. `code:/work/main`:
its `panels/NAME.py` loaded beside this tree's, on this tree's reader and rollups), to
time a change of a panel's code alone. Both run in this process, on one engine
over the bench's database: the panel's own `answer()` (every statement, and the Python
that assembles the answer) without HTTP, one call of each side in turn so the host's load
hits both alike. Each pair of answers is checked equal but for the table read.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from sluicegate.analytics import sources
from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.base import Panel, PanelAnswer, PanelContext
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import scoped
from sluicegate.config.live import ConfigSnapshot
from sluicegate.db.engine import create_engine_for
from sluicegate.server.roles import AdminPrincipal, Role, analytics_scope

ADMIN = AdminPrincipal("bench", Role.ADMIN)
Shapes = Sequence[tuple[str, dict[str, str]]]
Before = Callable[[str], AbstractContextManager[None]]  # a panel's name -> its "before"
CODE = "code:"


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
def without(table: str, *, one_at_a_time: bool = False) -> Iterator[None]:
    """The reader's tables with `table` taken out, for the duration: a table, or cuboids
    as answers name them (`rollup_cuboids:status,rollup_cuboids:model`). With
    `one_at_a_time`, a panel's reads also run one after the other
    (`AnalyticsReader.together` as it was before)."""
    kept, names = sources.PLAIN_SOURCES, set(table.split(","))
    sources.PLAIN_SOURCES = tuple(s for s in kept if not {str(s.table.name), s.name} & names)
    if len(sources.PLAIN_SOURCES) == len(kept):
        sources.PLAIN_SOURCES = kept
        raise ValueError(f"--before-after: the reader reads no table named {table!r}")
    together = AnalyticsReader.together
    if one_at_a_time:
        AnalyticsReader.together = _one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        sources.PLAIN_SOURCES = kept
        AnalyticsReader.together = together  # type: ignore[method-assign]


async def _one_at_a_time(_reader: AnalyticsReader, *reads: Awaitable[Any]) -> tuple[Any, ...]:
    return tuple([await read for read in reads])


def before_of(spec: str, *, one_at_a_time: bool = False) -> Before:
    """What "before" means: `code:CHECKOUT` (that checkout's panel modules) or a table
    (with `one_at_a_time`, its reads also one after the other)."""
    if spec.startswith(CODE):
        tree = Path(spec.removeprefix(CODE))
        return lambda panel: panel_code(tree, panel)
    return lambda panel: without(spec, one_at_a_time=one_at_a_time)


@contextmanager
def panel_code(tree: Path, panel: str) -> Iterator[None]:
    """The registry's `panel` swapped for the same module in `tree`, for the duration."""
    kept = PANELS[panel]
    PANELS[panel] = _load_panel(tree, type(kept).__module__)
    try:
        yield
    finally:
        PANELS[panel] = kept


_LOADED: dict[tuple[Path, str], Panel] = {}


def _load_panel(tree: Path, module: str) -> Panel:
    """`module` (dotted) from `tree`'s files, under another name (it imports the rest
    from this tree: the shared code must still have what it uses)."""
    if (tree, module) not in _LOADED:
        path = tree.joinpath(*module.split(".")).with_suffix(".py")
        spec = importlib.util.spec_from_file_location(f"before_{module.replace('.', '_')}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"--before-after: no module at {path}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # dataclasses look their module up there
        spec.loader.exec_module(loaded)
        _LOADED[(tree, module)] = loaded.PANEL
    return _LOADED[(tree, module)]


async def compare(
    kind: str,
    url: str,
    settings: AnalyticsSettings,
    panels: Sequence[str],
    shapes: Mapping[str, Shapes],
    before: str,
    repeats: int,
    *,
    one_at_a_time: bool = False,
) -> list[Compared]:
    """`before`: a table taken out, or `code:CHECKOUT` (module docstring)."""
    engine = create_engine_for(url)
    context = PanelContext(
        AnalyticsReader(engine), settings, ConfigSnapshot.build(0, [], loaded_at=time.time())
    )
    out = []
    try:
        for panel in panels:
            for label, params in shapes[panel]:
                side = before_of(before, one_at_a_time=one_at_a_time)
                out.append(await _pair(context, kind, panel, label, params, side, repeats))
    finally:
        await engine.dispose()
    return out


async def _pair(
    context: PanelContext,
    kind: str,
    panel: str,
    label: str,
    params: dict[str, str],
    before_side: Before,
    repeats: int,
    one_at_a_time: bool,
) -> Compared:
    before: list[float] = []
    after: list[float] = []
    now = time.time()  # one "now" for both sides: the same window asked, to the second
    with before_side(panel):
        old = await _ask(context, panel, params, now)  # warm both
    new = await _ask(context, panel, params, now)
    for _ in range(repeats):
        with before_side(panel):
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


def report(compared: list[Compared], before: str, *, one_at_a_time: bool = False) -> str:
    w = max(len(c.panel) for c in compared) + 1
    header = (
        f"{'database':<11}{'panel':<{w}}{'query':<22}{'before p50':>11}{'p95':>8}"
        f"{'after p50':>10}{'p95':>8}{'ratio':>8}  answers"
    )
    apart = ", reads one at a time" if one_at_a_time else ""
    what = (
        f"{before.removeprefix(CODE)}'s panel code (before) and this tree's (after)"
        if before.startswith(CODE)
        else f"without {before}{apart} (before) and with it (after)"
    )
    lines = [f"{what}, in process:", header]
    lines.append("-" * len(header))
    for c in compared:
        same = "same" if c.same else "DIFFER"
        lines.append(
            f"{c.database:<11}{c.panel:<{w}}{c.query:<22}{c.before_p50_ms:>11.1f}"
            f"{c.before_p95_ms:>8.1f}{c.after_p50_ms:>10.1f}{c.after_p95_ms:>8.1f}"
            f"{c.ratio:>7.1f}x  {same} ({c.before_source} -> {c.after_source})"
        )
    return "\n".join(lines)
