"""Webhook deliveries as the senders make them: GitHub's `pull_request` event (the whole
payload shape GitHub sends, signed with HMAC-SHA256 over the exact bytes posted) and a
Zendesk-shaped ticket webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

GITHUB_SECRET = "It's a Secret to Everybody"
HELPDESK_SECRET = "helpdesk-shared-secret-0123"


def _user(login: str, user_id: int) -> dict[str, Any]:
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def _repository(owner: str, name: str) -> dict[str, Any]:
    full = f"{owner}/{name}"
    api = f"https://api.github.com/repos/{full}"
    return {
        "id": 186853002,
        "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
        "name": name,
        "full_name": full,
        "private": True,
        "owner": _user(owner, 21031067),
        "html_url": f"https://github.com/{full}",
        "description": "Search service",
        "fork": False,
        "url": api,
        "pulls_url": f"{api}/pulls{{/number}}",
        "issues_url": f"{api}/issues{{/number}}",
        "created_at": "2024-03-01T09:00:00Z",
        "updated_at": "2026-05-04T15:21:14Z",
        "pushed_at": "2026-05-04T15:20:57Z",
        "git_url": f"git://github.com/{full}.git",
        "ssh_url": f"git@github.com:{full}.git",
        "clone_url": f"https://github.com/{full}.git",
        "homepage": None,
        "size": 2048,
        "stargazers_count": 3,
        "watchers_count": 3,
        "language": "Python",
        "has_issues": True,
        "forks_count": 0,
        "archived": False,
        "disabled": False,
        "open_issues_count": 4,
        "license": None,
        "visibility": "private",
        "default_branch": "main",
        "allow_squash_merge": True,
        "delete_branch_on_merge": True,
    }


def pull_request_event(
    *,
    action: str = "closed",
    merged: bool = True,
    number: int = 42,
    body: str | None = "Speeds up the ranking query.\n\nSluice-Session: sess-abc-123\n",
    labels: tuple[str, ...] = ("enhancement",),
    owner: str = "acme",
    repo: str = "search",
    merged_at: str = "2026-05-04T15:21:18Z",
) -> dict[str, Any]:
    """A `pull_request` delivery's payload, shaped as GitHub sends it."""
    full = f"{owner}/{repo}"
    api = f"https://api.github.com/repos/{full}"
    author, merger = _user("octo-dev", 5346), _user("octo-lead", 7788)
    repository = _repository(owner, repo)
    label_objects = [
        {
            "id": 1362934389 + i,
            "node_id": f"MDU6TGFiZWw{i}",
            "url": f"{api}/labels/{name}",
            "name": name,
            "color": "a2eeef",
            "default": False,
            "description": None,
        }
        for i, name in enumerate(labels)
    ]
    closed = action == "closed"
    pull_request = {
        "url": f"{api}/pulls/{number}",
        "id": 279147437,
        "node_id": "MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3",
        "html_url": f"https://github.com/{full}/pull/{number}",
        "diff_url": f"https://github.com/{full}/pull/{number}.diff",
        "patch_url": f"https://github.com/{full}/pull/{number}.patch",
        "issue_url": f"{api}/issues/{number}",
        "number": number,
        "state": "closed" if closed else "open",
        "locked": False,
        "title": "Rank with the new scorer",
        "user": author,
        "body": body,
        "created_at": "2026-05-04T11:02:33Z",
        "updated_at": "2026-05-04T15:21:18Z",
        "closed_at": "2026-05-04T15:21:18Z" if closed else None,
        "merged_at": merged_at if closed and merged else None,
        "merge_commit_sha": "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": label_objects,
        "milestone": None,
        "draft": False,
        "commits_url": f"{api}/pulls/{number}/commits",
        "review_comments_url": f"{api}/pulls/{number}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{number}/comments",
        "statuses_url": f"{api}/statuses/ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "head": {
            "label": "acme:ranker",
            "ref": "ranker",
            "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "user": author,
            "repo": repository,
        },
        "base": {
            "label": "acme:main",
            "ref": "main",
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "user": repository["owner"],
            "repo": repository,
        },
        "_links": {
            "self": {"href": f"{api}/pulls/{number}"},
            "html": {"href": f"https://github.com/{full}/pull/{number}"},
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "active_lock_reason": None,
        "merged": closed and merged,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": merger if closed and merged else None,
        "comments": 1,
        "review_comments": 2,
        "maintainer_can_modify": False,
        "commits": 3,
        "additions": 120,
        "deletions": 14,
        "changed_files": 5,
    }
    return {
        "action": action,
        "number": number,
        "pull_request": pull_request,
        "repository": repository,
        "organization": {"login": owner, "id": 9919, "url": f"https://api.github.com/orgs/{owner}"},
        "sender": merger,
    }


def ping_event() -> dict[str, Any]:
    return {
        "zen": "Design for failure.",
        "hook_id": 470162148,
        "hook": {"type": "Repository", "id": 470162148, "active": True, "events": ["*"]},
        "repository": _repository("acme", "search"),
        "sender": _user("octo-lead", 7788),
    }


def sign(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_delivery(
    payload: dict[str, Any],
    *,
    event: str = "pull_request",
    secret: str | None = GITHUB_SECRET,
    delivery: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers of one delivery (GitHub posts compact JSON)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/9b97f8a",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid1()),
        "x-github-hook-id": "470162148",
        "x-github-hook-installation-target-type": "repository",
        "x-github-hook-installation-target-id": "186853002",
    }
    if secret is not None:
        headers["x-hub-signature"] = "sha1=" + hmac.new(secret.encode(), body, "sha1").hexdigest()
        headers["x-hub-signature-256"] = sign(body, secret)
    return body, headers


def ticket_event(
    *,
    ticket_id: int | str = 35436,
    status: str = "solved",
    session: str | None = "sess-abc-123",
    field_id: int | str = 360001234,
) -> dict[str, Any]:
    """A Zendesk trigger's webhook body written with ticket placeholders."""
    fields: list[dict[str, Any]] = [{"id": 360009999, "value": "billing"}]
    if session is not None:
        fields.append({"id": field_id, "value": session})
    return {
        "ticket": {
            "id": ticket_id,
            "status": status,
            "url": f"acme.zendesk.com/agent/tickets/{ticket_id}",
            "subject": "Search returns stale results",
            "updated_at": "2026-05-04T16:00:00Z",
            "priority": "high",
            "tags": ["search", "ai-assisted"],
            "custom_fields": fields,
        }
    }
