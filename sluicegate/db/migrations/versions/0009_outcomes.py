"""outcomes: what sessions produced (PRs merged, tickets closed, incidents resolved, eval
runs), from the admin API and the GitHub and helpdesk webhooks; joined to `requests` by
session id. (source, external_id) is unique: the idempotency key of a re-sent outcome.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("workflow_tag", sa.String()),
        sa.Column("url", sa.Text()),
        sa.Column("value", sa.Double()),
        sa.Column("pass_rate", sa.Double()),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outcomes"),
    )
    op.create_index(
        "ix_outcomes_source_external_id", "outcomes", ["source", "external_id"], unique=True
    )
    op.create_index("ix_outcomes_session_id", "outcomes", ["session_id"])
    op.create_index("ix_outcomes_ts", "outcomes", ["ts"])


def downgrade() -> None:
    op.drop_table("outcomes")
