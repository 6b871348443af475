"""Rollups for the control room, and requests.client_tool.

`rollup_usage`, `rollup_users` and `rollup_metadata` hold additive measures per (grain,
bucket, dimensions); `rollup_sessions` one row per session. They are kept as ledger
batches land and rebuilt from the ledger with `sluicegate ledger rebuild-rollups` (which
also fills them for a ledger older than this revision). The column lists are written out
here, frozen: later changes to schema.py come with revisions of their own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

USAGE_DIMENSIONS = (
    "team",
    "project",
    "workflow_tag",
    "environment",
    "cost_center",
    "client_tool",
    "client_api",
    "requested_model",
    "model",
    "provider",
    "status_class",
    "error_type",
)
USAGE_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "unpriced",
    "estimated_usage",
    "streams",
    "attempts",
    "retries",
    "fallbacks",
    "rate_limit_hits",
    "budget_hits",
    "guardrail_events",
    "guardrail_blocks",
    "sessions_killed",
    "client_disconnects",
    "latency_count",
    "ttft_count",
    "latency_b00",
    "latency_b01",
    "latency_b02",
    "latency_b03",
    "latency_b04",
    "latency_b05",
    "latency_b06",
    "latency_b07",
    "latency_b08",
    "latency_b09",
    "latency_b10",
    "latency_b11",
    "latency_b12",
    "latency_b13",
    "latency_b14",
    "latency_b15",
    "latency_b16",
    "latency_b17",
    "latency_b18",
    "latency_b19",
    "latency_b20",
    "latency_b21",
    "latency_b22",
    "latency_b23",
    "latency_b24",
    "ttft_b00",
    "ttft_b01",
    "ttft_b02",
    "ttft_b03",
    "ttft_b04",
    "ttft_b05",
    "ttft_b06",
    "ttft_b07",
    "ttft_b08",
    "ttft_b09",
    "ttft_b10",
    "ttft_b11",
    "ttft_b12",
    "ttft_b13",
    "ttft_b14",
    "ttft_b15",
    "ttft_b16",
    "ttft_b17",
    "ttft_b18",
    "ttft_b19",
    "ttft_b20",
    "ttft_b21",
    "ttft_b22",
    "ttft_b23",
    "ttft_b24",
)
USAGE_FLOATS = (
    "cost_usd",
    "latency_sum_ms",
    "ttft_sum_ms",
)
USER_DIMENSIONS = (
    "user_id",
    "team",
    "project",
    "workflow_tag",
    "client_tool",
)
USER_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
)
METADATA_DIMENSIONS = (
    "meta_key",
    "meta_value",
    "team",
    "project",
    "workflow_tag",
    "model",
)
METADATA_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
SESSION_IDENTITY = (
    "user_id",
    "team",
    "project",
    "workflow_tag",
    "client_tool",
)
SESSION_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "retry_tokens",
    "wasted_input_tokens",
    "rate_limit_hits",
    "budget_hits",
    "guardrail_blocks",
    "sessions_killed",
)


def _rollup(
    name: str, dimensions: tuple[str, ...], counts: tuple[str, ...], floats: tuple[str, ...]
) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("grain", sa.String(), nullable=False),
        sa.Column("bucket", sa.Double(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in dimensions),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in counts),
        *(sa.Column(m, sa.Double(), nullable=False) for m in floats),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_grain_bucket", name, ["grain", "bucket"])


def upgrade() -> None:
    op.add_column("requests", sa.Column("client_tool", sa.String()))
    _rollup("rollup_usage", USAGE_DIMENSIONS, USAGE_COUNTS, USAGE_FLOATS)
    _rollup("rollup_users", USER_DIMENSIONS, USER_COUNTS, ("cost_usd",))
    _rollup("rollup_metadata", METADATA_DIMENSIONS, METADATA_COUNTS, ("cost_usd",))
    op.create_table(
        "rollup_sessions",
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("first_ts", sa.Double(), nullable=False),
        sa.Column("last_ts", sa.Double(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in SESSION_IDENTITY),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in SESSION_COUNTS),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_rollup_sessions"),
    )
    op.create_index("ix_rollup_sessions_last_ts", "rollup_sessions", ["last_ts"])
    op.create_index(
        "ix_rollup_sessions_workflow_tag_last_ts", "rollup_sessions", ["workflow_tag", "last_ts"]
    )


def downgrade() -> None:
    for name in ("rollup_sessions", "rollup_metadata", "rollup_users", "rollup_usage"):
        op.drop_table(name)
    op.drop_column("requests", "client_tool")
