"""Builders shared by the policy tests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from sluicegate.config.parse import documents_from_raw, parse_documents
from sluicegate.config.registry import DocumentRegistry
from sluicegate.model.identity import Envelope, Principal
from sluicegate.policy.admission import AdmissionInput
from sluicegate.policy.compiled import CompiledPolicy, compile_policy

FIXTURES = Path(__file__).parent / "fixtures"
ALIASES = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-6"}
REGISTRY = DocumentRegistry()  # the production document type table
_ids = itertools.count()


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(*texts: str) -> list[Any]:
    """The document models in YAML texts, parsed as the gateway parses its config."""
    return [document.model for text in texts for document in parse_documents(text, REGISTRY)]


def parse_one(raw: dict[str, Any]) -> Any:
    """One raw document (a mapping) validated as the gateway validates stored config."""
    (document,) = documents_from_raw([raw], REGISTRY)
    return document.model


def policy(*texts: str, aliases: dict[str, str] | None = None) -> CompiledPolicy:
    return compile_policy(load(*texts), aliases=ALIASES if aliases is None else aliases)


def principal(key_id: str = "key-1", **kw: Any) -> Principal:
    return Principal(key_id=key_id, **kw)


def envelope(**kw: Any) -> Envelope:
    return Envelope(**kw)


def request(
    model: str = "gpt-4o",
    *,
    env: Envelope | None = None,
    who: Principal | None = None,
    tokens: int = 100,
    max_out: int | None = 100,
    cost: float | None = None,
    exempt: frozenset[str] = frozenset(),
    cheaper: str | None = None,
) -> AdmissionInput:
    return AdmissionInput(
        request_id=f"req-{next(_ids)}",
        envelope=env or Envelope(),
        principal=who or principal(),
        model=model,
        estimated_input_tokens=tokens,
        max_output_tokens=max_out,
        worst_case_cost_usd=cost,
        exempt_rule_ids=exempt,
        cheaper_model=cheaper,
    )


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def leased(store: Any, key: str) -> int:
    """What a Redis store's capacity leases hold on `key` (counted in its `reserved`)."""
    leases = getattr(store, "leases", None)
    return leases.held(key) if leases is not None else 0


async def redis_keys(store: Any, kind: str) -> list[str]:
    """A Redis counter store's keys of one kind: c (counter hashes), z, r (reservations),
    read through the store's own client (so from the server the store uses)."""
    return [k async for k in store._redis.scan_iter(f"{store._base}{kind}:*", count=1000)]
