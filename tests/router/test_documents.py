from __future__ import annotations

import pydantic
import pytest
import yaml

from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import ConfigError
from sluicegate.router.compile import compile_document, compile_routes
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.routes import DEFAULT_FALLBACK_STATUS_CODES
from tests.router.conftest import SEED_YAML


def load(text: str) -> LoadBalancingDocument:
    return LoadBalancingDocument.model_validate(yaml.safe_load(text))


def refused(text: str) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        load(text)
    return str(info.value)


HEAD = "name: vm\ntype: gateway-load-balancing-config\n"


def test_the_seed_routing_document_validates_unchanged_and_compiles():
    doc = LoadBalancingDocument.model_validate(yaml.safe_load(SEED_YAML.read_text()))
    vm = compile_document(doc)

    assert vm.name == "intent-fast"
    (route,) = vm.routes
    assert route.rule_type == "weight-based" and route.when is None
    assert [(t.id, t.provider, t.model, t.weight, t.timeout_ms) for t in route.rules] == [
        ("primary-haiku", "anthropic", "claude-haiku-4-5", 90, 8000),
        ("secondary-bedrock-haiku", "bedrock", "anthropic.claude-haiku-4-5", 10, 8000),
    ]
    assert [(t.id, t.provider, t.model) for t in route.fallbacks] == [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("vertex/gemini-2.0-flash", "vertex", "gemini-2.0-flash"),
    ]
    assert route.fallback_status_codes == DEFAULT_FALLBACK_STATUS_CODES
    assert vm.breaker is not None
    assert (
        vm.breaker.failure_threshold,
        vm.breaker.window_seconds,
        vm.breaker.cooldown_seconds,
    ) == (5, 60, 30)


def test_the_config_registry_finds_this_document_type():
    assert DocumentRegistry().model_for("gateway-load-balancing-config") is LoadBalancingDocument


def test_target_options_retry_headers_and_a_pinned_model_version():
    doc = load(
        HEAD
        + """
rule_type: priority-based
retry: {attempts: 2, delay_ms: 100}
fallback_status_codes: [429, 503]
sticky_session: {enabled: true, ttl_seconds: 600, by: X-TFY-User-ID}
targets:
  - provider: anthropic
    model: claude-sonnet-4-6
    priority: 0
    ttft_timeout_ms: 1500
    override_params: {temperature: 0.2, model: claude-sonnet-4-6-20260101}
    headers: {set: {anthropic-beta: tools}, remove: [x-debug]}
  - target: {provider: openai, model: gpt-4o}
    priority: 1
    retry: {attempts: 3, delay_ms: 50, max_delay_ms: 400, jitter: false, on_status_codes: [500]}
"""
    )
    (route,) = compile_document(doc).routes
    first, second = route.rules
    assert first.id == "anthropic/claude-sonnet-4-6-20260101"
    assert first.model == "claude-sonnet-4-6-20260101"  # what is sent upstream
    assert first.override_params == {"temperature": 0.2}
    assert first.headers_set == {"anthropic-beta": "tools"} and first.headers_remove == ("x-debug",)
    assert first.ttft_timeout_ms == 1500
    assert first.retry.attempts == 2 and first.retry.delay_ms == 100  # the document default
    assert second.retry.attempts == 3 and second.retry.on_status_codes == {500}
    assert route.fallback_status_codes == {429, 503}
    assert compile_document(doc).sticky.by == "user_id"


def test_generated_ids_stay_unique_within_a_rule_set():
    doc = load(
        HEAD
        + """
rules:
  - {target: {provider: openai, model: gpt-4o}, override_params: {temperature: 0}}
  - {target: {provider: openai, model: gpt-4o}, override_params: {temperature: 1}}
fallbacks: [{provider: openai, model: gpt-4o}]
"""
    )
    (route,) = compile_document(doc).routes
    assert [t.id for t in (*route.rules, *route.fallbacks)] == [
        "openai/gpt-4o",
        "openai/gpt-4o#2",
        "openai/gpt-4o#3",
    ]


