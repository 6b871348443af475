"""What a session produced, reported as an integration would: `POST /api/outcomes` with
the admin key, or, for a merged PR when the GitHub webhook's secret is known, a
`pull_request` delivery signed with `X-Hub-Signature-256` (the trailer names the session)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from sluicegate.demo.plan import PlannedSession

OUTCOME_TIMEOUT_S = 10.0


async def report_outcome(
    client: httpx.AsyncClient, session: PlannedSession, github_secret: str | None
) -> int:
    """The HTTP status of the report (0: no answer)."""
    outcome = session.outcome
    if outcome is None:
        return 0
    workflow = session.workflow.tag if session.workflow else None
    try:
        if outcome.via_github and github_secret:
            body = json.dumps(_pull_request(session.session_id, workflow, outcome.external_id))
            signature = hmac.new(github_secret.encode(), body.encode(), hashlib.sha256)
            response = await client.post(
                "/api/outcomes/github",
                content=body,
                timeout=OUTCOME_TIMEOUT_S,
                headers={
                    "content-type": "application/json",
                    "x-github-event": "pull_request",
                    "x-github-delivery": outcome.external_id,
                    "x-hub-signature-256": f"sha256={signature.hexdigest()}",
                },
            )
        else:
            fields = {
                "external_id": outcome.external_id,
                "kind": outcome.kind,
                "session_id": session.session_id,
                "workflow_tag": workflow,
            }
            response = await client.post("/api/outcomes", json=fields, timeout=OUTCOME_TIMEOUT_S)
    except httpx.HTTPError:
        return 0
    return response.status_code


def _pull_request(session_id: str, workflow: str | None, external_id: str) -> dict[str, Any]:
    number = int(hashlib.sha256(external_id.encode()).hexdigest()[:6], 16)
    trailers = f"Sluice-Session: {session_id}\n" + (
        f"Sluice-Workflow: {workflow}\n" if workflow else ""
    )
    return {
        "action": "closed",
        "pull_request": {
            "number": number,
            "html_url": f"https://github.com/acme/search/pull/{number}",
            "merged": True,
            "body": f"Demo change.\n\n{trailers}",
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "acme/search"},
    }
