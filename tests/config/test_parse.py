from __future__ import annotations

import pytest

from sluicegate.config import parse
from sluicegate.config.parse import load_raw, parse_documents, parse_sources
from sluicegate.config.problems import ConfigValidationError
from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import ConfigError
from tests.config.documents import BOTH, BudgetDoc, RateLimitDoc, billion_laughs


def problems_of(text: str, registry: DocumentRegistry) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        parse_documents(text, registry)
    assert isinstance(caught.value, ConfigError)
    return [line.strip() for line in caught.value.message.splitlines()[1:]]


def test_multi_document_yaml(registry):
    docs = parse_documents(BOTH, registry)
    assert [(d.type, d.name) for d in docs] == [
        ("test-rate-limit", "team-limits"),
        ("test-budget", "eng-budget"),
    ]
    assert isinstance(docs[0].model, RateLimitDoc)
    assert isinstance(docs[1].model, BudgetDoc)
    assert docs[0].model.rules[0].limit.requests == 100
    assert docs[1].raw == {"name": "eng-budget", "type": "test-budget", "ceiling_usd": 500}
    assert docs[1].key == ("test-budget", "eng-budget")


def test_empty_documents_are_skipped(registry):
    docs = parse_documents(f"---\n{BOTH}---\n", registry)
    assert len(docs) == 2


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "b", "type": "test-budget", "ceiling_usd": 5}',
        '[{"name": "b", "type": "test-budget", "ceiling_usd": 5}]',
        '{"documents": [{"name": "b", "type": "test-budget", "ceiling_usd": 5}]}',
    ],
)
def test_json_shapes(registry, text):
    (doc,) = parse_documents(text, registry)
    assert doc.name == "b" and doc.model.ceiling_usd == 5


def test_json_and_yaml_lists_of_documents(registry):
    docs = parse_documents(
        "documents:\n  - {name: a, type: test-budget, ceiling_usd: 1}\n"
        "  - {name: b, type: test-budget, ceiling_usd: 2}\n",
        registry,
    )
    assert [d.name for d in docs] == ["a", "b"]


def test_all_problems_collected_with_user_paths(registry):
    text = """\
name: team-limits
type: test-rate-limit
rules:
  - id: ok
    limit: {requests: 1, window: 1m}
  - id: typo
    limit: {requests: ten, window: 1m}
    on_breach: explode
  - id: bad-window
    limit: {requests: 5, window: fortnight, burst: 3}
---
type: test-budget
ceiling_usd: -1
on_exceed: {action: fallback}
"""
    lines = problems_of(text, registry)
    assert lines == [
        "team-limits (test-rate-limit): rules[1].limit.requests: input should be a valid "
        "integer, unable to parse string as an integer, got 'ten'",
        "team-limits (test-rate-limit): rules[1].on_breach: input should be 'hard_block' or "
        "'queue_then_429', got 'explode'",
        "team-limits (test-rate-limit): rules[2].limit.window: 'fortnight' is not a window; "
        "use 1m, 1h, 1d, ...",
        "team-limits (test-rate-limit): rules[2].limit: unknown field 'burst'",
        "#2 (test-budget): name: field required",
        "#2 (test-budget): ceiling_usd: input should be greater than 0, got -1",
        "#2 (test-budget): on_exceed.model: field required",
    ]


def test_structured_problems(registry):
    with pytest.raises(ConfigValidationError) as caught:
        parse_documents("name: x\ntype: test-budget\nceiling_usd: 1\ncolour: red\n", registry)
    assert caught.value.problems == [
        {"document": "x", "type": "test-budget", "path": "", "message": "unknown field 'colour'"}
    ]
    assert caught.value.details == caught.value.problems
    assert caught.value.status == 400


def test_union_members_merge_into_one_message(registry):
    lines = problems_of(
        "name: x\ntype: test-rate-limit\nrules:\n  - id: r\n"
        "    limit: {requests: [1], window: 1m}\n",
        registry,
    )
    assert lines == [
        "x (test-rate-limit): rules[0].limit.requests: input should be a valid integer, got a list"
    ]


def test_yaml_syntax_error_has_line_and_column(registry):
    lines = problems_of("name: x\ntype: test-budget\nceiling_usd: [1\n", registry)
    assert len(lines) == 1
    assert lines[0].startswith("input: YAML syntax error at line 4, column 1:")


