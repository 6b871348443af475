"""requests.usage_source and requests.upstream_cancelled: whether a row's tokens are the
provider's report or the gateway's estimate (a stream the client left before the usage
arrived), and whether the gateway cut the provider's call short (it may bill in full).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("usage_source", sa.String()))
    # rows written before this revision: the gateway never cut a call short knowingly
    op.add_column(
        "requests",
        sa.Column("upstream_cancelled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("requests", "upstream_cancelled")
    op.drop_column("requests", "usage_source")
