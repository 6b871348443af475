"""OpenAI Embeddings (`POST /v1/embeddings`): always same-wire (no translation), so only
the facts, usage and errors are needed. Errors use the Chat Completions shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from sluicegate.model.usage import Usage
from sluicegate.wire.common import (
    RequestFacts,
    check_model,
    convert_body,
    estimate_tokens,
    invalid,
)
from sluicegate.wire.openai_response import parse_error, render_error, response_model

__all__ = [
    "inspect_request",
    "parse_error",
    "prepare_passthrough",
    "render_error",
    "response_model",
    "usage_from_response",
]


class _Body(msgspec.Struct):
    model: str
    # a string, strings, token ids, or token-id lists (mixing is refused below)
    input: str | list[str | int | list[int]]


def inspect_request(body: dict[str, Any]) -> RequestFacts:
    parsed = convert_body(body, _Body)
    check_model(parsed.model)
    items = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    if not items:
        raise invalid("input must not be empty", "input")
    chars = tokens = 0
    kinds = set()
    for item in items:
        kinds.add(type(item))
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, list):
            tokens += len(item)
        else:
            tokens += 1  # one token id of a flat token array
    if len(kinds) > 1:
        raise invalid("input items must all be strings or all token arrays", "input")
    return RequestFacts(
        model=parsed.model,
        stream=False,
        max_output_tokens=0,  # embeddings produce no output tokens
        include_usage=False,
        estimated_input_tokens=estimate_tokens(chars, 0) + tokens,
    )


def prepare_passthrough(
    body: dict[str, Any], model: str, *, stream: bool = False
) -> dict[str, Any]:
    """The body with the upstream model; `stream` is accepted for the common codec shape
    (embeddings never stream)."""
    return {**body, "model": model}


def usage_from_response(body: dict[str, Any]) -> Usage:
    """Only prompt tokens are billed; output stays None as the provider reports none."""
    usage = body.get("usage")
    prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    valid = isinstance(prompt, int) and not isinstance(prompt, bool)
    return Usage(input_tokens=prompt if valid else None)
