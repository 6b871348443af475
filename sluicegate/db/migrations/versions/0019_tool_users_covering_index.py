"""rollup_tool_users: its (grain, bucket) index becomes (grain, bucket, team, client_tool,
user_id), which covers every read of the adoption panel and of known users.

Those reads count distinct users per team and tool over a range of buckets: with the
index covering them, SQLite reads the index alone (no lookup of each wide row by rowid),
and PostgreSQL can answer with an index-only scan. The old index is a prefix of the new
one, so every other read of (grain, bucket) (the rebuild's) is served as before, and the
writer keeps one index on the table, not two. Built from the rows in place: no data moves.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

TABLE = "rollup_tool_users"
OLD = "ix_rollup_tool_users_grain_bucket"
NEW = "ix_rollup_tool_users_grain_bucket_team_client_tool_user_id"


def upgrade() -> None:
    op.create_index(NEW, TABLE, ["grain", "bucket", "team", "client_tool", "user_id"])
    op.drop_index(OLD, table_name=TABLE)


def downgrade() -> None:
    op.create_index(OLD, TABLE, ["grain", "bucket"])
    op.drop_index(NEW, table_name=TABLE)
