"""SQLite and PostgreSQL give identical answers: the same records landed in both, every
panel asked the same questions, the answers compared whole (JSON as the API sends it)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.landing import land
from tests.analytics.panel_support import ADMIN, ask, context
from tests.analytics.traffic import traffic
from tests.db.databases import Databases

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = (("since", iso(DAY0 - 7 * HOUR - 59)), ("until", iso(DAY0 + 2 * DAY + 1)))
SETTINGS = AnalyticsSettings(rollup_metadata_keys=("customer_id",))
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search",))
MEMBER = AdminPrincipal("cy", Role.MEMBER, user_id="cy")
QUESTIONS = [
    ("latency", (), ADMIN),
    ("latency", (("group_by", "provider,status_class"), ("limit", "4")), ADMIN),
    ("latency", (("group_by", "metadata.feature"),), ADMIN),
    ("latency", (("group_by", "team"),), LEAD),
    ("latency", (), MEMBER),
    ("tags", (), ADMIN),
    ("tags", (("group_by", "metadata.customer_id,workflow_tag"), ("limit", "5")), ADMIN),
    ("tags", (("group_by", "metadata.feature"), ("environment", "prod")), ADMIN),
    ("tags", (("group_by", "project,client_tool"),), LEAD),
    ("tags", (("group_by", "user_id"),), ADMIN),
    ("tags", (("group_by", "workflow_tag"),), MEMBER),
    ("adoption", (), ADMIN),
    ("adoption", (("group_by", "team"), ("project", "alpha")), LEAD),
    ("burn-rate", (), ADMIN),
    ("burn-rate", (("group_by", "team,model"), ("limit", "3")), ADMIN),
    ("burn-rate", (("group_by", "workflow_tag"),), MEMBER),
]


@pytest.mark.postgres
async def test_sqlite_and_postgresql_answer_alike(databases: Databases) -> None:
    records = traffic(1500, start=DAY0 - DAY, span_s=4 * DAY, slow="anthropic")
    answers = {}
    for backend in ("sqlite", "postgres"):
        engine = await databases.engine(backend)
        await land(engine, records, ("customer_id",))
        ctx = dataclasses.replace(context(engine, SETTINGS), clock=lambda: DAY0 + 2 * DAY)
        answers[backend] = [
            msgspec.to_builtins(await ask(ctx, panel, *WINDOW, *params, principal=who))
            for panel, params, who in QUESTIONS
        ]
    for question, lite, pg in zip(QUESTIONS, answers["sqlite"], answers["postgres"], strict=True):
        assert lite["totals"]["requests"] > 0, question
        assert lite == pg, question
