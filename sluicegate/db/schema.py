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
    Column("client_tool", String()),  # 0007: Cursor, Claude Code, ... (identity/client_tool.py)
    Index("ix_requests_ts_request_id", "ts", "request_id"),  # 0011: keyset pages in time order
    Index("ix_requests_project_ts", "project", "ts"),
    Index("ix_requests_team_ts", "team", "ts"),
    # 0010: with the team, so that a team lead's outcomes are one probe per outcome
    Index("ix_requests_session_id_team", "session_id", "team"),
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

# -- rollups (sluicegate/analytics/rollups.py keeps them as ledger batches land) -------------
#
# One row per (grain, bucket, dimensions): `grain` is "hour" or "day" (and "week" in
# rollup_cuboids and rollup_tool_users, Monday to Sunday), `bucket` the UTC start of it
# in unix seconds.
# Dimensions are non-null strings ("" for no value) so that a row's identity is plain
# equality; `id` is the row's key (grain, bucket and a digest of the dimensions) so
# upserts conflict on one column on either dialect.
# Measures are additive: a batch adds its deltas, a rebuild recomputes them from the ledger.

LATENCY_BUCKETS = 25  # len(analytics.histogram.BOUNDS_MS) + 1; a test holds them equal

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
TOKEN_MEASURES = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
USAGE_MEASURES = (
    "requests",
    "errors",
    *TOKEN_MEASURES,
    "unpriced",  # requests with tokens and no price
    "estimated_usage",  # requests whose usage the gateway estimated (usage_source)
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
    *(f"latency_b{i:02d}" for i in range(LATENCY_BUCKETS)),
    *(f"ttft_b{i:02d}" for i in range(LATENCY_BUCKETS)),
)
FLOAT_MEASURES = ("cost_usd", "latency_sum_ms", "ttft_sum_ms")
USER_DIMENSIONS = ("user_id", "team", "project", "workflow_tag", "client_tool")
USER_MEASURES = ("requests", "errors", "input_tokens", "output_tokens")
# 0015: rollup_users over the dimensions adoption counts people by (analytics/rollups.py)
TOOL_USER_DIMENSIONS = ("user_id", "team", "client_tool")
METADATA_DIMENSIONS = ("meta_key", "meta_value", "team", "project", "workflow_tag", "model")
METADATA_MEASURES = ("requests", "errors", *TOKEN_MEASURES)


def _rollup_table(
    name: str,
    dimensions: tuple[str, ...],
    measures: tuple[str, ...],
    indexed: tuple[str, ...] = (),
) -> Table:
    """`indexed`: dimensions the (grain, bucket) index goes on to cover reads of them."""
    float_measures = FLOAT_MEASURES if name == "rollup_usage" else ("cost_usd",)
    index = ("grain", "bucket", *indexed)
    return Table(
        name,
        metadata,
        Column("id", String(), primary_key=True),
        Column("grain", String(), nullable=False),
        Column("bucket", Double(), nullable=False),
        *(Column(d, String(), nullable=False) for d in dimensions),
        *(Column(m, BigInteger(), nullable=False) for m in measures),
        *(Column(m, Double(), nullable=False) for m in float_measures),
        Index(f"ix_{name}_{'_'.join(index)}", *index),
    )


rollup_usage = _rollup_table("rollup_usage", USAGE_DIMENSIONS, USAGE_MEASURES)
rollup_users = _rollup_table("rollup_users", USER_DIMENSIONS, USER_MEASURES)
# 0015: rollup_users' figures per user, team and client tool alone, in hour, day and week
# rows: a 30-day count of distinct users reads a few rows per person, not one per hour,
# project and workflow. Names people as rollup_users does, under the same access rules.
# 0019: its index covers the people reads (distinct users by team and tool over buckets),
# so SQLite reads no table row for them and PostgreSQL can scan the index alone.
rollup_tool_users = _rollup_table(
    "rollup_tool_users",
    TOOL_USER_DIMENSIONS,
    USER_MEASURES,
    indexed=("team", "client_tool", "user_id"),
)
rollup_metadata = _rollup_table("rollup_metadata", METADATA_DIMENSIONS, METADATA_MEASURES)
# 0022: a query reads one key's rows; with several keys rolled up, (grain, bucket) alone
# made it read every key's rows in its window and drop the others'.
Index(
    "ix_rollup_metadata_meta_key_grain_bucket",
    rollup_metadata.c.meta_key,
    rollup_metadata.c.grain,
    rollup_metadata.c.bucket,
)