def test_duplicate_yaml_key_is_an_error(registry):
    lines = problems_of("name: x\ntype: test-budget\nceiling_usd: 1\nceiling_usd: 2\n", registry)
    assert lines == ["input: YAML syntax error at line 4, column 1: duplicate key 'ceiling_usd'"]


def test_json_syntax_error(registry):
    lines = problems_of('{"name": "x",\n "type": "a",, }', registry)
    assert lines[0].startswith("input: JSON syntax error at line 2, column 14")
    with pytest.raises(ConfigValidationError, match="JSON syntax error at line 1, column 10"):
        parse_documents('{"name": x}', registry, format="json")


def test_flow_yaml_that_is_not_json(registry):
    (doc,) = parse_documents("{name: b, type: test-budget, ceiling_usd: 5}", registry)
    assert doc.name == "b"


def test_duplicate_documents_in_one_apply(registry):
    text = f"{BOTH}---\nname: eng-budget\ntype: test-budget\nceiling_usd: 9\n"
    assert problems_of(text, registry) == [
        "eng-budget (test-budget): name: duplicate document: #2 and #3 are both "
        "'test-budget' named 'eng-budget'"
    ]


def test_unknown_type_lists_known_types(registry):
    assert problems_of("name: x\ntype: gateway-nope\n", registry) == [
        "x (gateway-nope): type: unknown document type 'gateway-nope'; known types: "
        "test-budget, test-rate-limit"
    ]


def test_missing_type_and_non_mapping(registry):
    assert problems_of("name: x\n---\n- 5\n- [1]\n", registry) == [
        "x: type: field required",
        "#2: a document must be a mapping with 'name' and 'type', got 5",
        "#3: a document must be a mapping with 'name' and 'type', got a list",
    ]


def test_timestamps_stay_strings(registry):
    (raw,) = load_raw("name: x\nstarts: 2025-01-01\n")
    assert raw == {"name": "x", "starts": "2025-01-01"}


def test_sources_are_named_in_problems(registry):
    with pytest.raises(ConfigValidationError) as caught:
        parse_sources([("a.yaml", BOTH), ("b.yaml", "type: test-budget\n---\nx: [\n")], registry)
    assert [p["document"] for p in caught.value.problems] == ["b.yaml"]
    with pytest.raises(ConfigValidationError) as caught:
        parse_sources(
            [("a.yaml", BOTH), ("b.yaml", "type: test-budget\nceiling_usd: 1\n")], registry
        )
    assert caught.value.problems[0]["document"] == "b.yaml#1"


def test_duplicates_across_sources(registry):
    with pytest.raises(ConfigValidationError) as caught:
        parse_sources([("a.yaml", BOTH), ("b.yaml", BOTH)], registry)
    assert len(caught.value.problems) == 2
    assert "a.yaml#1 and b.yaml#1" in caught.value.problems[0]["message"]


def test_an_alias_bomb_is_refused_before_it_expands(registry):
    (problem,) = problems_of(billion_laughs("test-budget"), registry)
    assert "more than 100000 YAML nodes (counting each alias expanded)" in problem
    assert "line 6" in problem  # refused while composing, long before the last level


def test_aliases_that_stay_under_the_limit_still_work(registry):
    text = "rules: &r []\nname: b\ntype: test-budget\nceiling_usd: 5\n---\n"
    assert load_raw(text + "x: &x [1, 2]\ny: [*x, *x]\n")[1] == {"x": [1, 2], "y": [[1, 2]] * 2}


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a: &a [1, *a]\n", "alias *a refers to a collection holding it"),
        ("a: &a {b: {c: *a}}\n", "alias *a refers to a collection holding it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "collections nested more than 64 deep"),
    ],
)
def test_yaml_over_a_limit_is_a_problem_not_a_crash(registry, text, problem):
    with pytest.raises(ConfigValidationError) as caught:
        load_raw(text)
    assert problem in caught.value.message
    assert "YAML refused at line" in caught.value.message


def test_plain_yaml_over_the_node_limit_is_refused(registry, monkeypatch):
    monkeypatch.setattr(parse, "MAX_YAML_NODES", 1000)  # 100k nodes take PyYAML ~3 s
    with pytest.raises(ConfigValidationError) as caught:
        load_raw("- 1\n" * 1000)
    assert "more than 1000 YAML nodes" in caught.value.message
