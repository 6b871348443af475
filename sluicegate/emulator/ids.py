"""Identifiers in the shapes the real APIs use. Random: only the content is deterministic."""

from __future__ import annotations

import secrets
import string

_BASE62 = (string.ascii_letters + string.digits).encode()
# Maps every byte to a base62 character (the slight bias is irrelevant for ids); translate
# is far cheaper per request than choosing characters one by one.
_BYTE_TO_BASE62 = bytes(_BASE62[b % len(_BASE62)] for b in range(256))


def _base62(length: int) -> str:
    return secrets.token_bytes(length).translate(_BYTE_TO_BASE62).decode()


def openai_request_id() -> str:
    return f"req_{secrets.token_hex(16)}"


def anthropic_request_id() -> str:
    return f"req_011C{_base62(20)}"


def chat_completion_id() -> str:
    return f"chatcmpl-{_base62(29)}"


def tool_call_id() -> str:
    return f"call_{_base62(24)}"


def message_id() -> str:
    return f"msg_01{_base62(22)}"


def tool_use_id() -> str:
    return f"toolu_01{_base62(22)}"
