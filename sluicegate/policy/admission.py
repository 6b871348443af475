"""The data an admission takes and returns, and the per-request plan of counter checks."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from sluicegate.errors import LimitExceeded, StoreUnavailable
from sluicegate.model.identity import Envelope, Principal
from sluicegate.model.record import PolicyEvent
from sluicegate.model.usage import Usage
from sluicegate.policy.compiled import Breach, CompiledBudget, CompiledPolicy, CompiledRule
from sluicegate.policy.counters.base import NO_LIMIT, Check, Level
from sluicegate.policy.documents import usd_to_micros
from sluicegate.policy.windows import Window
from sluicegate.pricing import ModelRate, price_at, worst_case

Measure = Literal["requests", "tokens", "cost"]


class AdmissionInput(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    envelope: Envelope
    principal: Principal
    model: str  # what the client asked for, after alias resolution
    estimated_input_tokens: int
    max_output_tokens: int | None = None
    worst_case_cost_usd: float | None = None  # None: no candidate model has a price
    unpriced_model: str | None = None  # a candidate with no price (a fallback, say)
    exempt_rule_ids: frozenset[str] = frozenset()  # counted, not enforced (after a fallback)
    cheaper_model: str | None = None  # what fallback_to_cheaper uses (None: nothing cheaper)
    arrived_at: float | None = None  # unix seconds, the ledger row's ts (None: admission time)


class Hold(msgspec.Struct, frozen=True):
    """What one counter holds for this request until it is settled."""

    key: str
    measure: Measure
    token_type: str
    amount: int
    # A budget pricing an unpriced call as another model: settled at this rate when the
    # call's own cost is unknown (None: such a call settles to nothing).
    rate: ModelRate | None = None


@dataclass(slots=True)
class Admission:
    """The outcome of `PolicyEngine.admit`. When `fallback_rule_id` is set nothing was
    reserved: admit again with `model=fallback_model` and `exempt_rule_ids={fallback_rule_id}`."""

    request_id: str
    reservation_id: str | None = None
    holds: tuple[Hold, ...] = ()
    events: list[PolicyEvent] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    fallback_model: str | None = None
    fallback_rule_id: str | None = None
    fallback_kind: Literal["model", "cheaper"] | None = None
    estimated_input_tokens: int = 0
    reserved_output_tokens: int = 0
    settled: bool = False
    # An unpriced call a budget prices as another model: (that model, its rate), for the
    # ledger row (the first such budget in config order).
    priced_as: tuple[str, ModelRate] | None = None
    # Admitted with nothing reserved, the counter store unreachable (fail_open), for a
    # request that arrived at this time: settling charges what the holds consumed, once
    # the store can count it.
    unreserved_at: float | None = None

    @property
    def admitted(self) -> bool:
        return self.fallback_rule_id is None

    @property
    def wants_fallback(self) -> bool:
        return self.fallback_rule_id is not None


class PolicyBlocked(LimitExceeded):
    """A LimitExceeded that also carries the policy events for the ledger."""

    def __init__(self, message: str, *, events: list[PolicyEvent], **kwargs: Any):
        super().__init__(message, **kwargs)
        self.events = events


class UnpricedBlocked(PolicyBlocked):
    """A budget that blocks unpriced traffic refused a model with no price: retrying does
    not help (no Retry-After), a price override or the budget's `unpriced` setting does."""

    status = 403
    error_type = "permission_error"
    code = "unpriced_model"

    def __init__(self, budget: CompiledBudget, model: str):
        super().__init__(
            f"budget '{budget.id}' does not admit model {model!r}, which has no price (its "
            "cost could not be counted); set a price for the model, or `unpriced: allow` or "
            "`unpriced: {price_as: MODEL}` on the budget",
            rule_id=budget.id,
            code=self.code,
            headers={"X-Sluice-Rule-ID": budget.id},
            events=[
                PolicyEvent(
                    kind="budget",
                    rule_id=budget.id,
                    action="unpriced_block",
                    detail=f"model {model!r} has no price",
                )
            ],
        )