def test_routes_inherit_document_settings_and_compile_conditions():
    doc = load(
        HEAD
        + """
rule_type: latency-based
latency_tolerance_pct: 35
fallbacks: [{provider: openai, model: gpt-4o-mini}]
routes:
  - id: prod
    when: {metadata: {X-TFY-Environment: production}, subjects: ["team:search"]}
    rule_type: priority-based
    rules: [{target: {provider: anthropic, model: claude-haiku-4-5}}]
    fallbacks: []
  - id: default
    rules: [{target: {provider: bedrock, model: anthropic.claude-haiku-4-5}}]
"""
    )
    prod, default = compile_document(doc).routes
    assert prod.rule_type == "priority-based" and prod.fallbacks == ()
    assert default.rule_type == "latency-based" and default.latency.tolerance_pct == 35
    assert [t.model for t in default.fallbacks] == ["gpt-4o-mini"]
    assert prod.when is not None and default.when is None


@pytest.mark.parametrize(
    "body, message",
    [
        ("rule_type: weight-based\n", "give either `rules` (one rule set) or `routes`"),
        (
            "rules: [{target: {provider: a, model: m}}]\n"
            "routes: [{id: r, rules: [{provider: a, model: m}]}]\n",
            "not both",
        ),
        ("rules: [{target: {provider: a, model: m}, weight: 0}]\n", "every rule has weight 0"),
        ("rules: [{target: {provider: a, model: m}, wieght: 5}]\n", "wieght"),
        (
            "rules: [{target: {provider: a, model: m}}]\nfallback_status_codes: [200]\n",
            "200 is not an HTTP error status",
        ),
        ("rules: [{target: {provider: a, model: m}}]\nrule_type: round-robin\n", "rule_type"),
        (
            "rules:\n  - {id: x, target: {provider: a, model: m}}\n"
            "  - {id: x, target: {provider: b, model: m}}\n",
            "target ids must be unique within a rule set: x",
        ),
        (
            "rules: [{target: {provider: a, model: m},\n"
            "         retry: {delay_ms: 500, max_delay_ms: 100}}]\n",
            "max_delay_ms (100) must not be below delay_ms (500)",
        ),
        (
            "routes:\n  - {id: any, rules: [{provider: a, model: m}]}\n"
            "  - {id: prod, when: {workflow_tag: x}, rules: [{provider: a, model: m}]}\n",
            "route 'any' has no `when`, so it would shadow the routes after it",
        ),
        (
            "routes:\n  - {id: r, when: {subjects: ['planet:mars']},\n"
            "     rules: [{provider: a, model: m}]}\n",
            "subject 'planet:mars'",
        ),
        ("routes:\n  - {id: r, when: {}, rules: [{provider: a, model: m}]}\n", "an empty `when`"),
        (
            "routes:\n  - {id: a, when: {workflow_tag: x},\n"
            "     rules: [{id: t, provider: a, model: m}]}\n"
            "  - {id: b, rules: [{id: t, provider: b, model: m}]}\n",
            "target id 't' names both a/m and b/m",
        ),
    ],
)
def test_bad_documents_are_refused_with_a_clear_message(body: str, message: str):
    assert message in refused(HEAD + body)


def test_compile_routes_builds_the_table_and_refuses_a_name_twice():
    doc = LoadBalancingDocument.model_validate(yaml.safe_load(SEED_YAML.read_text()))
    assert list(compile_routes([doc])) == ["intent-fast"]
    with pytest.raises(ConfigError, match="two load-balancing documents define 'intent-fast'"):
        compile_routes([doc, doc])


def test_a_route_is_checked_with_the_settings_it_inherits():
    message = refused(
        HEAD
        + """
fallbacks: [{id: x, provider: q, model: f}]
routes:
  - {id: r, rules: [{id: x, provider: a, model: m}]}
"""
    )
    assert "route 'r': target ids must be unique within a rule set: x" in message
    load(
        HEAD
        + """
rule_type: priority-based
routes:
  - {id: r, rules: [{provider: a, model: m, weight: 0}]}
"""
    )
