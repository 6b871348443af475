"""POST /v1/embeddings: deterministic unit vectors, one per input, seeded by its hash.

The openai SDK asks for base64 by default (little-endian float32 bytes) and decodes it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

from starlette.responses import Response

from sluicegate.emulator import fields
from sluicegate.emulator.gate import ApiCall
from sluicegate.emulator.limits import (
    MAX_EMBEDDING_COMPONENTS,
    MAX_EMBEDDING_DIMENSIONS,
    MAX_EMBEDDING_INPUT_TOKENS,
    MAX_EMBEDDING_INPUTS,
)
from sluicegate.emulator.tokens import canonical_json, text_tokens
from sluicegate.emulator.wire_errors import RequestInvalid, invalid_value, missing_field, wrong_type

DEFAULT_DIMENSIONS = 1536


def embeddings(call: ApiCall) -> Response:
    body = call.body
    model = fields.required_text(body, "model")
    if body.get("input") is None:
        raise missing_field("input")
    inputs = _inputs(body["input"])
    dimensions = (
        fields.optional_int(body, "dimensions", minimum=1, maximum=MAX_EMBEDDING_DIMENSIONS)
        or DEFAULT_DIMENSIONS
    )
    _check_size(inputs, dimensions)
    encoding = fields.one_of(
        fields.optional_text(body, "encoding_format") or "float",
        ("float", "base64"),
        "encoding_format",
    )
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encoded(unit_vector(model, item, dimensions), encoding),
        }
        for index, item in enumerate(inputs)
    ]
    tokens = sum(_input_tokens(item) for item in inputs)
    return call.json(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def unit_vector(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """Gaussian components from a hash-seeded generator, scaled to length one. The first k
    components do not depend on `dimensions`, like real shortened embeddings."""
    key = canonical_json(item) if isinstance(item, list) else item
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{key}".encode()).digest()[:8], "big")
    generator = random.Random(seed)
    raw = [generator.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _inputs(raw: Any) -> list[str | list[int]]:
    """A string, an array of strings, an array of token ids, or an array of those arrays."""
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        raise wrong_type("input", "a string or a non-empty array")
    if all(_is_token(x) for x in raw):
        return [raw]
    items: list[str | list[int]] = []
    for index, item in enumerate(raw):
        is_tokens = isinstance(item, list) and all(_is_token(x) for x in item)
        if not (isinstance(item, str) or is_tokens):
            raise wrong_type(f"input[{index}]", "a string or an array of token ids")
        items.append(item)
    return items


def _check_size(inputs: list[str | list[int]], dimensions: int) -> None:
    """The real API's limits on inputs, and the emulator's own on the reply's size (every
    component is a float drawn in Python: 2**18 of them take ~0.5 s of the loop)."""
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise invalid_value(
            "input",
            f"array too long. Expected an array with maximum length {MAX_EMBEDDING_INPUTS}, "
            f"but got an array with length {len(inputs)} instead.",
        )
    for index, item in enumerate(inputs):
        tokens = _input_tokens(item)
        if tokens > MAX_EMBEDDING_INPUT_TOKENS:
            raise RequestInvalid(
                f"This model's maximum context length is {MAX_EMBEDDING_INPUT_TOKENS} tokens, "
                f"however you requested {tokens} tokens (input[{index}]). Please reduce your "
                "prompt; or completion length.",
                param=f"input[{index}]",
            )
    if len(inputs) * dimensions > MAX_EMBEDDING_COMPONENTS:
        raise RequestInvalid(
            f"The emulator returns at most {MAX_EMBEDDING_COMPONENTS} embedding components "
            f"per request; {len(inputs)} inputs x {dimensions} dimensions is "
            f"{len(inputs) * dimensions}. Send fewer inputs or ask for fewer dimensions.",
            param="input",
            code="emulator_limit",
        )


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


def _input_tokens(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else text_tokens(item)
