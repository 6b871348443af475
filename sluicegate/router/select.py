"""Choosing among a route's eligible rules: one function per `rule_type`.

weight-based    a weighted random pick
priority-based  the lowest `priority` tier, weighted within it; the other tiers
                (and the rest of the first) follow in order as fallbacks
latency-based   the fastest recent p50 (of the newest few samples; time per output
                token when every target has enough of those samples), sharing
                traffic by weight among targets within `tolerance_pct` of the
                fastest; targets with fewer than `min_samples` recent samples are
                explored first, and `explore_pct` of requests go to a random target
                so a recovered one is noticed

`expected_shares` says what share of a route's traffic each rule can expect (the what-if
replay values a route change with it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from sluicegate.router.latency import LatencyStats
from sluicegate.router.routes import CompiledRoute, LatencyPolicy, Target

StatsOf = Callable[[Target], LatencyStats]


def choose(
    route: CompiledRoute, pool: Sequence[Target], stats_of: StatsOf, rng: random.Random
) -> Target:
    if route.rule_type == "priority-based":
        return weighted_pick(_first_tier(pool), rng)
    if route.rule_type == "latency-based":
        return fastest(pool, stats_of, route.latency, rng)
    return weighted_pick(pool, rng)


def expected_shares(route: CompiledRoute, pool: Sequence[Target]) -> list[tuple[Target, float]]:
    """The share of the route's traffic each of `pool` (its eligible rules) can expect to
    be chosen for, by `rule_type`, as `choose` picks: weight-based by weight,
    priority-based the lowest tier by weight (the other tiers only serve when it fails),
    latency-based by weight, as if every target were as fast (which is fastest is learnt
    from live traffic, not known ahead). Targets with no share are left out."""
    targets = _first_tier(pool) if route.rule_type == "priority-based" else list(pool)
    total = sum(target.weight for target in targets)
    if total <= 0:  # every weight 0: `weighted_pick` picks uniformly
        return [(target, 1 / len(targets)) for target in targets]
    return [(target, target.weight / total) for target in targets if target.weight > 0]


def rules_after(
    route: CompiledRoute, pool: Sequence[Target], primary: Target, rng: random.Random
) -> list[Target]:
    """Rules that follow the primary as fallbacks: only priority tiers have any."""
    if route.rule_type != "priority-based":
        return []
    rest = [target for target in pool if target.id != primary.id]
    ordered: list[Target] = []
    for tier in sorted({target.priority for target in rest}):
        ordered += weighted_order([target for target in rest if target.priority == tier], rng)
    return ordered


def fastest(
    pool: Sequence[Target], stats_of: StatsOf, policy: LatencyPolicy, rng: random.Random
) -> Target:
    stats = {target.id: stats_of(target) for target in pool}
    unexplored = [target for target in pool if stats[target.id].samples < policy.min_samples]
    if unexplored:
        return rng.choice(unexplored)
    if rng.random() * 100 < policy.explore_pct:
        return rng.choice(list(pool))
    use_tpot = all(s.tpot_samples >= policy.min_samples for s in stats.values())
    score = {
        target_id: (s.recent_tpot_p50_ms if use_tpot else s.recent_p50_ms) or 0.0
        for target_id, s in stats.items()
    }
    limit = min(score.values()) * (1 + policy.tolerance_pct / 100)
    return weighted_pick([target for target in pool if score[target.id] <= limit], rng)


def weighted_pick(targets: Sequence[Target], rng: random.Random) -> Target:
    """By weight; uniformly when every weight is 0."""
    total = sum(target.weight for target in targets)
    if total <= 0:
        return rng.choice(list(targets))
    point = rng.random() * total
    for target in targets:
        point -= target.weight
        if point < 0:
            return target
    return targets[-1]


def weighted_order(targets: Sequence[Target], rng: random.Random) -> list[Target]:
    """All of `targets`, heavier ones more likely earlier (weighted sampling)."""
    remaining, ordered = list(targets), []
    while remaining:
        pick = weighted_pick(remaining, rng)
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


def _first_tier(pool: Sequence[Target]) -> list[Target]:
    top = min(target.priority for target in pool)
    return [target for target in pool if target.priority == top]
