"""Every document in examples/ applies as shipped (the README points users at them)."""

from pathlib import Path

import pytest

from sluicegate.config.parse import parse_documents
from sluicegate.config.registry import DocumentRegistry
from sluicegate.policy.compiled import compile_policy
from sluicegate.router.compile import compile_routes

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    documents = parse_documents(path.read_text(), DocumentRegistry(), source_name=path.name)
    assert documents


def test_examples_compile_together():
    registry = DocumentRegistry()
    models = [d.model for p in EXAMPLES for d in parse_documents(p.read_text(), registry)]
    policy = compile_policy(
        [
            m
            for m in models
            if m.type != "gateway-load-balancing-config" and m.type != "gateway-providers"
        ],
        aliases={"haiku": "claude-haiku-4-5"},
    )
    assert not policy.warnings  # every notify target the budgets name is defined
    routes = compile_routes([m for m in models if m.type == "gateway-load-balancing-config"])
    assert "intent-fast" in routes
