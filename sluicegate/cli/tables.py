"""Tables the CLI prints. Identifiers are there to be copied into the next command, so
their columns are never cut or wrapped, whatever the terminal's width: the other columns
wrap instead."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from rich.table import Column, Table


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    whole: Collection[str] = ("id",),
    title: str | None = None,
) -> Table:
    """A table of `rows` under `headers`; the columns named in `whole` keep every
    character of every value."""
    rows = [list(r) for r in rows]
    columns = []
    for i, header in enumerate(headers):
        if header in whole:
            width = max([len(header), *(len(r[i]) for r in rows)])
            columns.append(Column(header, no_wrap=True, min_width=width))
        else:
            columns.append(Column(header, overflow="fold"))
    shown = Table(*columns, title=title, title_justify="left")
    for r in rows:
        shown.add_row(*r)
    return shown
