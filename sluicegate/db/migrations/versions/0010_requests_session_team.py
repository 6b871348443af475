"""requests: the session index also holds the team, (session_id, team) in place of
(session_id).

A team lead's outcomes are those of sessions with a ledger row of its teams: one probe of
this index per outcome instead of reading the session's rows (measured on SQLite with
1M requests, 20k outcomes: a team's 1000 newest outcomes in 83 ms instead of 396 ms).
It serves every lookup by session id as the old one did, and a ledger write updates one
index, as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_session_id_team", "requests", ["session_id", "team"])
    op.drop_index("ix_requests_session_id", table_name="requests")


def downgrade() -> None:
    op.create_index("ix_requests_session_id", "requests", ["session_id"])
    op.drop_index("ix_requests_session_id_team", table_name="requests")
