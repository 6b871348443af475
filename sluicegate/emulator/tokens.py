"""A deterministic approximate tokenizer shared by both emulated APIs.

Real tokenizers average roughly four characters per English token; the emulator only
needs counts that are stable, cheap and grow with the prompt, so that is the whole rule.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from sluicegate.emulator.wire_errors import RequestInvalid

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 3  # role markers and separators around each message
REPLY_PRIMING_TOKENS = 3  # OpenAI counts the assistant turn the reply starts
IMAGE_TOKENS = 85  # a fixed price per image or document, like OpenAI's low-detail images


def text_tokens(text: str) -> int:
    """About one token per four characters; at least one for any non-empty string."""
    if not text:
        return 0
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys) so equal values always count and hash the same.
    A request nested past what orjson writes (255 levels; it reads 1024) is refused."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise RequestInvalid(f"The request cannot be processed: {exc}.") from None


def json_tokens(value: Any) -> int:
    return text_tokens(canonical_json(value))
