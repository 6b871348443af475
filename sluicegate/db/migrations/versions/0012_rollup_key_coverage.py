"""rollup_key_coverage: since when each analytics metadata key is rolled up.

A key named in `gateway-analytics-config` gets `rollup_metadata` rows only for records
written while it is configured, so the read side needs to know from when (and, for a
key taken out, until when) those rows are complete (sluicegate/analytics/coverage.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_key_coverage",
        sa.Column("meta_key", sa.String(), nullable=False),
        sa.Column("covered_since", sa.Double(), nullable=False),
        sa.Column("covered_until", sa.Double()),
        sa.PrimaryKeyConstraint("meta_key", name="pk_rollup_key_coverage"),
    )


def downgrade() -> None:
    op.drop_table("rollup_key_coverage")
