"""The webhook receivers that turn another system's events into outcomes: one module per
sender and one line in `WEBHOOK_KINDS`.

A receiver is served at `POST /api/outcomes/<name>`, outside the admin key: the sender
proves itself with the secret it shares with the gateway (a signature, a header), checked
by `verify` before anything in the body is read. A kind whose secret is not configured is
not served (404 saying how to configure it). `read` says what a verified delivery amounts
to: an outcome to record, or nothing, with the reason (the sender's delivery log shows it).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import msgspec

from sluicegate.errors import AuthenticationError
from sluicegate.outcomes.model import NewOutcome

DEFAULT_HELPDESK_SESSION_FIELD = "sluice_session"


class WebhookSettings(msgspec.Struct, kw_only=True, frozen=True):
    """What the receivers are configured with (from process settings, never from the
    config-as-code documents: secrets do not belong in YAML under version control)."""

    github_secret: str | None = None
    helpdesk_secret: str | None = None
    helpdesk_session_field: str = DEFAULT_HELPDESK_SESSION_FIELD


class Verdict(StrEnum):
    OUTCOME = "outcome"  # record `outcome`
    IGNORED = "ignored"  # a real delivery that is not an outcome (202, with the reason)
    PING = "ping"  # the sender checking the hook (200)


@dataclass(frozen=True, slots=True)
class Received:
    verdict: Verdict
    outcome: NewOutcome | None = None
    reason: str | None = None

    @classmethod
    def ignored(cls, reason: str) -> Received:
        return cls(Verdict.IGNORED, reason=reason)


class WebhookReceiver(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AuthenticationError (401) unless the sender proved itself. `headers` is
        case-insensitive (Starlette's)."""
        ...

    def read(self, headers: Mapping[str, str], body: bytes) -> Received:
        """What a verified delivery amounts to; InvalidRequest (400) for a body that is not
        the sender's format."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookKind:
    name: str  # served at /api/outcomes/<name>
    secret_env: str  # the variable that configures it (named in the 404 when unset)
    build: Callable[[WebhookSettings], WebhookReceiver | None]  # None: not configured
    # For the OpenAPI description: the header the sender authenticates with (and what it
    # holds), the other headers read, and the body's content types.
    auth_header: str
    auth_description: str
    headers: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ("application/json",)


def webhook_path(name: str) -> str:
    return f"/api/outcomes/{name}"


def same_secret(sent: str | None, expected: str) -> bool:
    """Constant-time comparison of what a sender presented with the configured value
    (as bytes: header text may hold any latin-1 character)."""
    if sent is None:
        return False
    return hmac.compare_digest(sent.encode("latin-1", "replace"), expected.encode())


def refuse(message: str, code: str) -> AuthenticationError:
    return AuthenticationError(message, code=code)
