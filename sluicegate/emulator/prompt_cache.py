"""Prompt-cache memory: which prompt prefixes the emulator has seen, by hash.

Anthropic caches explicitly, up to `cache_control` breakpoints; OpenAI caches
automatically, prompts of at least 1024 tokens, in 128-token steps. Both only need to
remember prefix hashes, so one memory serves both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sluicegate.emulator.tokens import CHARS_PER_TOKEN

OPENAI_MIN_CACHED_TOKENS = 1024
OPENAI_CACHE_STEP_TOKENS = 128
MAX_REMEMBERED_PREFIXES = 100_000  # long benchmark runs must not grow memory without end


@dataclass(frozen=True)
class Breakpoint:
    """A cacheable prefix: its hash, how many tokens it holds, and the cache lifetime."""

    prefix_hash: str
    tokens: int
    ttl: str  # "5m" or "1h"


@dataclass(frozen=True)
class AnthropicCacheUse:
    read_tokens: int = 0
    write_tokens: int = 0
    write_ttl: str = "5m"


class PromptCacheMemory:
    def __init__(self) -> None:
        self._seen: set[str] = set()

    def clear(self) -> None:
        self._seen.clear()

    def _remember(self, keys: list[str]) -> None:
        if len(self._seen) + len(keys) > MAX_REMEMBERED_PREFIXES:
            self._seen.clear()  # like a real cache expiring: later prompts miss again
        self._seen.update(keys)

    def anthropic_use(self, breakpoints: list[Breakpoint]) -> AnthropicCacheUse:
        """The longest prefix seen before is read; the rest up to the last breakpoint is
        written; every breakpoint is remembered for next time."""
        if not breakpoints:
            return AnthropicCacheUse()
        last = breakpoints[-1]
        read = max((b.tokens for b in breakpoints if b.prefix_hash in self._seen), default=0)
        self._remember([b.prefix_hash for b in breakpoints])
        return AnthropicCacheUse(
            read_tokens=read, write_tokens=last.tokens - read, write_ttl=last.ttl
        )

    def openai_cached_tokens(self, model: str, prompt_text: str, prompt_tokens: int) -> int:
        """Cached tokens for a prompt: the longest 128-token-step prefix (of at least 1024
        tokens) seen before. `prompt_text` is the prompt serialized in order."""
        if prompt_tokens < OPENAI_MIN_CACHED_TOKENS:
            return 0
        cached = 0
        digest = hashlib.sha256(f"openai\0{model}\0".encode())
        consumed = 0
        step_tokens = OPENAI_MIN_CACHED_TOKENS
        data = prompt_text.encode()
        keys: list[str] = []
        # Incremental hashing keeps this linear in the prompt length.
        while step_tokens <= prompt_tokens and step_tokens * CHARS_PER_TOKEN <= len(data):
            end = step_tokens * CHARS_PER_TOKEN
            digest.update(data[consumed:end])
            consumed = end
            key = digest.copy().hexdigest()
            if key in self._seen:
                cached = step_tokens
            keys.append(key)
            step_tokens += OPENAI_CACHE_STEP_TOKENS
        self._remember(keys)
        return cached
