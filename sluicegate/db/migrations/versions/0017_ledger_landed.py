"""ledger_landed: how far each gateway process's ledger writer has landed its rows.

A budget rebuild after Redis lost its data reads the ledger once every live replica's
mark has passed the counters' cutoff (sluicegate/ledger/landed_marks.py), instead of
sleeping a fixed time and hoping.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_landed",
        sa.Column("writer_id", sa.String(), nullable=False),
        sa.Column("landed_through", sa.Double(), nullable=False),
        sa.Column("seen_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("writer_id", name="pk_ledger_landed"),
    )


def downgrade() -> None:
    op.drop_table("ledger_landed")
