"""A model's tier: the defaults by family (the names providers and routers use, vendor
prefixes included), and the analytics config's overrides: an exact name first, then the
longest glob pattern."""

from __future__ import annotations

import pytest

from sluicegate.analytics.tiers import default_tier, pattern_lookup, tier_of


@pytest.mark.parametrize(
    ("model", "tier"),
    [
        ("claude-opus-4-7", "frontier"),
        ("claude-3-opus-20240229", "frontier"),
        ("anthropic/claude-opus-4-1", "frontier"),  # a router's vendor prefix
        ("us.anthropic.claude-opus-4-1-v1:0", "frontier"),  # Bedrock's
        ("gpt-5", "frontier"),
        ("gpt-5-2025-08-07", "frontier"),
        ("o1", "frontier"),
        ("o3-pro", "frontier"),
        ("models/gemini-2.5-pro", "frontier"),
        ("claude-sonnet-4-6", "standard"),
        ("gpt-4o", "standard"),
        ("gpt-4.1", "standard"),
        ("o3", "standard"),
        ("llama-3-70b", "standard"),
        ("gpt-5-mini", "economy"),  # the family's small members are not frontier
        ("gpt-5-nano", "economy"),
        ("o1-mini", "economy"),
        ("claude-haiku-4-5", "economy"),
        ("claude-3-5-haiku-latest", "economy"),
        ("gemini-2.5-flash", "economy"),
        ("gpt-4o-mini", "economy"),
        ("text-embedding-3-large", "economy"),
    ],
)
def test_default_tiers_by_family(model: str, tier: str) -> None:
    assert default_tier(model) == tier


def test_overrides_exact_name_then_longest_pattern() -> None:
    overrides = {
        "claude-*": "standard",
        "claude-opus-*": "economy",
        "claude-opus-4-7": "frontier",
        "gpt-4o": "frontier",
    }
    assert tier_of("claude-opus-4-7", overrides) == "frontier"  # exact beats patterns
    assert tier_of("claude-opus-4-1", overrides) == "economy"  # the longer pattern
    assert tier_of("claude-haiku-4-5", overrides) == "standard"
    assert tier_of("gpt-4o", overrides) == "frontier"
    assert tier_of("gpt-4o-mini", overrides) == "economy"  # no override: the default
    assert tier_of("gpt-5", {}) == "frontier"
    assert pattern_lookup("gpt-4o-2024", {"gpt-4o": 1}) is None  # a plain name is exact only
