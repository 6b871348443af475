"""GitHub's `pull_request` webhook: a merged pull request is a `pr_merged` outcome.

GitHub signs each delivery: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body
under the webhook's secret>`; it is checked, in constant time, over the bytes received,
before the body is parsed. `X-GitHub-Event` names the event, `X-GitHub-Delivery` the
delivery (a GUID, kept in `extra`). A delivery is JSON, or a form with the JSON in its
`payload` field (the hook's "content type" setting); both are read.

What counts: `pull_request` with `action: closed` and `pull_request.merged: true` (a PR
closed without merging, and every other action or event, is ignored with its reason;
`ping` answers 200). The session is named by a `Sluice-Session: <id>` trailer line in the
PR body (or in a commit message, for payloads that carry commits; GitHub's own
`pull_request` payload does not), else by a label `sluice-session:<id>`; the workflow,
optionally, the same way (`Sluice-Workflow:` / `sluice-workflow:`). No session: ignored.

The external id is `<owner>/<repo>#<number>`: a pull request merges once, so a
redelivery (same or new GUID) is the same outcome, stored once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

import msgspec

from sluicegate.errors import InvalidRequest
from sluicegate.identity.envelope import is_envelope_value
from sluicegate.outcomes.intake import decode_json, outcome_time
from sluicegate.outcomes.model import NewOutcome, OutcomeKind, OutcomeSource
from sluicegate.outcomes.webhooks import (
    Received,
    Verdict,
    WebhookKind,
    WebhookSettings,
    refuse,
    same_secret,
)

SIGNATURE_HEADER = "x-hub-signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
_SIGNATURE = re.compile(r"^sha256=[0-9a-fA-F]{64}$")
_MAX_COMMITS = 250  # commit messages searched for a trailer (GitHub lists at most 250)


def _trailer(key: str) -> re.Pattern[str]:
    """A git trailer line, `Key: value`, anywhere in a text (case-insensitive key)."""
    return re.compile(rf"^[ \t]*{key}[ \t]*:[ \t]*(\S+)[ \t\r]*$", re.IGNORECASE | re.MULTILINE)


def _label(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}[ \t]*:[ \t]*(\S+)[ \t]*$", re.IGNORECASE)


SESSION_TRAILER, WORKFLOW_TRAILER = _trailer("sluice-session"), _trailer("sluice-workflow")
SESSION_LABEL, WORKFLOW_LABEL = _label("sluice-session"), _label("sluice-workflow")


# The parts of GitHub's payload read here (every other field is left unread).
class _Label(msgspec.Struct):
    name: str


class _Repository(msgspec.Struct):
    full_name: str


class _Base(msgspec.Struct):
    ref: str | None = None


class _PullRequest(msgspec.Struct):
    number: int
    html_url: str
    merged: bool | None = None
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    body: str | None = None
    labels: list[_Label] = []
    base: _Base | None = None


class _Commit(msgspec.Struct):
    message: str = ""


class _PullRequestEvent(msgspec.Struct):
    action: str
    pull_request: _PullRequest
    repository: _Repository
    commits: list[_Commit] = []  # not in GitHub's payload; read when a relay adds them


class GithubReceiver:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        sent = headers.get(SIGNATURE_HEADER)
        if sent is None:
            raise refuse(
                "no X-Hub-Signature-256 header: set the webhook's secret in GitHub to "
                "SLUICEGATE_GITHUB_WEBHOOK_SECRET",
                "signature_missing",
            )
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not _SIGNATURE.match(sent) or not same_secret(sent.lower(), expected):
            raise refuse(
                "X-Hub-Signature-256 does not match the body signed with the configured secret",
                "signature_invalid",
            )

    def read(self, headers: Mapping[str, str], body: bytes) -> Received:
        event = headers.get(EVENT_HEADER)
        if not event:
            raise InvalidRequest("no X-GitHub-Event header", param="X-GitHub-Event")
        if event == "ping":
            return Received(Verdict.PING, reason="pong: the hook reaches sluicegate")
        if event != "pull_request":
            return Received.ignored(f"{_clip(event)} events are not outcomes (only pull_request)")
        payload: _PullRequestEvent = decode_json(_json_of(headers, body), _PullRequestEvent)
        pr = payload.pull_request
        if payload.action != "closed":
            return Received.ignored(
                f"pull_request {_clip(payload.action)}: only a merge is an outcome"
            )
        if pr.merged is not True:
            return Received.ignored("pull request closed without merging")
        texts = [pr.body or "", *(c.message for c in payload.commits[:_MAX_COMMITS])]
        labels = [label.name for label in pr.labels]
        session = _named(texts, labels, SESSION_TRAILER, SESSION_LABEL)
        if session is None:
            return Received.ignored(
                "no session: add a `Sluice-Session: <id>` line to the PR description, or a "
                "label `sluice-session:<id>`"
            )
        if not is_envelope_value(session):
            return Received.ignored(
                f"the session id {session[:64]!r} is not one a request can carry (1-128 "
                "letters, digits and . _ - : @ / + = # ~)"
            )
        workflow = _named(texts, labels, WORKFLOW_TRAILER, WORKFLOW_LABEL)
        repo = payload.repository.full_name
        return Received(
            Verdict.OUTCOME,
            outcome=NewOutcome(
                source=OutcomeSource.GITHUB,
                external_id=f"{repo}#{pr.number}",
                kind=OutcomeKind.PR_MERGED,
                session_id=session,
                workflow_tag=workflow if workflow and is_envelope_value(workflow) else None,
                url=pr.html_url[:2048],
                ts=None if pr.merged_at is None else _merged_at(pr.merged_at),
                extra={
                    "repo": repo,
                    "number": pr.number,
                    "base": _clip(pr.base.ref if pr.base else None),
                    "merge_commit_sha": _clip(pr.merge_commit_sha),
                    "delivery": _clip(headers.get(DELIVERY_HEADER)),
                },
            ),
        )


def _clip(text: str | None, limit: int = 128) -> str | None:
    """Sender text kept in an answer or in `extra`, which stay small."""
    return None if text is None else text[:limit]


def _json_of(headers: Mapping[str, str], body: bytes) -> bytes:
    """The JSON payload: the body, or a form's `payload` field."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return body
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form body is not url-encoded", param="payload") from None
    if len(fields.get("payload", ())) != 1:
        raise InvalidRequest("a form delivery needs one `payload` field", param="payload")
    return fields["payload"][0].encode()


def _named(
    texts: list[str], labels: list[str], trailer: re.Pattern[str], label: re.Pattern[str]
) -> str | None:
    """The first trailer value in the texts (PR body first), else the first label's."""
    for text in texts:
        found = trailer.search(text)
        if found is not None:
            return found.group(1)
    for name in labels:
        found = label.match(name)
        if found is not None:
            return found.group(1)
    return None


def _merged_at(value: str) -> float | None:
    """GitHub's merge time; None (received now) if it is not a usable time."""
    try:
        return outcome_time(value, "pull_request.merged_at", time.time())
    except InvalidRequest:
        return None


def _build(settings: WebhookSettings) -> GithubReceiver | None:
    return GithubReceiver(settings.github_secret) if settings.github_secret else None


KIND = WebhookKind(
    name="github",
    secret_env="SLUICEGATE_GITHUB_WEBHOOK_SECRET",
    build=_build,
    auth_header="X-Hub-Signature-256",
    auth_description="sha256=<hex HMAC-SHA256 of the raw body under the webhook's secret>",
    headers=("X-GitHub-Event", "X-GitHub-Delivery"),
    content_types=("application/json", "application/x-www-form-urlencoded"),
)
