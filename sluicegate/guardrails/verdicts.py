"""What a guardrail says about the content it was shown: allow, block or mutate.

Plain frozen values, so a rule is a function from a content view to one of these and the
pipeline alone decides what each means for the request (an error in the client's format,
a rewritten body, a ledger event).
"""

from __future__ import annotations

import msgspec

from sluicegate.model.chat import ChatRequest, ChatResponse


class Allow(msgspec.Struct, frozen=True):
    """Let the content through unchanged (the common answer: use the `ALLOW` singleton)."""


class Block(msgspec.Struct, frozen=True):
    """Refuse the content. `reason` reaches the client and the ledger row."""

    reason: str


class Mutate(msgspec.Struct, frozen=True):
    """Replace the content: a `ChatRequest` on the request side (request input, tool
    output), a `ChatResponse` on a non-streamed reply (request output, tool input).
    The pipeline re-encodes it in the client's wire format. A stream cannot be
    rewritten yet (that needs the sliding window of a later issue): a Mutate on a
    stream blocks it rather than let the unrewritten content through."""

    content: ChatRequest | ChatResponse
    detail: str | None = None  # what was changed, for the ledger (never the content)


Verdict = Allow | Block | Mutate
ALLOW = Allow()
