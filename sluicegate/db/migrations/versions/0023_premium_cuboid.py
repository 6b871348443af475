"""rollup_cuboids: the `premium` cuboid (team, workflow tag, requested model, model,
provider), so that the premium-model review reads a few rows a day instead of
rollup_usage's thousands (at 10M rows over 90 days, 5,300 a day: 530 ms for 30 days on
PostgreSQL).

Its rows are derived here from the rollups already stored, as 0013 derived the first
cuboids (the same digest and week rule, written out here, frozen): hour and day rows
summed from rollup_usage's, week rows from the cuboid's day rows.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

USAGE_DIMENSIONS = (
    "team",
    "project",
    "workflow_tag",
    "environment",
    "cost_center",
    "client_tool",
    "client_api",
    "requested_model",
    "model",
    "provider",
    "status_class",
    "error_type",
)
CUBOID = "premium"
KEPT = ("team", "workflow_tag", "requested_model", "model", "provider")
DAY, WEEK, MONDAY = 86400, 7 * 86400, 4 * 86400
DIGEST_CHARS = 32
CHUNK = 2000


def _digest(dimensions: Sequence[str]) -> str:
    return hashlib.blake2b("\x1f".join(dimensions).encode(), digest_size=16).hexdigest()


def _measures(bind: Any, table: str, dimensions: Sequence[str]) -> list[dict[str, Any]]:
    skip = {"id", "grain", "bucket", *dimensions}
    return [c for c in sa.inspect(bind).get_columns(table) if c["name"] not in skip]


def upgrade() -> None:
    bind = op.get_bind()
    measures = _measures(bind, "rollup_usage", USAGE_DIMENSIONS)
    # PostgreSQL sums bigint into numeric: each value goes back as its column's type
    kinds: dict[str, Callable[[Any], float]] = {
        m["name"]: float if isinstance(m["type"], sa.Float) else int for m in measures
    }
    for grain in ("hour", "day"):
        _derive_cuboid(bind, grain, CUBOID, KEPT, kinds)
    _derive_weeks(bind, "rollup_cuboids", ("cuboid", *USAGE_DIMENSIONS))
    if bind.dialect.name == "postgresql":
        # the planner's statistics, stale after a bulk insert, chose a plan 5-10x slower
        # for the new rows until autovacuum came round
        op.execute("ANALYZE rollup_cuboids")


def _derive_cuboid(
    bind: Any,
    grain: str,
    cuboid: str,
    kept: Sequence[str],
    kinds: dict[str, Callable[[Any], float]],
) -> None:
    """The cuboid's rows of one grain, summed from rollup_usage's."""
    measures = list(kinds)
    usage = sa.table(
        "rollup_usage", *(sa.column(c) for c in ("grain", "bucket", *USAGE_DIMENSIONS, *measures))
    )
    cuboids = sa.table(
        "rollup_cuboids",
        *(sa.column(c) for c in ("id", "grain", "bucket", "cuboid", *USAGE_DIMENSIONS, *measures)),
    )
    grouped = [usage.c.bucket, *(usage.c[d] for d in kept)]
    rows = bind.execute(
        sa.select(*grouped, *(sa.func.sum(usage.c[m]) for m in measures))
        .where(usage.c.grain == grain)
        .group_by(*grouped)
    )
    insert = cuboids.insert()
    batch: list[dict[str, Any]] = []
    for row in rows:
        values = dict(zip(kept, row[1 : 1 + len(kept)], strict=True))
        dimensions = [cuboid, *(values.get(d, "") for d in USAGE_DIMENSIONS)]
        batch.append(
            {
                "id": f"{grain[0]}{int(row[0])}:{_digest(dimensions)}",
                "grain": grain,
                "bucket": row[0],
                "cuboid": cuboid,
                **{d: values.get(d, "") for d in USAGE_DIMENSIONS},
                **{m: kinds[m](v) for m, v in zip(measures, row[1 + len(kept) :], strict=True)},
            }
        )
        if len(batch) >= CHUNK:
            bind.execute(insert, batch)
            batch = []
    if batch:
        bind.execute(insert, batch)


def _derive_weeks(bind: Any, name: str, dimensions: Sequence[str]) -> None:
    """Week rows summed from the day rows of each week (their ids: the days' digest)."""
    measures = [m["name"] for m in _measures(bind, name, dimensions)]
    table = sa.table(
        name, *(sa.column(c) for c in ("id", "grain", "bucket", *dimensions, *measures))
    )
    mine = table.c.cuboid == CUBOID
    days = bind.execute(sa.select(table.c.bucket).where(table.c.grain == "day", mine).distinct())
    weeks = sorted({(day - MONDAY) // WEEK * WEEK + MONDAY for (day,) in days})
    digest = sa.func.min(sa.func.substr(table.c.id, sa.func.length(table.c.id) - DIGEST_CHARS))
    for week in weeks:
        selected = sa.select(
            (sa.literal(f"w{int(week)}", sa.String()) + digest).label("id"),
            sa.literal("week", sa.String()).label("grain"),
            sa.literal(float(week), sa.Double()).label("bucket"),
            *(table.c[d] for d in dimensions),
            *(sa.func.sum(table.c[m]).label(m) for m in measures),
        ).where(table.c.grain == "day", mine, table.c.bucket >= week, table.c.bucket < week + WEEK)
        grouped = selected.group_by(*(table.c[d] for d in dimensions))
        bind.execute(
            table.insert().from_select(["id", "grain", "bucket", *dimensions, *measures], grouped)
        )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM rollup_cuboids WHERE cuboid = :c").bindparams(c=CUBOID))
