"""The latency panel's three reads from one scan, when all three read raw rows.

A query the rollups cannot answer (a metadata key in a filter: `rollup_metadata` keeps no
histograms; a member's own requests) reads raw `requests` rows, and the panel's three
reads (its groups, the control cells, the series) each scanned the window, summing some
eighty histogram buckets per row: three times the work of one scan (a 24-hour window of a
10M-row ledger is ~110,000 rows). Here one statement groups the window's rows by the
query's grouping, the control cells' dimensions and the series' step together, and the
three views are added up from those cells in Python: a few thousand cells, each a list of
figures summed element-wise. Past `reader.MAX_CELLS` cells (a grouping of very many
values) the reader says so and the panel reads the three views as before.

    raw rows --one GROUP BY (group_by + cells + step)--> cells
    cells --sum by group_by, top N--> groups
    cells --sum by (provider, status class, error type)--> control cells, and the total
    cells --sum by step--> series
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sluicegate.analytics.dimensions import AnyDimension
from sluicegate.analytics.measures import Figures, as_figure
from sluicegate.analytics.reader import AnalyticsReader, Group, Order, Plan, Step

Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RawViews:
    groups: list[Group]  # the top `limit` of the grouping, in the reader's order
    cells: list[Group]  # by the control cells' dimensions, by their values
    total: Figures  # every row of the window
    series: list[Group]  # by step, oldest first


async def one_scan(
    reader: AnalyticsReader,
    read: Plan,
    measures: Sequence[str],
    group_by: Sequence[AnyDimension],
    control: Sequence[AnyDimension],
    *,
    step: Step,
    limit: int,
    order: Order,
) -> RawViews | None:
    """The three views from one read (`AnalyticsReader.cells`); None when the reader
    found too many cells."""
    dims = _distinct([*group_by, *control])
    fine = await reader.cells(read, measures, dims, step)
    if fine is None:
        return None
    names = [d.name for d in dims]
    by_group = [names.index(d.name) for d in group_by]
    by_cell = [names.index(d.name) for d in control]
    groups = _summed(fine, measures, lambda g: tuple(g.values[i] for i in by_group))
    cells = _summed(fine, measures, lambda g: tuple(g.values[i] for i in by_cell))
    steps = _summed(fine, measures, lambda g: (str(g.step),))
    total = _figures(measures, _add_all(measures, list(cells.values())))
    return RawViews(
        groups=_ordered(groups, measures, order)[:limit],
        cells=_ordered(cells, measures, "names"),
        total=total,
        series=sorted(
            (Group((), _figures(measures, v), step=float(k[0])) for k, v in steps.items()),
            key=lambda g: g.step or 0.0,
        ),
    )


def _distinct(dims: Sequence[AnyDimension]) -> list[AnyDimension]:
    seen: dict[str, AnyDimension] = {}
    for dim in dims:
        seen.setdefault(dim.name, dim)
    return list(seen.values())


def _summed(
    fine: list[Group], measures: Sequence[str], key: Callable[[Group], Key]
) -> dict[Key, list[float]]:
    sums: dict[Key, list[float]] = {}
    for cell in fine:
        values = [cell.figures[m] for m in measures]
        k = key(cell)
        found = sums.get(k)
        if found is None:
            sums[k] = values
        else:
            found[:] = map(operator.add, found, values)
    return sums


def _add_all(measures: Sequence[str], parts: list[list[float]]) -> list[float]:
    total: list[float] = [as_figure(m, 0) for m in measures]
    for part in parts:
        total[:] = map(operator.add, total, part)
    return total


def _figures(measures: Sequence[str], values: list[float]) -> Figures:
    return dict(zip(measures, values, strict=True))


def _ordered(sums: dict[Key, list[float]], measures: Sequence[str], order: Order) -> list[Group]:
    """The reader's order (`reader._order`): by values, or by cost then requests
    (descending) then values; values compare as the databases compare them (bytewise:
    UTF-8 keeps code point order)."""
    ranked = [measures.index(m) for m in ("cost_usd", "requests") if m in measures]
    items = list(sums.items())
    if order == "figures":
        items.sort(key=lambda kv: (*(-kv[1][i] for i in ranked), kv[0]))
    else:
        items.sort(key=lambda kv: kv[0])
    return [Group(k, _figures(measures, v)) for k, v in items]
