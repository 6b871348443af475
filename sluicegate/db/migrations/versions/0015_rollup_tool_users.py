"""rollup_tool_users: rollup_users' figures per (user, team, client tool) alone, in hour,
day and week rows, so that the adoption panel counts distinct users over a month from a
few rows per person (sluicegate/analytics/rollups.py keeps it as batches land).

Its rows are derived here from the rollup_users rows already stored, in SQL (INSERT ...
SELECT ... GROUP BY), so an upgraded database answers from them at once, exactly as
`sluicegate ledger rebuild-rollups` would have: hour and day rows sum rollup_users' over
project and workflow, week rows (Monday to Sunday, UTC) sum the day rows. A row's id is
its grain, bucket and a digest of its dimensions (analytics/rollups.py `row_id`): the
digest is computed in Python once per distinct (user, team, tool), which are few, and
joined in. The digest is written out here, frozen.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DIMENSIONS = ("user_id", "team", "client_tool")
USER_DIMENSIONS = ("user_id", "team", "project", "workflow_tag", "client_tool")
WEEK, MONDAY = 7 * 86400, 4 * 86400
DIGEST_CHARS = 32
CHUNK = 2000


def _digest(dimensions: Sequence[str]) -> str:
    return hashlib.blake2b("\x1f".join(dimensions).encode(), digest_size=16).hexdigest()


def _measures(bind: Any) -> list[dict[str, Any]]:
    skip = {"id", "grain", "bucket", *USER_DIMENSIONS}
    return [c for c in sa.inspect(bind).get_columns("rollup_users") if c["name"] not in skip]


def upgrade() -> None:
    bind = op.get_bind()
    measures = _measures(bind)
    op.create_table(
        "rollup_tool_users",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("grain", sa.String(), nullable=False),
        sa.Column("bucket", sa.Double(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in DIMENSIONS),
        *(sa.Column(m["name"], m["type"], nullable=False) for m in measures),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_tool_users"),
    )
    op.create_index("ix_rollup_tool_users_grain_bucket", "rollup_tool_users", ["grain", "bucket"])
    names = [m["name"] for m in measures]
    digests = _digests(bind)
    for grain in ("hour", "day"):
        _derive(bind, grain, digests, names)
    digests.drop(bind)
    _derive_weeks(bind, names)


def _digests(bind: Any) -> sa.Table:
    """A temporary table of each distinct (user, team, tool)'s digest."""
    table = sa.Table(
        "tool_user_digests",
        sa.MetaData(),
        *(sa.Column(d, sa.String(), primary_key=True) for d in DIMENSIONS),
        sa.Column("digest", sa.String(), nullable=False),
        prefixes=["TEMPORARY"],
    )
    table.create(bind)
    users = sa.table("rollup_users", *(sa.column(d) for d in DIMENSIONS))
    found = bind.execute(sa.select(*(users.c[d] for d in DIMENSIONS)).distinct())
    batch: list[dict[str, Any]] = []
    for row in found:
        batch.append({**dict(zip(DIMENSIONS, row, strict=True)), "digest": _digest(row)})
        if len(batch) >= CHUNK:
            bind.execute(table.insert(), batch)
            batch = []
    if batch:
        bind.execute(table.insert(), batch)
    return table


def _derive(bind: Any, grain: str, digests: sa.Table, measures: list[str]) -> None:
    """The rows of one grain, summed from rollup_users' over project and workflow."""
    users = sa.table(
        "rollup_users", *(sa.column(c) for c in ("grain", "bucket", *DIMENSIONS, *measures))
    )
    grouped = [users.c.bucket, *(users.c[d] for d in DIMENSIONS)]
    summed = (
        sa.select(*grouped, *(sa.func.sum(users.c[m]).label(m) for m in measures))
        .where(users.c.grain == grain)
        .group_by(*grouped)
        .subquery("summed")
    )
    # f"{grain[0]}{int(bucket)}:{digest}", as analytics/rollups.py writes it
    prefix = sa.literal(grain[0], sa.String()) + sa.cast(
        sa.cast(summed.c.bucket, sa.BigInteger()), sa.String()
    )
    selected = sa.select(
        (prefix + sa.literal(":", sa.String()) + digests.c.digest).label("id"),
        sa.literal(grain, sa.String()).label("grain"),
        summed.c.bucket,
        *(summed.c[d] for d in DIMENSIONS),
        *(summed.c[m] for m in measures),
    ).select_from(summed.join(digests, sa.and_(*(summed.c[d] == digests.c[d] for d in DIMENSIONS))))
    target = sa.table(
        "rollup_tool_users",
        *(sa.column(c) for c in ("id", "grain", "bucket", *DIMENSIONS, *measures)),
    )
    bind.execute(
        target.insert().from_select(["id", "grain", "bucket", *DIMENSIONS, *measures], selected)
    )


def _derive_weeks(bind: Any, measures: list[str]) -> None:
    """Week rows summed from the day rows of each week (their ids: the days' digest)."""
    table = sa.table(
        "rollup_tool_users",
        *(sa.column(c) for c in ("id", "grain", "bucket", *DIMENSIONS, *measures)),
    )
    days = bind.execute(sa.select(table.c.bucket).where(table.c.grain == "day").distinct())
    weeks = sorted({(day - MONDAY) // WEEK * WEEK + MONDAY for (day,) in days})
    digest = sa.func.min(sa.func.substr(table.c.id, sa.func.length(table.c.id) - DIGEST_CHARS))
    for week in weeks:
        selected = sa.select(
            (sa.literal(f"w{int(week)}", sa.String()) + digest).label("id"),
            sa.literal("week", sa.String()).label("grain"),
            sa.literal(float(week), sa.Double()).label("bucket"),
            *(table.c[d] for d in DIMENSIONS),
            *(sa.func.sum(table.c[m]).label(m) for m in measures),
        ).where(table.c.grain == "day", table.c.bucket >= week, table.c.bucket < week + WEEK)
        grouped = selected.group_by(*(table.c[d] for d in DIMENSIONS))
        bind.execute(
            table.insert().from_select(["id", "grain", "bucket", *DIMENSIONS, *measures], grouped)
        )


def downgrade() -> None:
    op.drop_table("rollup_tool_users")
