"""api_keys: envelope defaults (workflow_tag, environment, cost_center) and `pinned`, the
fields a header may not change. Existing keys pin nothing new (`[]`): their user and team
stay pinned as before, their project stays a default.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("workflow_tag", sa.String()))
    op.add_column("api_keys", sa.Column("environment", sa.String()))
    op.add_column("api_keys", sa.Column("cost_center", sa.String()))
    op.add_column(
        "api_keys",
        sa.Column("pinned", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    for column in ("pinned", "cost_center", "environment", "workflow_tag"):
        op.drop_column("api_keys", column)
