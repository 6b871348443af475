"""A model's tier (frontier, standard, economy): what the premium-review panel reviews.

    tier_of(model, overrides)   the analytics config's `model_tiers` first (an exact name,
                                then the longest glob pattern that matches: `claude-opus-*`),
                                else the default below, by model family

Defaults, first match wins (names compared lower-case, without a vendor prefix such as
`anthropic/`, `us.anthropic.` or `models/`):

    economy    mini, nano, haiku, flash, lite, small, embedding models
    frontier   claude opus; gpt-5 and gpt-4.5 (not their mini/nano); o1, o1-pro, o3-pro;
               gemini pro; grok-4
    standard   everything else (gpt-4o, gpt-4.1, claude sonnet, o3, llama...)

A table by family rather than by price: the panel asks "could a smaller model do this?",
which is about capability class; the projected cost on the cheaper target is what says
whether the move saves money.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import TypeVar

from sluicegate.analytics.config import ModelTier

V = TypeVar("V")

_ECONOMY = re.compile(r"(^|[-_.:])(mini|nano|haiku|flash|lite|small)([-_.:]|$)|haiku|embedding")
_FRONTIER = re.compile(
    r"^(claude-opus|claude-\d[\d.-]*-opus|gpt-5(?![\d])|gpt-4\.5|o1(-pro)?(-\d|$)|o3-pro"
    r"|gemini-[\w.-]*-pro|grok-4)"
)
# vendor prefixes routers and clouds put before a model name
_VENDOR = re.compile(r"^(models/|[a-z]{2}\.)?(anthropic|openai|google|meta|x-ai|xai)?[./]?")


def tier_of(model: str, overrides: Mapping[str, ModelTier]) -> ModelTier:
    configured = pattern_lookup(model, overrides)
    if configured is not None:
        return configured
    return default_tier(model)


def default_tier(model: str) -> ModelTier:
    name = _VENDOR.sub("", model.lower(), count=1) or model.lower()
    if _ECONOMY.search(name):
        return "economy"
    if _FRONTIER.match(name):
        return "frontier"
    return "standard"


def pattern_lookup(name: str, table: Mapping[str, V]) -> V | None:
    """`table[name]`, else the value of the longest glob pattern (`*`, `?`, `[...]`)
    matching `name` (ties: the pattern first in sort order, so the answer is stable)."""
    if name in table:
        return table[name]
    matching = [p for p in table if _is_pattern(p) and fnmatch.fnmatchcase(name, p)]
    if not matching:
        return None
    return table[min(matching, key=lambda p: (-len(p), p))]


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")
