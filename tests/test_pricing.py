"""Cost from usage: the same figure genai-prices computes, None when a model is unknown."""

from decimal import Decimal

import genai_prices
import pytest

from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook, PriceOverride

CASES = [
    (
        "anthropic",
        "claude-haiku-4-5",
        Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=500, cache_write_tokens=100),
    ),
    ("anthropic", "claude-opus-4-7", Usage(input_tokens=50_000, output_tokens=2_000)),
    ("openai", "gpt-4o-mini", Usage(input_tokens=3000, output_tokens=100, cache_read_tokens=1024)),
    ("openai", "o4-mini", Usage(input_tokens=100, output_tokens=900, reasoning_tokens=700)),
]


@pytest.mark.parametrize("kind,model,usage", CASES)
def test_cost_matches_the_catalog(kind, model, usage):
    fields = {
        k: getattr(usage, k)
        for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        if getattr(usage, k) is not None
    }
    expected = genai_prices.calc_price(
        genai_prices.Usage(**fields), model_ref=model, provider_id=kind
    ).total_price
    priced = PriceBook().price(kind, model, usage)
    assert Decimal(str(priced.cost_usd)).quantize(Decimal("1e-12")) == expected.quantize(
        Decimal("1e-12")
    )
    assert priced.price_id == f"{kind}:{model}" and "genai-prices" in priced.price_version


def test_unknown_model_is_unpriced_not_free():
    priced = PriceBook().price("openai", "my-local-llama", Usage(input_tokens=10, output_tokens=5))
    assert priced.cost_usd is None and priced.price_id is None


def test_no_usage_reported_is_unpriced():
    assert PriceBook().price("openai", "gpt-4o-mini", Usage()).cost_usd is None


def test_override_wins_and_is_named():
    book = PriceBook({"gpt-4o-mini": PriceOverride(input_mtok=1.0, output_mtok=2.0)})
    priced = book.price(
        "openai", "gpt-4o-mini", Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert priced.cost_usd == pytest.approx(3.0)
    assert priced.price_id == "override:gpt-4o-mini" and priced.price_version == "config"


def test_vendor_prefixed_and_foreign_models_are_found():
    book = PriceBook()
    assert book.price(
        "anthropic", "anthropic.claude-haiku-4-5", Usage(input_tokens=1_000_000)
    ).cost_usd == pytest.approx(1.0)
    assert (
        book.price("openai", "gemini-2.0-flash", Usage(input_tokens=1_000_000)).price_id
        == "google:gemini-2.0-flash"
    )


def test_worst_case_assumes_no_cache_and_every_output_token():
    book = PriceBook()
    worst = book.worst_case("anthropic", "claude-haiku-4-5", 1000, 4096)
    assert worst == pytest.approx((1000 * 1.0 + 4096 * 5.0) / 1_000_000)
    assert book.worst_case("openai", "my-local-llama", 10, 10) is None
