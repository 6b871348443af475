"""Text that every ledger dialect can store.

PostgreSQL refuses NUL (U+0000) in a text column and in JSONB (`\\u0000`), and no driver
can encode a lone surrogate (U+D800-U+DFFF) as UTF-8, so a row holding either is refused
by the database while SQLite takes it. The edge refuses such values in what a client sends
(`first_unstorable` names the character for the 400); `storable` is the writer's last line
of defence for text that came from elsewhere (a provider's error message, a key's fields).
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def first_unstorable(text: str) -> str | None:
    """How to name the first character of `text` no dialect stores (None: all are fine)."""
    if text.isascii() and "\x00" not in text:  # the usual case, without the regex
        return None
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    return "a NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"


def storable(value: Any) -> Any:
    """`value` (builtins: str, list, dict, numbers) with every unstorable character in its
    strings and dict keys replaced by U+FFFD; anything else is returned as it is."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value
