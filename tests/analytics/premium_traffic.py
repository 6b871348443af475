"""Ledger records for the premium-review panel: workflows on frontier, standard and
economy models, reached by a catalogue name, an alias, a virtual model, and once by a
fallback; cache reads and writes; costs priced as the gateway prices them. Seeded.

And the config they were served under, compiled by the gateway's own compiler, for a
panel context as the API builds one."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.panels.base import PanelContext
from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.parse import Document, parse_documents
from sluicegate.config.registry import DocumentRegistry
from sluicegate.identity.envelope import DEFAULT_PREFIXES
from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.server.config_review import CompiledConfig, compile_config
from tests.analytics.panel_support import context

# the config the records were served under: gpt-5 added to the default catalogue, and a
# virtual model for code review on claude-opus-4-7
CONFIG = """
name: more-models
type: gateway-providers
models:
  gpt-5: {provider: openai}
---
name: code-review
type: gateway-load-balancing-config
rules:
  - target: {provider: anthropic, model: claude-opus-4-7}
fallbacks:
  - {provider: openai, model: gpt-4o}
"""
# (name asked for, account, model served)
PATHS = (
    ("opus", "anthropic", "claude-opus-4-7"),  # an alias
    ("claude-opus-4-7", "anthropic", "claude-opus-4-7"),
    ("code-review", "anthropic", "claude-opus-4-7"),  # a virtual model
    ("gpt-5", "openai", "gpt-5"),
    ("claude-sonnet-4-6", "anthropic", "claude-sonnet-4-6"),
    ("gpt-4o-mini", "openai", "gpt-4o-mini"),
)
FALLBACK = ("claude-haiku-4-5", "anthropic", "claude-opus-4-7")  # served by a fallback
WORKFLOWS = ("review", "classify", "eval-judge", None)
TEAMS = ("search", "data", None)
# the tier of each model served, written out rather than taken from tiers.py
TIERS = {
    "claude-opus-4-7": "frontier",
    "gpt-5": "frontier",
    "claude-sonnet-4-6": "standard",
    "gpt-4o-mini": "economy",
}
PRICES = PriceBook()


def premium_traffic(
    count: int, *, start: float, span_s: float, seed: int = 5
) -> list[LedgerRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        asked, provider, model = FALLBACK if i % 97 == 0 else rng.choice(PATHS)
        input_tokens = rng.randint(200, 6000)
        cache_read = rng.choice((0, 0, 0, rng.randint(0, input_tokens // 4)))
        cache_write = rng.choice((0, 0, 0, 0, rng.randint(0, input_tokens // 8)))
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=rng.randint(20, 900),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        records.append(
            LedgerRecord(
                request_id=f"pr{seed}-{i:06d}",
                ts=start + rng.random() * span_s,
                key_id="key-a",
                user_id=rng.choice(("ana", "bo", None)),
                team=rng.choice(TEAMS),
                project=rng.choice(("alpha", None)),
                workflow_tag=rng.choice(WORKFLOWS),
                client_api="openai_chat",
                requested_model=asked,
                provider=provider,
                model=model,
                status_code=200,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                cost_usd=PRICES.price(provider, model, usage).cost_usd,
                attempt_count=1,
            )
        )
    return records


async def _never(method: str, url: str, headers: Any, body: Any) -> UpstreamResponse:
    raise AssertionError("the panel never calls a provider")


def merged(*texts: str) -> ConfigSnapshot:
    """CONFIG and the documents of `texts` merged by (type, name), later ones winning:
    the set in force after `sluicegate apply -f` of each in turn."""
    documents: dict[Any, Document] = {}
    for text in (CONFIG, *texts):
        documents.update({d.key: d for d in parse_documents(text, DocumentRegistry())})
    return ConfigSnapshot.build(1, list(documents.values()), loaded_at=0.0)


def compiled(*applied: str) -> CompiledConfig:
    return compile_config(
        merged(*applied), FakeUpstream(_never), emulator_url=None, header_prefixes=DEFAULT_PREFIXES
    )


def premium_context(engine: AsyncEngine, *applied: str) -> PanelContext:
    """A context as the API builds it: the config in force, its analytics settings and
    its catalogue."""
    config = compiled(*applied)
    ctx = context(engine, config.analytics, merged(*applied))
    return dataclasses.replace(ctx, catalog=config.catalog)
