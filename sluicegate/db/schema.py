"""The schema, in SQLAlchemy Core, identical on SQLite and PostgreSQL.

Times are float unix seconds (`Double`) everywhere, so ranges, cursors and rollups are
plain arithmetic on either dialect. Free-form strings are unbounded (`String()` without a
length) so that an unusually long id can never make a ledger batch fail on PostgreSQL.

The Alembic revisions in `migrations/versions/` create these tables with explicit
`op.create_table` calls; a test compares the migrated database with this module.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

# Queried by key (`metadata ->> 'k'`), so JSONB on PostgreSQL; written-once documents stay
# plain JSON so that their key order survives the round trip.
QUERYABLE_JSON = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

requests = Table(
    "requests",
    metadata,
    Column("request_id", String(), primary_key=True),
    Column("ts", Double(), nullable=False),
    Column("key_id", String()),
    Column("user_id", String()),
    Column("team", String()),
    Column("project", String()),
    Column("session_id", String()),
    Column("workflow_tag", String()),
    Column("environment", String()),
    Column("cost_center", String()),
    Column("metadata", QUERYABLE_JSON, nullable=False),
    Column("trace_id", String()),
    Column("client_api", String()),
    Column("requested_model", String()),
    Column("provider", String()),
    Column("model", String()),
    Column("response_model", String()),
    Column("upstream_request_id", String()),
    Column("status_code", Integer(), nullable=False),
    Column("error_type", String()),
    Column("error_message", Text()),
    Column("input_tokens", BigInteger()),
    Column("output_tokens", BigInteger()),
    Column("cache_read_tokens", BigInteger()),
    Column("cache_write_tokens", BigInteger()),
    Column("reasoning_tokens", BigInteger()),
    Column("usage_source", String()),
    Column("cost_usd", Double()),
    Column("price_id", String()),
    Column("price_version", String()),
    Column("priced_as", String()),
    Column("latency_ms", Double()),
    Column("ttft_ms", Double()),
    Column("stream", Boolean(), nullable=False),
    Column("attempt_count", Integer(), nullable=False),
    Column("fallback_used", Boolean(), nullable=False),
    Column("retry_used", Boolean(), nullable=False),
    Column("routing_rule", String()),
    Column("route_reason", String()),
    Column("attempts", JSON(), nullable=False),
    Column("policy_events", JSON(), nullable=False),
    Column("guardrail_events", JSON(), nullable=False),
    Column("session_killed", Boolean(), nullable=False),
    Column("client_disconnected", Boolean(), nullable=False),
    Column("upstream_cancelled", Boolean(), nullable=False, server_default=false()),
    Index("ix_requests_ts_request_id", "ts", "request_id"),  # 0007: keyset pages in time order
    Index("ix_requests_project_ts", "project", "ts"),
    Index("ix_requests_team_ts", "team", "ts"),
    Index("ix_requests_session_id", "session_id"),
    Index("ix_requests_user_id_ts", "user_id", "ts"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(), primary_key=True),
    Column("name", String()),
    Column("key_hash", String(), nullable=False),
    Column("key_prefix", String(), nullable=False),
    Column("user_id", String()),
    Column("team", String()),
    Column("project", String()),
    Column("models", JSON(), nullable=False),
    Column("is_admin", Boolean(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("updated_at", Double(), nullable=False),
    Column("expires_at", Double()),
    Column("revoked_at", Double()),
    Column("rotated_from", String()),
    Column("replaced_by", String()),
    Column("grace_until", Double()),
    Column("metadata", JSON(), nullable=False),
    Column("workflow_tag", String()),  # 0004: envelope defaults, and which fields are pinned
    Column("environment", String()),
    Column("cost_center", String()),
    Column("pinned", JSON(), nullable=False, server_default=text("'[]'")),
    Index("ix_api_keys_key_hash", "key_hash", unique=True),
    Index("ix_api_keys_updated_at", "updated_at"),
)

config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer(), primary_key=True, autoincrement=True),
    Column("applied_at", Double(), nullable=False),
    Column("applied_by", String(), nullable=False),
    Column("comment", Text()),
    Column("documents", JSON(), nullable=False),
    Column("source", Text(), nullable=False),
    sqlite_autoincrement=True,  # never reuse a version number
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("ts", Double(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("rule_id", String(), nullable=False),
    Column("severity", String(), nullable=False),
    Column("message", Text(), nullable=False),
    Column("payload", JSON(), nullable=False),
    Column("delivered", Boolean(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", Text()),
    Index("ix_alerts_ts", "ts"),
    sqlite_autoincrement=True,
)
