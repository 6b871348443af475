"""requests.route_reason: why the router did what it did (retries, fallbacks, open circuits).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("route_reason", sa.String()))


def downgrade() -> None:
    op.drop_column("requests", "route_reason")
