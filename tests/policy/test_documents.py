"""Config documents: the seed examples apply unchanged; bad documents name the field."""

from __future__ import annotations

import pytest
import yaml

from sluicegate.alerts.targets import NotificationTargetsDocument, PagerDutyTarget
from sluicegate.config.parse import documents_from_raw
from sluicegate.config.problems import ConfigValidationError
from sluicegate.errors import ConfigError
from sluicegate.policy.compiled import compile_policy
from sluicegate.policy.documents import (
    BudgetDocument,
    QuotaDocument,
    RateLimitDocument,
)
from tests.policy.helpers import ALIASES, REGISTRY, fixture_text, load, policy

SEEDS = ["rate-limit-config.yaml", "budget-config.yaml", "ratelimiting-config.yaml"]


def refusal(doc: dict) -> ConfigValidationError:
    """How the gateway's config parser refuses one raw document."""
    with pytest.raises(ConfigValidationError) as caught:
        documents_from_raw([doc], REGISTRY)
    return caught.value


def problems(doc: dict) -> list[tuple[str, str]]:
    """(path, message) of every problem found in one refused document."""
    return [(p.path, p.message) for p in refusal(doc).problem_list]


def seed(name: str) -> dict:
    return yaml.safe_load(fixture_text(name))


def test_seed_documents_validate_unchanged():
    rate, budget, quota = load(*(fixture_text(n) for n in SEEDS))
    assert isinstance(rate, RateLimitDocument) and len(rate.rules) == 3
    assert isinstance(budget, BudgetDocument) and len(budget.budgets) == 2
    assert isinstance(quota, QuotaDocument) and quota.rules[0].limit_to == 5000


def test_seed_rate_limits_compile():
    compiled = policy(fixture_text("rate-limit-config.yaml"))
    guard, burst, soft = compiled.rules
    assert (guard.measure, guard.limit, guard.window.seconds, guard.scope_name) == (
        "tokens",
        200000,
        3600,
        "session",
    )
    assert guard.breach.action == "hard_block"
    assert (burst.limit, burst.window.seconds, burst.scope_name, burst.breach.action) == (
        5000000,
        86400,
        "user",
        "queue",
    )
    assert (soft.measure, soft.scope_name, soft.breach.action) == ("requests", "global", "fallback")
    assert soft.breach.fallback_model == "claude-haiku-4-5"  # alias resolved


def test_seed_budgets_compile():
    compiled = policy(fixture_text("budget-config.yaml"))
    search, interns = compiled.budgets
    assert search.ceiling_micros == 4_000_000_000 and search.windows[0].label == "monthly"
    assert search.breach.action == "fallback" and search.breach.fallback_kind == "cheaper"
    assert [a.at_pct for a in search.alerts] == [80, 100]
    assert interns.breach.action == "hard_block" and interns.alerts == ()
    assert search.ledger_filters == ({"project": "platform-search"},)
    many = policy("""
name: b
type: gateway-budget-config
budgets:
  - id: x
    scope: {subjects: ["team:a", "user:u"], metadata: {customer: [acme, initech]}}
    ceiling_usd: 1
    window: daily
""").budgets[0]
    assert many.ledger_filters == (
        {"customer": "acme", "team": "a"}, {"customer": "acme", "user_id": "u"},
        {"customer": "initech", "team": "a"}, {"customer": "initech", "user_id": "u"},
    )  # fmt: skip
    # the seed's notify targets are not defined anywhere: a warning, not an error
    assert any("slack:#ai-budget-alerts" in w.message for w in compiled.warnings)


def test_seed_quota_compiles_to_a_per_subject_hard_block():
    (rule,) = policy(fixture_text("ratelimiting-config.yaml")).rules
    assert (rule.id, rule.measure, rule.limit, rule.window.label) == (
        "rule-id",
        "requests",
        5000,
        "1d",
    )
    assert rule.scope_name == "subject" and rule.breach.action == "hard_block"


def test_bad_window_names_the_path_and_the_fix():
    doc = seed("rate-limit-config.yaml")
    doc["rules"][2]["limit"]["window"] = "fortnight"
    error = refusal(doc)
    assert error.param == "rules[2].limit.window"
    assert (
        "rules[2].limit.window: 'fortnight' is not a window; use 30s, 1m, 1h, 1d" in error.message
    )
    (problem,) = error.problem_list
    assert problem.document == "production-rate-limits"
    assert problem.type == "gateway-rate-limit-config"


def test_unknown_field_is_refused():
    doc = seed("budget-config.yaml")
    doc["budgets"][1]["ceiling_usd_typo"] = 5
    assert problems(doc) == [("budgets[1]", "unknown field 'ceiling_usd_typo'")]
    top = seed("ratelimiting-config.yaml") | {"owner": "me"}
    assert problems(top) == [("", "unknown field 'owner'")]


