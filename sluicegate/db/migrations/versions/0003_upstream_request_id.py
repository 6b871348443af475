"""requests.upstream_request_id: the provider's id for the call that answered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("upstream_request_id", sa.String()))


def downgrade() -> None:
    op.drop_column("requests", "upstream_request_id")
