"""requests: the time index also orders by request_id, (ts, request_id).

Reading the ledger in time order a page at a time (a what-if replay: keyset on (ts,
request_id)) needs the rows after a given (ts, request_id) in that order; with ts alone
indexed, each page sorted every row after it (pages got slower the deeper they went).
The new index serves every query the ts index did (ts leads it), so it replaces it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_requests_ts_request_id", "requests", ["ts", "request_id"])
    op.drop_index("ix_requests_ts", table_name="requests")


def downgrade() -> None:
    op.create_index("ix_requests_ts", "requests", ["ts"])
    op.drop_index("ix_requests_ts_request_id", table_name="requests")