class PolicyUnavailable(StoreUnavailable):
    """The counter store is unreachable and the policy fails closed (503 + Retry-After:
    when the store is tried again); carries the policy events for the ledger."""

    def __init__(self, message: str, *, events: list[PolicyEvent], retry_after: float = 1.0):
        super().__init__(message)
        self.events = events
        self.retry_after = retry_after


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One rule or budget window that applies to the request, with its counter check.
    (A msgspec Struct: several are built per request and a frozen dataclass is slow to.)"""

    kind: Literal["rate_limit", "budget"]
    rule_id: str
    check: Check
    hold: Hold
    limit: int  # the configured limit (check.limit is NO_LIMIT when not enforced)
    window: Window
    window_start: float
    window_end: float
    breach: Breach
    enforced: bool
    scope_label: str
    queue_timeout_s: float = 0.0
    budget: CompiledBudget | None = None

    def exceeds(self, level: Level) -> bool:
        return level.used + level.reserved + self.check.amount > self.limit


def plan(
    policy: CompiledPolicy, inp: AdmissionInput, now: float, default_max_output: int
) -> list[Item]:
    """Every check this request must pass, in config order."""
    env, principal, model = inp.envelope, inp.principal, inp.model
    out_tokens = inp.max_output_tokens or default_max_output
    items = []
    for rule in policy.rules:
        if rule.matches(env, principal, model):
            value = rule.scope(env, principal, model)
            if value is not None:  # None: the request lacks what the rule counts by
                items.append(_rule_item(rule, value, inp, now, out_tokens))
    if policy.budgets:
        cost = inp.worst_case_cost_usd
        # An allowed unpriced model reserves one micro-dollar: it still stops once the
        # budget is spent.
        base = max(1, usd_to_micros(cost)) if cost is not None else 1
        unpriced = cost is None or inp.unpriced_model is not None
        for budget in policy.budgets:
            if budget.matches(env, principal, model):
                amount, rate = base, None
                if unpriced and (rate := _unpriced_rate(budget, inp)) is not None:
                    at_rate = worst_case(rate, inp.estimated_input_tokens, out_tokens)
                    amount = max(1, usd_to_micros(max(cost or 0.0, at_rate)))
                items += [_budget_item(budget, w, amount, inp, now, rate) for w in budget.windows]
    return items


def _unpriced_rate(budget: CompiledBudget, inp: AdmissionInput) -> ModelRate | None:
    """The rate a budget counts an unpriced call at (None: uncounted); raises when the
    budget blocks unpriced calls (unless it is exempt after a fallback)."""
    rule = budget.unpriced
    if rule.action == "block" and budget.id not in inp.exempt_rule_ids:
        raise UnpricedBlocked(budget, inp.unpriced_model or inp.model)
    return rule.rate


def _rule_item(
    rule: CompiledRule, value: str, inp: AdmissionInput, now: float, out_tokens: int
) -> Item:
    if rule.measure == "requests":
        amount = 1
    elif rule.token_type == "total":
        amount = inp.estimated_input_tokens + out_tokens
    else:
        amount = inp.estimated_input_tokens if rule.token_type == "input" else out_tokens
    enforced = _enforced(rule.id, rule.breach, inp)
    # Items are immutable: the last one built for a scope value is reused while its window
    # lasts and the amount is the same (always, for request counts); otherwise a new one
    # is built with the same key.
    memo = rule.items
    last = memo.get((value, enforced))
    if last is not None and last.window_start <= now < last.window_end:
        if last.check.amount == amount:
            return last
        key, scope_label = last.check.key, last.scope_label
        frame = rule.window.frame(now)
    else:
        frame = rule.window.frame(now)
        scope_label = "*" if rule.scope_name == "global" else f"{rule.scope_name}={value}"
        key = f"rl:{rule.id}:{rule.window.label}:{scope_label}:{frame.suffix}"
    window = rule.window
    item = Item(
        kind="rate_limit",
        rule_id=rule.id,
        check=Check(
            key,
            rule.limit if enforced else NO_LIMIT,
            amount,
            frame.expires_at,
            window.slide,
            rule.counter_family,
        ),
        hold=Hold(key, rule.measure, rule.token_type, amount),
        limit=rule.limit,
        window=window,
        window_start=frame.start,
        window_end=frame.end,
        breach=rule.breach,
        enforced=enforced,
        scope_label=scope_label,
        queue_timeout_s=rule.queue_timeout_s,
    )
    if window.resets:  # a rolling window's frame slides with every call
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[(value, enforced)] = item
    return item


_MEMO_MAX = 2_048  # items remembered per rule (one per scope value); a cache, so small


def _budget_item(
    budget: CompiledBudget,
    window: Window,
    amount: int,
    inp: AdmissionInput,
    now: float,
    rate: ModelRate | None = None,
) -> Item:
    frame = window.frame(now)
    key = f"bg:{budget.id}:{window.label}:{frame.suffix}"
    enforced = _enforced(budget.id, budget.breach, inp)
    return Item(
        kind="budget",
        rule_id=budget.id,
        check=Check(
            key,
            budget.ceiling_micros if enforced else NO_LIMIT,
            amount,
            frame.expires_at,
            window.slide,
            ledger=True,
        ),
        hold=Hold(key, "cost", "", amount, rate),
        limit=budget.ceiling_micros,
        window=window,
        window_start=frame.start,
        window_end=frame.end,
        breach=budget.breach,
        enforced=enforced,
        scope_label="*",
        budget=budget,
    )


def budget_key(budget: CompiledBudget, window: Window, now: float) -> str:
    """The counter of one budget window (status and the ledger rebuild; admission builds
    the same key)."""
    return f"bg:{budget.id}:{window.label}:{window.frame(now).suffix}"


def _enforced(rule_id: str, breach: Breach, inp: AdmissionInput) -> bool:
    return rule_id not in inp.exempt_rule_ids and breach.action != "audit"


def rate_headers(items: list[Item], levels: tuple[Level, ...], now: float) -> dict[str, str]:
    """OpenAI-style X-RateLimit-* headers for the tightest request rule and token rule."""
    tightest: dict[str, tuple[int, Item]] = {}  # measure -> (remaining, item)
    for item, level in zip(items, levels):
        if item.kind != "rate_limit" or not item.enforced:
            continue
        remaining = item.limit - level.used - level.reserved - item.check.amount
        best = tightest.get(item.hold.measure)
        if best is None or remaining < best[0]:
            tightest[item.hold.measure] = (remaining, item)
    headers: dict[str, str] = {}
    for measure, (remaining, item) in tightest.items():
        names = _HEADER_NAMES[measure]
        headers[names[0]] = str(item.limit)
        headers[names[1]] = str(remaining) if remaining > 0 else "0"
        headers[names[2]] = duration(item.window_end - now)
    return headers


_HEADER_NAMES = {
    measure: tuple(f"X-RateLimit-{part}-{suffix}" for part in ("Limit", "Remaining", "Reset"))
    for measure, suffix in (("requests", "Requests"), ("tokens", "Tokens"))
}


def duration(seconds: float) -> str:
    """`6m0s`, `1h2m3s`, `17s`, as OpenAI writes reset times."""
    return _duration(max(0, math.ceil(seconds)))


@functools.lru_cache(maxsize=4096)  # one string per second left in a window, every request
def _duration(total: int) -> str:
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def actual_amounts(
    admission: Admission, usage: Usage | None, cost_usd: float | None
) -> dict[str, int]:
    """What each hold becomes at settlement, by counter key. A missing usage or cost
    releases the hold (unless the budget prices unpriced calls as another model: then
    the usage at that model's rate); a part the provider did not report falls back to
    what was reserved for it."""
    cost = usd_to_micros(cost_usd) if cost_usd is not None and cost_usd > 0 else 0
    tokens = {"total": 0, "input": 0, "output": 0}
    if usage is not None:
        inp = (
            usage.input_tokens
            if usage.input_tokens is not None
            else admission.estimated_input_tokens
        )
        out = (
            usage.output_tokens
            if usage.output_tokens is not None
            else admission.reserved_output_tokens
        )
        tokens = {"total": inp + out, "input": inp, "output": out}
    actuals = {}
    for hold in admission.holds:
        if hold.measure == "requests":
            actuals[hold.key] = hold.amount
        elif hold.measure == "cost":
            actuals[hold.key] = cost
            if cost_usd is None and hold.rate is not None and usage is not None:
                actuals[hold.key] = usd_to_micros(price_at(hold.rate, usage).cost_usd or 0.0)
        else:
            actuals[hold.key] = tokens[hold.token_type]
    return actuals
