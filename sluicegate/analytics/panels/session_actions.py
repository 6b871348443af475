"""Actions the session panels (outcomes, leverage) share: instrument the outcome join,
tag sessions with their workflow, bound a looping workflow's sessions, and where each
of those is changed."""

from __future__ import annotations

from collections.abc import Mapping

from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.base import Action, Control, Where
from sluicegate.config.live import ConfigSnapshot
from sluicegate.identity.envelope import envelope_field
from sluicegate.policy.documents import RateLimitDocument

RATE_LIMITS = "gateway-rate-limit-config"
TRAILER = Where("trailer", "Sluice-Session")  # what an outcome's sender carries
SESSION_HEADER = Where("header", "X-Sluice-Session-ID")
WORKFLOW_HEADER = Where("header", "X-Sluice-Workflow-Tag")
OUTCOME_HOWTO = (
    "put `Sluice-Session: <session id>` in the description of the PRs it opens (GitHub "
    "webhook), the session id in its tickets' custom field (helpdesk webhook), or POST "
    "/api/outcomes from its CI (docs/outcomes.md)"
)


def named(group: Mapping[str, str | None]) -> str:
    """A group as words: `workflow review`, `team search / workflow review`."""
    words = {"workflow_tag": "workflow", "client_tool": "tool"}
    return " / ".join(f"{words.get(k, k)} {v or '(none)'}" for k, v in group.items())


def instrument(what: str, finding: str) -> Action:
    """Outcomes of `what` are not joined: its sessions' senders must name them."""
    return Action(
        f"instrument the outcome join for {what}: {finding}; {OUTCOME_HOWTO}",
        Control("config", f"outcome join: {what}"),
        TRAILER,
    )


def tag_workflows(sessions: int, cost: float) -> Action:
    return Action(
        f"{sessions} sessions (${cost:.2f}) carry no workflow tag, so no workflow owns what "
        "they cost or produced: have their agents send X-Sluice-Workflow-Tag (or set it on "
        "their keys)",
        Control("config", "workflow_tag"),
        WORKFLOW_HEADER,
    )


def orphans(count: int) -> Action:
    return Action(
        f"{count} outcomes recorded in the window name a session the ledger has no request "
        "of: check that the Sluice-Session trailer (or ticket field) carries the very "
        "X-Sluice-Session-ID the agent sent",
        Control("config", "session id"),
        SESSION_HEADER,
    )


def session_limits(config: ConfigSnapshot, workflow: str) -> list[tuple[str, str]]:
    """(document, rule id) of token limits per session that apply to `workflow`'s
    requests: scope `session`, and no condition or one naming this workflow."""
    found = []
    for doc in config.models_of(RATE_LIMITS, RateLimitDocument):
        for rule in doc.rules:
            if rule.limit.scope != "session" or rule.limit.tokens is None:
                continue
            named_workflows = [
                values
                for name, values in (rule.when.metadata or {}).items()
                if envelope_field(name) == "workflow_tag"
            ]
            if all(workflow in values for values in named_workflows):
                found.append((doc.name, rule.id))
    return found[: controls.MAX_NAMED]


def bound_loops(config: ConfigSnapshot, workflow: str, finding: str) -> list[Action]:
    """A looping workflow: review its agent's exit condition, and bound its sessions."""
    message = f"workflow {workflow}: {finding}: review its agent's exit condition"
    limits = session_limits(config, workflow)
    if limits:
        return [
            Action(
                f"{message}; its per-session token limit {rule} let them run: lower it",
                Control("rate_limit", rule),
                Where(RATE_LIMITS, doc),
            )
            for doc, rule in limits
        ]
    return [
        Action(
            f"{message}, and cap its sessions meanwhile: a rate limit with limit.scope "
            f"session, limit.tokens, and when.metadata {{X-Sluice-Workflow-Tag: {workflow}}}",
            Control("rate_limit", f"per-session tokens: workflow {workflow}"),
            Where(RATE_LIMITS),
        )
    ]
