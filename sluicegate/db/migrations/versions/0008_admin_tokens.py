"""admin_tokens (admin API tokens with a role, stored hashed) and admin_audit (who among
the admin callers saw people's figures, and who made or revoked a token).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.String()),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("token_prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double()),
        sa.Column("last_used_at", sa.Double()),
        sa.PrimaryKeyConstraint("id", name="pk_admin_tokens"),
    )
    op.create_index("ix_admin_tokens_token_hash", "admin_tokens", ["token_hash"], unique=True)
    op.create_index("ix_admin_tokens_updated_at", "admin_tokens", ["updated_at"])
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_id", sa.String()),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("target", sa.String()),
        sa.PrimaryKeyConstraint("id", name="pk_admin_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_admin_audit_ts", "admin_audit", ["ts"])


def downgrade() -> None:
    op.drop_table("admin_audit")
    op.drop_table("admin_tokens")
