"""Asking a panel in process (no HTTP): a context over a test database, principals of each
role, and direct SQL over the raw `requests` rows to hold answers against."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels import PANELS
from sluicegate.analytics.panels.base import PanelAnswer, PanelContext
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import scoped
from sluicegate.analytics.window import Window
from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.parse import parse_documents
from sluicegate.config.registry import DocumentRegistry
from sluicegate.db.schema import requests
from sluicegate.server.roles import AdminPrincipal, Role, analytics_scope

R = requests.c
ADMIN = AdminPrincipal("admin", Role.ADMIN)
FINANCE = AdminPrincipal("fin", Role.FINANCE)
NOW = 1_790_000_000.0


def snapshot(yaml_text: str = "") -> ConfigSnapshot:
    documents = parse_documents(yaml_text, DocumentRegistry()) if yaml_text else []
    return ConfigSnapshot.build(1, documents, loaded_at=0.0)


def context(
    engine: AsyncEngine,
    settings: AnalyticsSettings | None = None,
    config: ConfigSnapshot | None = None,
) -> PanelContext:
    return PanelContext(
        AnalyticsReader(engine), settings or AnalyticsSettings(), config or snapshot()
    )


async def ask(
    ctx: PanelContext,
    panel: str,
    *params: tuple[str, str],
    principal: AdminPrincipal = ADMIN,
) -> PanelAnswer[Any]:
    found = PANELS[panel]
    query = parse_query(
        list(params),
        panel=panel,
        default_group_by=found.default_group_by(ctx.settings),
        default_limit=found.default_limit,
        now=NOW,
    )
    return await found.answer(ctx, scoped(query, analytics_scope(principal)))


def in_window(window: Window) -> ColumnElement[bool]:
    return (R.ts >= window.since) & (R.ts < window.until)


async def raw_values(
    engine: AsyncEngine, column: ColumnElement[Any], *where: ColumnElement[bool]
) -> list[float]:
    """The values of a column over raw rows, sorted (nulls left out)."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(column).where(column.is_not(None), *where))
    return sorted(float(v) for (v,) in rows)


def true_percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile, as the histogram's `percentile` ranks."""
    return values[max(1, math.ceil(q * len(values))) - 1]


async def raw_sums(
    engine: AsyncEngine,
    keys: Sequence[ColumnElement[Any]],
    figures: dict[str, ColumnElement[Any]],
    *where: ColumnElement[bool],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Direct SQL: figures per group of `keys` over raw rows."""
    labelled = [k.label(f"k{i}") for i, k in enumerate(keys)]
    stmt = select(*labelled, *(v.label(n) for n, v in figures.items())).where(*where)
    if keys:
        stmt = stmt.group_by(*(f"k{i}" for i in range(len(keys))))
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return {
        tuple(row[f"k{i}"] for i in range(len(keys))): {n: row[n] for n in figures} for row in rows
    }


def count_all() -> ColumnElement[Any]:
    return func.count()
