"""Two cuboids (sluicegate/analytics/cuboids.py) for the latency panel: `status`
(provider, status class, error type), so its control cells and every unfiltered total or
series read a few dozen rows a day instead of the `tool` or `control` cuboid's hundreds,
and `model` (team, provider, model), so its groups by provider and model or by team and
model read a third of the `control` cuboid's rows or fewer.

Their hour, day and week rows are derived here from the `control` cuboid's (team,
provider, model, status class, error type: summed over the dimensions each leaves out,
they are exactly its rows), with the ids the writer gives them, so its upserts add to
them. The cuboids and the digest are written out here, frozen, as in 0013.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
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
    "status": ("provider", "status_class", "error_type"),
    "model": ("team", "provider", "model"),
}
SOURCE = "control"  # keeps every dimension of each
CHUNK = 2000


def _digest(dimensions: Sequence[str]) -> str:
    return hashlib.blake2b("\x1f".join(dimensions).encode(), digest_size=16).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    skip = {"id", "grain", "bucket", "cuboid", *USAGE_DIMENSIONS}
    measures = [c for c in sa.inspect(bind).get_columns("rollup_cuboids") if c["name"] not in skip]
    # PostgreSQL sums bigint into numeric: each value goes back as its column's type
    kinds: dict[str, Callable[[Any], float]] = {
        m["name"]: float if isinstance(m["type"], sa.Float) else int for m in measures
    }
    for cuboid, kept in CUBOIDS.items():
        for grain in ("hour", "day", "week"):
            _derive(bind, cuboid, kept, grain, kinds)
    if bind.dialect.name == "postgresql":
        # Statistics that know the new cuboids: without them the planner takes a cuboid's
        # rows as one, reads every row of it by the index on `cuboid` alone and filters
        # the window's ranges (62 ms instead of 1 ms at 2M requests, until autovacuum).
        op.execute("ANALYZE rollup_cuboids")


def _derive(
    bind: Any,
    cuboid: str,
    kept: Sequence[str],
    grain: str,
    kinds: dict[str, Callable[[Any], float]],
) -> None:
    """One cuboid's rows of one grain, summed from the SOURCE cuboid's."""
    measures = list(kinds)
    cuboids = sa.table(
        "rollup_cuboids",
        *(sa.column(c) for c in ("id", "grain", "bucket", "cuboid", *USAGE_DIMENSIONS, *measures)),
    )
    grouped = [cuboids.c.bucket, *(cuboids.c[d] for d in kept)]
    rows = bind.execute(
        sa.select(*grouped, *(sa.func.sum(cuboids.c[m]) for m in measures))
        .where(cuboids.c.cuboid == SOURCE, cuboids.c.grain == grain)
        .group_by(*grouped)
    )
    insert = cuboids.insert()
    digests: dict[tuple[str, ...], str] = {}  # few distinct cells, many buckets
    batch: list[dict[str, Any]] = []
    for row in rows:
        values = dict(zip(kept, row[1 : 1 + len(kept)], strict=True))
        dimensions = tuple(values.get(d, "") for d in USAGE_DIMENSIONS)
        digest = digests.get(dimensions)
        if digest is None:
            digest = digests[dimensions] = _digest((cuboid, *dimensions))
        batch.append(
            {
                "id": f"{grain[0]}{int(row[0])}:{digest}",
                "grain": grain,
                "bucket": row[0],
                "cuboid": cuboid,
                **dict(zip(USAGE_DIMENSIONS, dimensions, strict=True)),
                **{m: kinds[m](v) for m, v in zip(measures, row[1 + len(kept) :], strict=True)},
            }
        )
        if len(batch) >= CHUNK:
            bind.execute(insert, batch)
            batch = []
    if batch:
        bind.execute(insert, batch)


def downgrade() -> None:
    cuboids = sa.table("rollup_cuboids", sa.column("cuboid"))
    op.execute(cuboids.delete().where(cuboids.c.cuboid.in_(list(CUBOIDS))))
