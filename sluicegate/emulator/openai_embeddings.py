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
from sluicegate.emulator.tokens import canonical_json, text_tokens
from sluicegate.emulator.wire_errors import invalid_value, missing_field, wrong_type

DEFAULT_DIMENSIONS = 1536
_MAX_DIMENSIONS = 8192


def embeddings(call: ApiCall) -> Response:
    body = call.body
    model = fields.required_text(body, "model")
    if body.get("input") is None:
        raise missing_field("input")
    inputs = _inputs(body["input"])
    dimensions = fields.optional_int(body, "dimensions", minimum=1) or DEFAULT_DIMENSIONS
    if dimensions > _MAX_DIMENSIONS:
        raise invalid_value("dimensions", f"at most {_MAX_DIMENSIONS} dimensions.")
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
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [raw]
    items: list[str | list[int]] = []
    for index, item in enumerate(raw):
        is_tokens = isinstance(item, list) and all(isinstance(x, int) for x in item)
        if not (isinstance(item, str) or is_tokens):
            raise wrong_type(f"input[{index}]", "a string or an array of token ids")
        items.append(item)
    return items


def _input_tokens(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else text_tokens(item)
