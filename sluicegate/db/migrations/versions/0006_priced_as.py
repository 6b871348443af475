"""requests.priced_as: the model whose prices an unpriced call was charged at.

A budget with `unpriced: {price_as: MODEL}` reserves and settles a call to a model with no
price at MODEL's prices; the row's cost is then that, and this column says so.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("priced_as", sa.String()))


def downgrade() -> None:
    op.drop_column("requests", "priced_as")
