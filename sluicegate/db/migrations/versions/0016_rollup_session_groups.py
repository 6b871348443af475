"""rollup_session_groups: sessions and their outcomes summed per (grain, bucket of the
session's last request, team, project, workflow tag, client tool), hour and day rows, so
that the outcome join reads a few rows per group (sluicegate/analytics/session_groups.py).

The rows are filled here from rollup_sessions and outcomes with one INSERT ... SELECT per
grain, as `sluicegate ledger rebuild-rollups` would fill them: each session counts once,
in the bucket of its last request, with its whole figures and every outcome naming it.
The column lists are written out here, frozen.

Revision ID: 0016
Revises: 0014 (0015 is being written alongside: whichever merges second revises the other)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DIMENSIONS = ("team", "project", "workflow_tag", "client_tool")
FIGURES = (
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
KINDS = ("pr_merged", "ticket_closed", "incident_resolved", "eval_run")
COUNTS = ("sessions", "traced_sessions", *FIGURES, "outcomes", *KINDS, "rated")
SUMS = ("cost_usd", "traced_cost_usd", "pass_rate_sum")
GRAINS = {"hour": 3600.0, "day": 86400.0}


def upgrade() -> None:
    op.create_table(
        "rollup_session_groups",
        sa.Column("grain", sa.String(), nullable=False),
        sa.Column("bucket", sa.Double(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in DIMENSIONS),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in COUNTS),
        *(sa.Column(m, sa.Double(), nullable=False) for m in SUMS),
        sa.PrimaryKeyConstraint("grain", "bucket", *DIMENSIONS, name="pk_rollup_session_groups"),
    )
    bind = op.get_bind()
    for grain, width in GRAINS.items():
        bind.execute(_fill(bind.dialect.name, grain, width))


def _fill(dialect: str, grain: str, width: float) -> sa.Insert:
    sessions = sa.table(
        "rollup_sessions",
        *(sa.column(c) for c in ("session_id", "last_ts", *DIMENSIONS, *FIGURES, "cost_usd")),
    )
    outcomes = sa.table("outcomes", *(sa.column(c) for c in ("id", "session_id", "kind")))
    outcomes.append_column(sa.column("pass_rate", sa.Double()))
    s, o = sessions.c, outcomes.c
    per = (
        sa.select(
            s.last_ts,
            *(s[d] for d in DIMENSIONS),
            *(s[m] for m in FIGURES),
            s.cost_usd,
            sa.func.count(o.id).label("outcomes"),
            *(
                sa.func.coalesce(sa.func.sum(sa.case((o.kind == k, 1), else_=0)), 0).label(k)
                for k in KINDS
            ),
            sa.func.coalesce(sa.func.sum(o.pass_rate), 0.0).label("pass_rate_sum"),
            sa.func.count(o.pass_rate).label("rated"),
        )
        .select_from(sessions.outerjoin(outcomes, o.session_id == s.session_id))
        .group_by(s.session_id)
        .subquery("per_session")
    )
    p = per.c
    if dialect == "postgresql":
        bucket = sa.func.floor(p.last_ts / width) * width
    else:
        bucket = sa.cast(sa.cast(p.last_ts / width, sa.Integer()), sa.Double()) * width
    traced = p.outcomes > 0
    dimensions = [p[d] for d in DIMENSIONS]
    source = sa.select(
        sa.literal(grain, sa.String()).label("grain"),
        bucket.label("bucket"),
        *dimensions,
        sa.func.count().label("sessions"),
        sa.func.sum(sa.case((traced, 1), else_=0)).label("traced_sessions"),
        *(sa.func.sum(p[m]).label(m) for m in (*FIGURES, "outcomes", *KINDS, "rated")),
        sa.func.sum(p.cost_usd).label("cost_usd"),
        sa.func.sum(sa.case((traced, p.cost_usd), else_=sa.literal(0.0, sa.Double()))).label(
            "traced_cost_usd"
        ),
        sa.func.sum(p.pass_rate_sum).label("pass_rate_sum"),
    ).group_by(sa.literal_column("bucket"), *dimensions)
    groups = sa.table(
        "rollup_session_groups",
        *(sa.column(c) for c in ("grain", "bucket", *DIMENSIONS, *COUNTS, *SUMS)),
    )
    return groups.insert().from_select(["grain", "bucket", *DIMENSIONS, *COUNTS, *SUMS], source)


def downgrade() -> None:
    op.drop_table("rollup_session_groups")
