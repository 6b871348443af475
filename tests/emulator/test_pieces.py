"""Pure pieces of the emulator: schema instances, token counts, replies."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.emulator.replies import (
    Conversation,
    Ending,
    ToolMode,
    ToolOffer,
    compose_reply,
)
from sluicegate.emulator.schema_instance import instance_for_schema
from sluicegate.emulator.tokens import text_tokens
from tests.emulator.schema_check import assert_valid

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"q": {"type": "string", "minLength": 20}}, "required": ["q"]},
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 10, "maximum": 12},
            "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "kind": {"const": "fixed"},
            "size": {"enum": ["s", "m"]},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "when": {"type": "string", "format": "date-time"},
            "list": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
            "nested": {
                "type": "object",
                "properties": {"deep": {"type": ["string", "null"]}},
                "required": ["deep"],
            },
        },
        "required": ["n", "x", "flag", "kind", "size", "list", "nested"],
    },
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["children"],
            }
        },
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
        "required": ["root"],
    },
    {"type": "object", "properties": {}},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_instances_validate(schema: dict[str, Any]) -> None:
    assert_valid(instance_for_schema(schema), schema)


def test_token_counts() -> None:
    assert text_tokens("") == 0 and text_tokens("a") == 1
    assert text_tokens("a" * 400) == 100


def test_reply_is_deterministic_and_limited() -> None:
    conversation = Conversation(model="m", last_user_text="what is up")
    assert compose_reply(conversation) == compose_reply(conversation)
    cut = compose_reply(Conversation(model="m", last_user_text="what is up", max_tokens=4))
    assert cut.ending is Ending.LENGTH and cut.output_tokens == 4


def test_tool_choice_rules() -> None:
    tools = (ToolOffer("alpha", {"type": "object"}), ToolOffer("beta", {"type": "object"}))
    auto = Conversation(model="m", last_user_text="use beta", tools=tools)
    assert compose_reply(auto).tool_call.name == "beta"
    plain = Conversation(model="m", last_user_text="nothing named", tools=tools)
    assert compose_reply(plain).tool_call is None
    required = Conversation(model="m", last_user_text="x", tools=tools, tool_mode=ToolMode.REQUIRED)
    assert compose_reply(required).tool_call.name == "alpha"
    after_result = Conversation(
        model="m", last_user_text="use beta", tools=tools, last_tool_result="42 degrees"
    )
    reply = compose_reply(after_result)
    assert reply.tool_call is None and "42 degrees" in reply.text
