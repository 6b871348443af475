"""admin_tokens.expires_at: an admin API token may be issued for a limited time.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("admin_tokens", sa.Column("expires_at", sa.Double()))


def downgrade() -> None:
    op.drop_column("admin_tokens", "expires_at")
