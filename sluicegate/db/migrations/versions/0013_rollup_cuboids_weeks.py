"""rollup_cuboids: rollup_usage over fewer dimensions, in hour, day and week rows, so
that the control room's panels read few rows (sluicegate/analytics/cuboids.py).

The rows are derived here from the rollups already stored, so an upgraded database
answers from them at once, exactly as `sluicegate ledger rebuild-rollups` would have:
hour and day rows are sums of rollup_usage's (their ids digest the cuboid's dimensions,
computed here as analytics/rollups.py does), and week rows (Monday to Sunday, UTC) sums
of the day rows, with the day rows' digest. The cuboids and the digest
are written out here, frozen: later changes come with revisions of their own.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
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
CUBOIDS = {
    "tool": ("team", "client_tool", "status_class"),
    "control": ("team", "provider", "model", "status_class", "error_type"),
    "spend": ("team", "project", "workflow_tag", "model"),
}
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
    op.create_table(
        "rollup_cuboids",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("grain", sa.String(), nullable=False),
        sa.Column("bucket", sa.Double(), nullable=False),
        sa.Column("cuboid", sa.String(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in USAGE_DIMENSIONS),
        *(sa.Column(m["name"], m["type"], nullable=False) for m in measures),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_cuboids"),
    )
    op.create_index(
        "ix_rollup_cuboids_cuboid_grain_bucket", "rollup_cuboids", ["cuboid", "grain", "bucket"]
    )
    op.create_index("ix_rollup_cuboids_grain_bucket", "rollup_cuboids", ["grain", "bucket"])
    # PostgreSQL sums bigint into numeric: each value goes back as its column's type
    kinds: dict[str, Callable[[Any], float]] = {
        m["name"]: float if isinstance(m["type"], sa.Float) else int for m in measures
    }
    for grain in ("hour", "day"):
        for cuboid, kept in CUBOIDS.items():
            _derive_cuboid(bind, grain, cuboid, kept, kinds)
    _derive_weeks(bind, "rollup_cuboids", ("cuboid", *USAGE_DIMENSIONS))


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
    days = bind.execute(sa.select(table.c.bucket).where(table.c.grain == "day").distinct())
    weeks = sorted({(day - MONDAY) // WEEK * WEEK + MONDAY for (day,) in days})
    digest = sa.func.min(sa.func.substr(table.c.id, sa.func.length(table.c.id) - DIGEST_CHARS))
    for week in weeks:
        selected = sa.select(
            (sa.literal(f"w{int(week)}", sa.String()) + digest).label("id"),
            sa.literal("week", sa.String()).label("grain"),
            sa.literal(float(week), sa.Double()).label("bucket"),
            *(table.c[d] for d in dimensions),
            *(sa.func.sum(table.c[m]).label(m) for m in measures),
        ).where(table.c.grain == "day", table.c.bucket >= week, table.c.bucket < week + WEEK)
        grouped = selected.group_by(*(table.c[d] for d in dimensions))
        bind.execute(
            table.insert().from_select(["id", "grain", "bucket", *dimensions, *measures], grouped)
        )


def downgrade() -> None:
    op.drop_table("rollup_cuboids")
