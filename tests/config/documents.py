"""Small document models standing in for the real ones (policy, router, providers), and a
type table that names them by dotted path, so the registry's lazy import is exercised."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_WINDOW = re.compile(r"^\d+[smhd]$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limit(_Strict):
    requests: int | None = None
    tokens: int | None = None
    window: str

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _WINDOW.match(value):
            raise ValueError(f"{value!r} is not a window; use 1m, 1h, 1d, ...")
        return value


class Rule(_Strict):
    id: str
    models: list[str] = Field(default_factory=list)
    limit: Limit
    on_breach: Literal["hard_block", "queue_then_429"] = "hard_block"


class RateLimitDoc(_Strict):
    name: str
    type: Literal["test-rate-limit"]
    rules: list[Rule]


class HardBlock(_Strict):
    action: Literal["hard_block"]


class Fallback(_Strict):
    action: Literal["fallback"]
    model: str


class BudgetDoc(_Strict):
    name: str
    type: Literal["test-budget"]
    ceiling_usd: float = Field(gt=0)
    on_exceed: Annotated[HardBlock | Fallback, Field(discriminator="action")] = HardBlock(
        action="hard_block"
    )


TEST_TYPES = {
    "test-rate-limit": "tests.config.documents:RateLimitDoc",
    "test-budget": "tests.config.documents:BudgetDoc",
}

RATE_LIMITS = """\
name: team-limits
type: test-rate-limit
rules:
  - id: per-user
    limit: {requests: 100, window: 1m}
"""

BUDGET = """\
name: eng-budget
type: test-budget
ceiling_usd: 500
"""

BOTH = f"{RATE_LIMITS}---\n{BUDGET}"


def billion_laughs(type_name: str, levels: int = 9) -> str:
    """The classic YAML alias bomb (~400 bytes): each level repeats the one before nine
    times, so the last one expands to 9**9 strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join([*lines, "name: bomb", f"type: {type_name}", ""])
