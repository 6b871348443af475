"""Initial schema: requests (the ledger), api_keys, config_versions, alerts.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

QUERYABLE_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("key_id", sa.String()),
        sa.Column("user_id", sa.String()),
        sa.Column("team", sa.String()),
        sa.Column("project", sa.String()),
        sa.Column("session_id", sa.String()),
        sa.Column("workflow_tag", sa.String()),
        sa.Column("environment", sa.String()),
        sa.Column("cost_center", sa.String()),
        sa.Column("metadata", QUERYABLE_JSON, nullable=False),
        sa.Column("trace_id", sa.String()),
        sa.Column("client_api", sa.String()),
        sa.Column("requested_model", sa.String()),
        sa.Column("provider", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("response_model", sa.String()),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String()),
        sa.Column("error_message", sa.Text()),
        sa.Column("input_tokens", sa.BigInteger()),
        sa.Column("output_tokens", sa.BigInteger()),
        sa.Column("cache_read_tokens", sa.BigInteger()),
        sa.Column("cache_write_tokens", sa.BigInteger()),
        sa.Column("reasoning_tokens", sa.BigInteger()),
        sa.Column("cost_usd", sa.Double()),
        sa.Column("price_id", sa.String()),
        sa.Column("price_version", sa.String()),
        sa.Column("latency_ms", sa.Double()),
        sa.Column("ttft_ms", sa.Double()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("fallback_used", sa.Boolean(), nullable=False),
        sa.Column("retry_used", sa.Boolean(), nullable=False),
        sa.Column("routing_rule", sa.String()),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("policy_events", sa.JSON(), nullable=False),
        sa.Column("guardrail_events", sa.JSON(), nullable=False),
        sa.Column("session_killed", sa.Boolean(), nullable=False),
        sa.Column("client_disconnected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_requests"),
    )
    op.create_index("ix_requests_ts", "requests", ["ts"])
    op.create_index("ix_requests_project_ts", "requests", ["project", "ts"])
    op.create_index("ix_requests_team_ts", "requests", ["team", "ts"])
    op.create_index("ix_requests_session_id", "requests", ["session_id"])
    op.create_index("ix_requests_user_id_ts", "requests", ["user_id", "ts"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String()),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("key_prefix", sa.String(), nullable=False),
        sa.Column("user_id", sa.String()),
        sa.Column("team", sa.String()),
        sa.Column("project", sa.String()),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double()),
        sa.Column("revoked_at", sa.Double()),
        sa.Column("rotated_from", sa.String()),
        sa.Column("replaced_by", sa.String()),
        sa.Column("grace_until", sa.Double()),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index("ix_api_keys_updated_at", "api_keys", ["updated_at"])

    op.create_table(
        "config_versions",
        sa.Column("version", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("applied_at", sa.Double(), nullable=False),
        sa.Column("applied_by", sa.String(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_config_versions"),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_ts", "alerts", ["ts"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("config_versions")
    op.drop_table("api_keys")
    op.drop_table("requests")
