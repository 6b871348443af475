"""Sentences a reviewer reads first: what the proposal would have done differently.

    rule team-a-hourly would have refused 400 requests of team=A since Tue 07 Jan 14:02
      UTC (live: 0); $1.20, 120,000 tokens
    budget data-monthly would have reached its ceiling ($500.00) on day 3, Wed 08 Jan
      09:14 UTC, and then refused 1,204 requests ($312.40)
    intent-fast: 12,000 requests would cost $310.00 instead of $1,234.00 (-74.9%) ...

At most `MAX_FINDINGS`, the largest differences from what the live policy did first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sluicegate.whatif.report import AmountsOut, RouteOut, RuleOut, SideOut

MAX_FINDINGS = 20


def money(amount: float) -> str:
    """USD as people read it: cents from $1 up, and below that as many places as it takes
    (at least two, at most six): $1,234.00, $0.70, $0.0135, -$0.2865."""
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    if amount >= 1 or amount == 0:
        return f"{sign}${amount:,.2f}"
    places = f"{amount:.6f}".rstrip("0")
    if len(places.partition(".")[2]) < 2:
        places = f"{amount:.2f}"
    return f"{sign}${places}"


def when(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%a %d %b %H:%M UTC")


def findings(rules: list[RuleOut], routes: list[RouteOut], rows: int) -> list[str]:
    ranked: list[tuple[float, str]] = []
    for rule in rules:
        ranked += _rule_findings(rule)
    for route in routes:
        ranked += _route_findings(route)
    ranked.sort(key=lambda item: -item[0])
    out = [text for _, text in ranked[:MAX_FINDINGS]]
    if not out:
        out.append(
            f"the proposal would have changed nothing over these {rows:,} requests: no rule "
            "would have refused, queued or redirected any more or fewer of them, and no "
            "route or price differs"
        )
    return out


def _rule_findings(rule: RuleOut) -> list[tuple[float, str]]:
    name = f"{'budget' if rule.kind == 'budget' else 'rule'} {rule.id}"
    live, mine = rule.live, rule.proposed
    if mine is None:  # removed: what the live policy did that stops
        refused = live.refused.requests
        if refused == 0 and live.fallback.requests == 0:
            return []
        return [
            (
                refused + live.fallback.requests,
                f"{name} (not in the proposal) {_did(live)} live; without it they would "
                "have gone through",
            )
        ]
    out: list[tuple[float, str]] = []
    budget = rule.budget
    if budget is not None and budget.ceiling_reached_at_unix is not None:
        after = (
            f"and then refused {mine.refused.requests:,} requests ({money(mine.refused.cost_usd)})"
            if mine.refused.requests
            else _other_outcomes(mine)
        )
        out.append(
            (
                _weight(
                    rule.difference["refused"] + rule.difference["fallback"],
                    mine.refused.requests + mine.fallback.requests + 1,
                ),
                f"{name} would have reached its ceiling ({money(budget.ceiling_usd)}) on day "
                f"{budget.ceiling_reached_day}, {when(budget.ceiling_reached_at_unix)}, {after} "
                f"(live: {_live_counts(live)})",
            )
        )
    elif mine.refused.requests or rule.difference["refused"]:
        out.append(
            (
                _weight(rule.difference["refused"], mine.refused.requests),
                f"{name} would have refused {mine.refused.requests:,} requests"
                f"{_of(rule)}{_since(mine)} (live: {live.refused.requests:,}); "
                f"{money(mine.refused.cost_usd)}, {_tokens(mine.refused)} tokens",
            )
        )
    if mine.fallback.requests or rule.difference["fallback"]:
        to = ", ".join(c.name for c in rule.fallback_models[:3]) or "a fallback"
        out.append(
            (
                _weight(rule.difference["fallback"], mine.fallback.requests),
                f"{name} would have sent {mine.fallback.requests:,} requests to {to} "
                f"(live: {live.fallback.requests:,}): {money(mine.fallback.cost_usd)} as "
                f"recorded, {money(rule.fallback_cost_usd)} there",
            )
        )
    if mine.queued.requests or rule.difference["queued"]:
        out.append(
            (
                _weight(rule.difference["queued"], mine.queued.requests),
                f"{name} would have queued {mine.queued.requests:,} requests before "
                f"admitting them (live: {live.queued.requests:,})",
            )
        )
    if mine.audited.requests or rule.difference["audited"]:
        out.append(
            (
                _weight(rule.difference["audited"], mine.audited.requests),
                f"{name} (audit only) would have recorded {mine.audited.requests:,} requests "
                f"over its limit{_since(mine)} (live: {live.audited.requests:,})",
            )
        )
    if budget is not None and budget.ceiling_reached_at is None and budget.peak_at:
        out.append(
            (
                0.5,
                f"{name} would have peaked at {budget.peak_pct:g}% "
                f"({money(budget.peak_spent_usd)} of {money(budget.ceiling_usd)})",
            )
        )
    for alert in budget.alerts if budget is not None else []:
        out.append(
            (
                0.4,
                f"{name}: its {alert.at_pct:g}% alert would have fired on day {alert.day}, "
                f"{when(alert.first_at_unix)} "
                f"({alert.windows} window{'s' if alert.windows != 1 else ''})",
            )
        )
    return out


def _weight(difference: int, requests: int) -> float:
    """How high a finding ranks: by the difference the change makes, then by size."""
    return abs(difference) + requests * 1e-6


def _route_findings(route: RouteOut) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    routed = route.requests - route.unroutable_requests
    if routed:
        change = f" ({route.cost_change_pct:+.1f}%)" if route.cost_change_pct is not None else ""
        where = ", ".join(f"{t.target} ({t.share * 100:.0f}%)" for t in route.proposed_targets[:3])
        text = (
            f"{route.model}: {route.requests:,} requests would cost "
            f"{money(route.proposed_cost_usd)} instead of {money(route.current_cost_usd)}{change} "
            f"on {where}"
        )
        unpriced = [t for t in route.proposed_targets if t.unpriced_requests]
        if unpriced:
            text += "; " + ", ".join(
                f"{t.unpriced_requests:,.0f} on {t.target} have no price" for t in unpriced
            )
        out.append((routed + abs(route.cost_change_usd), text))
    if route.unroutable_requests:
        out.append(
            (
                route.unroutable_requests,
                f"{route.model}: {route.unroutable_requests:,} requests would find no model "
                "(404) under the proposal",
            )
        )
    return out


def _of(rule: RuleOut) -> str:
    scopes = [c for c in rule.top_scopes if c.name != "*"]
    if not scopes:
        return ""
    if len(scopes) == 1:
        return f" of {scopes[0].name}"
    return f" of {len(rule.top_scopes)}{'+' if len(rule.top_scopes) >= 10 else ''} scopes"


def _since(side: SideOut) -> str:
    return f" since {when(side.first_trip.at_unix)}" if side.first_trip else ""


def _tokens(amounts: AmountsOut) -> str:
    return f"{amounts.input_tokens + amounts.output_tokens:,}"


def _did(live: SideOut) -> str:
    done = [
        f"refused {live.refused.requests:,}" if live.refused.requests else "",
        f"redirected {live.fallback.requests:,}" if live.fallback.requests else "",
    ]
    return " and ".join(part for part in done if part) + " requests"


def _other_outcomes(side: SideOut) -> str:
    if side.fallback.requests:
        return f"and then sent {side.fallback.requests:,} requests to a fallback"
    if side.audited.requests:
        return f"and then recorded {side.audited.requests:,} requests over it (audit only)"
    return "and then held requests back"


def _live_counts(live: SideOut) -> str:
    return (
        f"refused {live.refused.requests:,}, fallback {live.fallback.requests:,}, "
        f"audited {live.audited.requests:,}"
    )
