from __future__ import annotations

import pytest
from pydantic import BaseModel

from sluicegate.config.parse import parse_documents
from sluicegate.config.problems import ConfigValidationError
from sluicegate.config.registry import DEFAULT_TYPES, DocumentRegistry
from sluicegate.errors import ConfigError
from tests.config.documents import TEST_TYPES, BudgetDoc


def test_lazy_import_by_dotted_name():
    registry = DocumentRegistry(TEST_TYPES)
    assert registry.model_for("test-budget") is BudgetDoc
    assert registry.known_types == ["test-budget", "test-rate-limit"]
    assert "test-budget" in registry


def test_model_classes_are_accepted_directly():
    assert DocumentRegistry({"x": BudgetDoc}).model_for("x") is BudgetDoc


def test_unknown_type_lists_known_types():
    with pytest.raises(
        ConfigError, match="unknown document type 'nope'; known types: test-budget, test-rate-limit"
    ):
        DocumentRegistry(TEST_TYPES).model_for("nope")


def test_module_that_cannot_be_imported_is_named():
    registry = DocumentRegistry(
        {"x": "sluicegate.not_there:Doc", "y": "tests.config.documents:Nope"}
    )
    with pytest.raises(ConfigError, match="cannot import 'sluicegate.not_there'"):
        registry.model_for("x")
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        registry.model_for("y")
    with pytest.raises(ConfigValidationError) as caught:
        parse_documents("name: a\ntype: x\n", registry)
    assert caught.value.problems[0]["path"] == "type"


def test_refs_must_be_dotted_and_models():
    with pytest.raises(ConfigError, match="not 'package.module:ClassName'"):
        DocumentRegistry({"x": "tests.config.documents.BudgetDoc"})
    with pytest.raises(ConfigError, match="not a pydantic model"):
        DocumentRegistry({"x": "tests.config.documents:TEST_TYPES"}).model_for("x")


def test_default_table_names_the_gateway_types():
    assert set(DEFAULT_TYPES) >= {
        "gateway-providers",
        "gateway-rate-limit-config",
        "gateway-rate-limiting-config",
        "gateway-budget-config",
        "gateway-notification-targets",
        "gateway-load-balancing-config",
    }
    model = DocumentRegistry().model_for("gateway-providers")
    assert issubclass(model, BaseModel)
