"""Token usage as a provider reported it. `None` means "not reported", never zero."""

from __future__ import annotations

import msgspec


class Usage(msgspec.Struct, kw_only=True):
    """Token counts for one call.

    `input_tokens` is the *total* prompt size including cached tokens (OpenAI's
    `prompt_tokens` convention). Anthropic reports `input_tokens` excluding cache reads and
    writes; adapters add them back so every store, price and limit sees one convention.
    `reasoning_tokens` are part of `output_tokens` (both providers bill them as output).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def merged(self, later: Usage) -> Usage:
        """Fields reported later win; fields never reported stay None."""
        return Usage(
            input_tokens=_pick(later.input_tokens, self.input_tokens),
            output_tokens=_pick(later.output_tokens, self.output_tokens),
            cache_read_tokens=_pick(later.cache_read_tokens, self.cache_read_tokens),
            cache_write_tokens=_pick(later.cache_write_tokens, self.cache_write_tokens),
            reasoning_tokens=_pick(later.reasoning_tokens, self.reasoning_tokens),
        )


def _pick(later: int | None, earlier: int | None) -> int | None:
    return earlier if later is None else later