# 0013: narrower aggregates of rollup_usage (cuboids, analytics/cuboids.py), every usage
# measure over a few of its dimensions. One table for all of them: `cuboid` names one,
# and the dimensions it does not keep are "" (so a new cuboid is one line, no migration).
# A query reads the smallest cuboid holding what it needs; (cuboid, grain, bucket) finds
# its rows. Cuboids have week rows (0013), as rollup_tool_users (0015).
CUBOID_DIMENSIONS = ("cuboid", *USAGE_DIMENSIONS)
rollup_cuboids = Table(
    "rollup_cuboids",
    metadata,
    Column("id", String(), primary_key=True),
    Column("grain", String(), nullable=False),
    Column("bucket", Double(), nullable=False),
    *(Column(d, String(), nullable=False) for d in CUBOID_DIMENSIONS),
    *(Column(m, BigInteger(), nullable=False) for m in USAGE_MEASURES),
    *(Column(m, Double(), nullable=False) for m in FLOAT_MEASURES),
    Index("ix_rollup_cuboids_cuboid_grain_bucket", "cuboid", "grain", "bucket"),
    Index("ix_rollup_cuboids_grain_bucket", "grain", "bucket"),  # the rebuild's reads
)

# One row per session id: what the outcome join, the leverage score and the runaway
# detector read. Identity columns keep the first non-empty value seen.
SESSION_IDENTITY = ("user_id", "team", "project", "workflow_tag", "client_tool")
SESSION_MEASURES = (
    "requests",
    "errors",
    *TOKEN_MEASURES,
    "retry_tokens",  # input re-sent by retries and fallbacks, and tokens of failed requests
    "wasted_input_tokens",  # input of requests whose answer nobody used (error, client left)
    "rate_limit_hits",
    "budget_hits",
    "guardrail_blocks",
    "sessions_killed",
)
rollup_sessions = Table(
    "rollup_sessions",
    metadata,
    Column("session_id", String(), primary_key=True),
    Column("first_ts", Double(), nullable=False),
    Column("last_ts", Double(), nullable=False),
    *(Column(d, String(), nullable=False) for d in SESSION_IDENTITY),
    *(Column(m, BigInteger(), nullable=False) for m in SESSION_MEASURES),
    Column("cost_usd", Double(), nullable=False),
    Index("ix_rollup_sessions_last_ts", "last_ts"),
    Index("ix_rollup_sessions_workflow_tag_last_ts", "workflow_tag", "last_ts"),
)

# 0016: sessions summed per (grain, bucket of their last request, team, project, workflow
# tag, client tool), with their outcomes: the outcome join reads a 30-day window from a few
# rows per group (analytics/session_groups.py keeps it exact as sessions move between
# buckets and outcomes arrive).
SESSION_GROUP_DIMENSIONS = ("team", "project", "workflow_tag", "client_tool")
SESSION_GROUP_FIGURES = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "retry_tokens",
    "wasted_input_tokens",
    "rate_limit_hits",
    "budget_hits",
    "guardrail_blocks",
)
SESSION_GROUP_OUTCOMES = ("pr_merged", "ticket_closed", "incident_resolved", "eval_run")
SESSION_GROUP_COUNTS = (
    "sessions",
    "traced_sessions",
    *SESSION_GROUP_FIGURES,
    "outcomes",
    *SESSION_GROUP_OUTCOMES,
    "rated",
)
SESSION_GROUP_SUMS = ("cost_usd", "traced_cost_usd", "pass_rate_sum")
rollup_session_groups = Table(
    "rollup_session_groups",
    metadata,
    Column("grain", String(), primary_key=True),
    Column("bucket", Double(), primary_key=True),
    *(Column(d, String(), primary_key=True) for d in SESSION_GROUP_DIMENSIONS),
    *(Column(m, BigInteger(), nullable=False) for m in SESSION_GROUP_COUNTS),
    *(Column(m, Double(), nullable=False) for m in SESSION_GROUP_SUMS),
)

