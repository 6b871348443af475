"""`when` conditions and scopes, through compiled rules."""

from __future__ import annotations

from sluicegate.identity.envelope import envelope_field, header_field
from sluicegate.model.identity import Envelope, Principal
from sluicegate.policy.compiled import compile_policy
from sluicegate.policy.matching import scope_getter
from tests.policy.helpers import ALIASES, fixture_text, load, policy

RULES = """
name: matching
type: gateway-rate-limit-config
rules:
  - id: alice-or-search
    when: {subjects: ["user:alice", "team:search"]}
    limit: {requests: 10, window: 1m}
  - id: by-key
    when: {subjects: ["key:k-42", "virtualaccount:va-james"]}
    limit: {requests: 10, window: 1m}
  - id: any-team
    when: {subjects: {type: team}}
    limit: {requests: 10, window: 1m}
  - id: prod-classify
    when:
      metadata: {x-tfy-environment: production, X-Sluice-Workflow-Tag: [classify, route]}
    limit: {requests: 10, window: 1m}
  - id: free-tag
    when: {metadata: {customer: acme, cost_center: cc-1}}
    limit: {requests: 10, window: 1m}
  - id: haiku-models
    when: {models: [haiku, "gpt-4o*"]}
    limit: {requests: 10, window: 1m}
"""


def matching(env: Envelope, who: Principal | None = None, model: str = "m") -> list[str]:
    compiled = policy(RULES)
    who = who or Principal(key_id="k-1")
    return [r.id for r in compiled.rules if r.matches(env, who, model)]


def test_header_names_map_to_envelope_fields():
    assert envelope_field("X-TFY-Environment") == "environment"
    assert envelope_field("x-sluice-user-id") == "user_id"
    assert envelope_field("X-TFY-Workflow-Tag") == "workflow_tag"
    assert envelope_field("X-Sluice-Cost-Center") == "cost_center"
    assert envelope_field("session_id") == "session_id"
    assert envelope_field("X-Acme-Project") is None
    assert envelope_field("X-Acme-Project", ["X-Acme-"]) == "project"
    assert envelope_field("customer") is None
    assert envelope_field("X-Sluice-User_Id") == "user_id"
    assert envelope_field("X-Sluice-Metadata") is None  # a free key, not the metadata map
    assert header_field("X-Sluice-Metadata") == "metadata"
    assert header_field("session_id") is None  # a field's own name is not a header


def test_subjects():
    assert matching(Envelope(user_id="alice")) == ["alice-or-search"]
    assert matching(Envelope(team="search")) == ["alice-or-search", "any-team"]
    assert matching(Envelope(), Principal(key_id="k-1", team="search")) == [
        "alice-or-search",
        "any-team",
    ]
    assert matching(Envelope(), Principal(key_id="k-42")) == ["by-key"]
    assert matching(Envelope(), Principal(key_id="k-9", name="va-james")) == ["by-key"]
    assert matching(Envelope(user_id="bob")) == []


def test_metadata_by_field_header_and_free_key():
    env = Envelope(environment="production", workflow_tag="route")
    assert matching(env) == ["prod-classify"]
    assert matching(Envelope(environment="staging", workflow_tag="route")) == []
    assert matching(Envelope(cost_center="cc-1", metadata={"customer": "acme"})) == ["free-tag"]
    assert matching(Envelope(cost_center="cc-1")) == []


def test_models_with_aliases_and_patterns():
    assert matching(Envelope(), model="claude-haiku-4-5") == ["haiku-models"]
    assert matching(Envelope(), model="haiku") == ["haiku-models"]
    assert matching(Envelope(), model="gpt-4o-mini") == ["haiku-models"]
    assert matching(Envelope(), model="gpt-5") == []


def test_custom_header_prefixes():
    (doc,) = load(RULES.replace("X-Sluice-Workflow-Tag", "X-Acme-Workflow-Tag"))
    compiled = compile_policy([doc], aliases=ALIASES, header_prefixes=["X-Acme-", "X-TFY-"])
    rule = compiled.rules[3]
    assert rule.matches(
        Envelope(environment="production", workflow_tag="classify"), Principal(key_id="k"), "m"
    )


def test_seed_rules_match_tfy_envelopes():
    compiled = policy(fixture_text("rate-limit-config.yaml"))
    env = Envelope(
        environment="production", workflow_tag="classify-intent", session_id="s1", user_id="u1"
    )
    assert [r.id for r in compiled.rules if r.matches(env, Principal(key_id="k"), "m")] == [
        "per-session-loop-guard",
        "per-user-burst",
        "classify-intent-soft-cap",
    ]
    assert [r.id for r in compiled.rules if r.matches(Envelope(), Principal(key_id="k"), "m")] == []


def test_scopes():
    env = Envelope(
        key_id=None,
        user_id="u",
        team="t",
        project="p",
        session_id="s",
        workflow_tag="w",
        environment="e",
        cost_center="c",
        metadata={"tenant": "acme"},
    )
    who = Principal(key_id="k")
    values = {
        scope: scope_getter(scope)(env, who, "m")
        for scope in [
            "global",
            "key",
            "user",
            "team",
            "project",
            "session",
            "workflow",
            "model",
            "environment",
            "cost_center",
            "metadata:tenant",
            "metadata:X-TFY-Project",
        ]  # fmt: skip
    }
    assert values == {
        "global": "*", "key": "k", "user": "u", "team": "t", "project": "p", "session": "s",
        "workflow": "w", "model": "m", "environment": "e", "cost_center": "c",
        "metadata:tenant": "acme", "metadata:X-TFY-Project": "p",
    }  # fmt: skip