def test_every_problem_is_reported():
    doc = seed("rate-limit-config.yaml")
    doc["rules"][0]["when"]["subjects"] = {"type": "dog"}
    doc["rules"][1]["when"]["subjects"] = ["bob"]
    doc["rules"][1]["on_breach"] = "explode"
    doc["rules"][2]["limit"]["tokens"] = 5  # requests and tokens both set
    message = refusal(doc).message
    assert "rules[0].when.subjects.type: input should be 'user', 'team' or 'key'" in message
    assert "rules[1].when.subjects[0]: 'bob' is not a subject" in message
    assert "rules[1].on_breach: 'explode' is not one of hard_block, queue_then_429" in message
    assert "rules[2].limit: set exactly one of requests or tokens" in message
    assert len(refusal(doc).problem_list) == 4


@pytest.mark.parametrize(
    ("change", "path", "text"),
    [
        ({"window": "fortnight"}, "budgets[0].window", "is not a budget window; use daily, weekly"),
        ({"windows": ["daily"]}, "budgets[0]", "set exactly one of window or windows"),
        ({"ceiling_usd": 0}, "budgets[0].ceiling_usd", "greater than 0"),
        ({"timezone": "Mars/Olympus"}, "budgets[0].timezone", "not an IANA timezone"),
        ({"on_exceed": "panic"}, "budgets[0].on_exceed", "is not one of hard_block"),
        (
            {"fallback_model": "x", "on_exceed": "hard_block"},
            "budgets[0]",
            "fallback_model applies",
        ),
        ({"alerts": [{"at_pct": -1}]}, "budgets[0].alerts[0].at_pct", "greater than 0"),
    ],
)
def test_bad_budgets(change, path, text):
    doc = seed("budget-config.yaml")
    doc["budgets"][0].update(change)
    error = refusal(doc)
    assert error.param == path and text in error.message


def test_bad_quota_unit():
    doc = seed("ratelimiting-config.yaml")
    doc["rules"][0]["unit"] = "requests_per_fortnight"
    error = refusal(doc)
    assert error.param == "rules[0].unit" and "requests_per_<period>" in error.message


def test_token_type_only_with_tokens():
    doc = seed("rate-limit-config.yaml")
    doc["rules"][2]["limit"]["token_type"] = "input"
    assert "token_type applies to token limits only" in refusal(doc).message


def test_unknown_document_type():
    error = refusal({"name": "x", "type": "gateway-nonsense"})
    assert error.param == "type" and "gateway-budget-config" in error.message
    (problem,) = error.problem_list
    assert (problem.document, problem.type) == ("x", "gateway-nonsense")


def test_budget_with_several_windows_and_a_timezone():
    (doc,) = load(
        """
name: team-budgets
type: gateway-budget-config
budgets:
  - id: search-team
    scope: {subjects: ["team:search"], models: [sonnet]}
    ceiling_usd: 250.5
    windows: [daily, rolling_7d]
    timezone: America/New_York
    on_exceed: fallback_to_cheaper
    fallback_model: haiku
"""
    )
    (budget,) = compile_policy([doc], aliases=ALIASES).budgets
    assert [w.label for w in budget.windows] == ["daily", "rolling_7d"]
    assert budget.windows[0].tz.key == "America/New_York"
    assert budget.breach.fallback_model == "claude-haiku-4-5"
    assert budget.ledger_filters is None  # the ledger's sum_cost cannot filter by model


def test_notification_targets():
    (doc,) = load(
        """
name: alert-targets
type: gateway-notification-targets
targets:
  "slack:#ai-budget-alerts": {kind: slack, url: "https://hooks.slack.example/T1"}
  "pagerduty:platform": {kind: pagerduty, routing_key: R0UTING}
  "webhook:finops":
    {kind: webhook, url: "http://finops.local/hook", headers: {Authorization: Bearer x}}
"""
    )
    assert isinstance(doc, NotificationTargetsDocument)
    pager = doc.targets["pagerduty:platform"]
    assert isinstance(pager, PagerDutyTarget) and pager.url.endswith("/v2/enqueue")
    compiled = compile_policy([doc, *load(fixture_text("budget-config.yaml"))], aliases={})
    assert compiled.warnings == ()
    bad = yaml.safe_load(
        'name: t\ntype: gateway-notification-targets\ntargets:\n  "slack:#x": {kind: webhook, url: "http://x"}\n'
        '  "pagerduty:p": {kind: pagerduty, routing_key: k, colour: red}\n'
    )
    assert ("targets['pagerduty:p']", "unknown field 'colour'") in problems(bad)


def test_rule_ids_are_unique_across_documents():
    budget = fixture_text("budget-config.yaml")
    clash = fixture_text("ratelimiting-config.yaml").replace('"rule-id"', "intern-sandbox-cap")
    with pytest.raises(ConfigError, match="'intern-sandbox-cap' is used twice"):
        policy(budget, clash)