# 0008: admin API tokens (a role, and teams or a user for the scoped roles) and the
# trail of what admin callers did and saw.
admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", String(), primary_key=True),
    Column("name", String(), nullable=False),
    Column("role", String(), nullable=False),
    Column("teams", JSON(), nullable=False),
    Column("user_id", String()),
    Column("token_hash", String(), nullable=False),
    Column("token_prefix", String(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("created_by", String(), nullable=False),
    Column("updated_at", Double(), nullable=False),
    Column("revoked_at", Double()),
    Column("last_used_at", Double()),
    Column("expires_at", Double()),
    Index("ix_admin_tokens_token_hash", "token_hash", unique=True),
    Index("ix_admin_tokens_updated_at", "updated_at"),
)

admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("ts", Double(), nullable=False),
    Column("principal", String(), nullable=False),
    Column("role", String(), nullable=False),
    Column("token_id", String()),
    Column("action", String(), nullable=False),
    Column("path", Text(), nullable=False),
    Column("target", String()),
    Index("ix_admin_audit_ts", "ts"),
    sqlite_autoincrement=True,  # ids only grow: the listing's cursor relies on it
)

# 0009: what sessions produced (sluicegate/outcomes/), joined to `requests` by session id.
# (source, external_id) is the idempotency key: a re-sent outcome is stored once.
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", String(), primary_key=True),
    Column("source", String(), nullable=False),
    Column("external_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("session_id", String(), nullable=False),
    Column("workflow_tag", String()),
    Column("url", Text()),
    Column("value", Double()),
    Column("pass_rate", Double()),
    Column("ts", Double(), nullable=False),
    Column("received_at", Double(), nullable=False),
    Column("extra", JSON(), nullable=False),
    Index("ix_outcomes_source_external_id", "source", "external_id", unique=True),
    Index("ix_outcomes_session_id", "session_id"),
    Index("ix_outcomes_ts", "ts"),
)

# One row per metadata key that is or was rolled up (0012): `rollup_metadata` rows of the
# key are complete for records with covered_since <= ts < covered_until (NULL: still
# rolled up). Kept by the ledger stores and the rebuild (analytics/coverage.py).
rollup_key_coverage = Table(
    "rollup_key_coverage",
    metadata,
    Column("meta_key", String(), primary_key=True),
    Column("covered_since", Double(), nullable=False),
    Column("covered_until", Double()),
)

# How far each gateway process's ledger writer has landed its rows (0017): every request
# the process finished before `landed_through` (its clock) is in `requests`; `seen_at`
# is when it last said so. Read by budget rebuilds (ledger/landed_marks.py).
ledger_landed = Table(
    "ledger_landed",
    metadata,
    Column("writer_id", String(), primary_key=True),
    Column("landed_through", Double(), nullable=False),
    Column("seen_at", Double(), nullable=False),
)

# 0021: control-room (web UI) sign-in sessions, kept in the database so that a session
# works on every replica and across restarts. Only a hash of the session id is stored;
# `credential_hash` is the hash of the admin token (or admin key) signed in with, so a
# session dies with its token. Bounded per credential (ui/session_store.py).
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(), primary_key=True),
    Column("credential_hash", String(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("expires_at", Double(), nullable=False),
    Index("ix_ui_sessions_credential_hash", "credential_hash", "created_at"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)
