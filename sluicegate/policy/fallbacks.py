"""Admission that follows a policy's fallbacks: the one loop the request path and the
what-if replay of the ledger share, so that both treat `fallback_to_*` alike.

    admit_following_fallbacks(engine, model, prepare, resolve_alias)
      prepare(model, exempt) -> (route plan, AdmissionInput)    the caller's: plan the route
      engine.admit(input)
        admitted        -> (plan, admission); admission.events holds every hop's events
        fallback wanted -> model = resolve_alias(fallback model), the rule exempt, again
      refused           -> PolicyBlocked / PolicyUnavailable whose events hold every hop's

At most `MAX_HOPS` admissions: fallbacks that lead back to each other end in a 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sluicegate.errors import InvalidRequest
from sluicegate.model.record import PolicyEvent
from sluicegate.policy.admission import Admission, AdmissionInput, PolicyBlocked, PolicyUnavailable
from sluicegate.policy.engine import PolicyEngine

P = TypeVar("P")
Prepare = Callable[[str, frozenset[str]], Awaitable[tuple[P, AdmissionInput]]]
MAX_HOPS = 4


async def admit_following_fallbacks(
    engine: PolicyEngine,
    model: str,
    prepare: Prepare[P],
    resolve_alias: Callable[[str], str],
) -> tuple[P, Admission]:
    """Admit on `model`; a breach whose action is a fallback admits again on the fallback
    model with the breached rule exempt. Raises PolicyBlocked / PolicyUnavailable (their
    `events` include the earlier hops'), or InvalidRequest when no model to fall back to
    is configured or the fallbacks do not settle."""
    exempt: frozenset[str] = frozenset()
    events: list[PolicyEvent] = []
    for _ in range(MAX_HOPS):
        plan, inp = await prepare(model, exempt)
        try:
            admission = await engine.admit(inp)
        except (PolicyBlocked, PolicyUnavailable) as blocked:  # the ledger names the rules
            blocked.events[:0] = events
            raise
        events += admission.events
        rule_id = admission.fallback_rule_id
        if rule_id is None:  # no fallback wanted
            admission.events = events
            return plan, admission
        fallback = admission.fallback_model
        if fallback is None:
            raise InvalidRequest(
                f"rule {rule_id!r} asks for a cheaper model than {model!r} but none is configured",
                code="no_fallback_model",
            )
        model = resolve_alias(fallback)
        exempt = exempt | {rule_id}
    raise InvalidRequest("policy fallbacks did not settle on a model", code="fallback_loop")
