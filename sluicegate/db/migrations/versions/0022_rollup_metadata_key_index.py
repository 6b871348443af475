"""rollup_metadata: an index on (meta_key, grain, bucket), so a query of one metadata key
reads only that key's rows in its window (with two keys rolled up it read both).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

INDEX = "ix_rollup_metadata_meta_key_grain_bucket"


def upgrade() -> None:
    op.create_index(INDEX, "rollup_metadata", ["meta_key", "grain", "bucket"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="rollup_metadata")
