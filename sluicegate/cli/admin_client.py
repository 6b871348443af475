"""The CLI's one client for a running gateway's admin API, used by every command that
talks to one (keys, requests, budgets, targets, apply, config).

Base URL: `--url`, else $SLUICEGATE_URL, else http://127.0.0.1:8340. Credential:
$SLUICEGATE_ADMIN_KEY, the admin key or an admin API token (`sga-...`, its role decides
what it may do), sent as a bearer token. Who ran it: the login name, sent as
`x-sluice-actor` (the config history records it). Every failure is one line (or, for a
refused config, one line per problem) on stderr and an exit code:

    1  the gateway answered with an error (`error: ...`), a role refusal included
    2  the gateway could not be reached, timed out, answered garbage, or refused the key
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any, NoReturn

import httpx
import typer

from sluicegate.config.problems import Problem

DEFAULT_URL = "http://127.0.0.1:8340"
TIMEOUT_S = 30.0
ADMIN_KEY_ENV = "SLUICEGATE_ADMIN_KEY"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="SLUICEGATE_URL", help="The gateway's base URL ($SLUICEGATE_URL)."
    ),
]


def open_client(url: str) -> httpx.Client:
    """The HTTP client for `url`, with the admin key and the actor (tests replace this to
    reach an app in process)."""
    headers = {"x-sluice-actor": _login()}
    key = os.environ.get(ADMIN_KEY_ENV)
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT_S)


def call(method: str, url: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One admin API call; its JSON object, or a printed failure and an exit (see above).
    `params` that are None are left out; other keyword arguments go to httpx."""
    if "params" in kwargs:
        kwargs["params"] = {k: v for k, v in (kwargs["params"] or {}).items() if v is not None}
    try:
        with open_client(url) as client:
            response = client.request(method, path, **kwargs)
    except httpx.ConnectError:
        fail(
            f"cannot reach the gateway at {url}: is it running? (set --url or SLUICEGATE_URL)",
            code=2,
        )
    except httpx.TimeoutException:
        fail(f"the gateway at {url} did not answer in time", code=2)
    except httpx.HTTPError as exc:
        fail(f"request to {url} failed: {exc}", code=2)
    try:
        payload = response.json()
    except ValueError:
        fail(f"the gateway answered {response.status_code} with a body that is not JSON", code=2)
    if response.status_code == 403 and _error_code(payload) == "role_forbidden":
        fail(f"error: {error_message(payload)}", code=1)  # the credential is fine, its role not
    if response.status_code in (401, 403):
        if not os.environ.get(ADMIN_KEY_ENV):
            fail(f"{ADMIN_KEY_ENV} is not set (serve prints the admin key at start)", code=2)
        fail(
            f"the gateway refused the admin key ({error_message(payload)}); set {ADMIN_KEY_ENV} "
            "to the admin key or an admin API token",
            code=2,
        )
    if response.status_code >= 400:
        fail("\n".join(problem_lines(payload)), code=1)
    return payload if isinstance(payload, dict) else {}


def fail(message: str, *, code: int) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def error_message(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or payload)


def _error_code(payload: Any) -> object:
    error = payload.get("error") if isinstance(payload, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def problem_lines(payload: Any) -> list[str]:
    """`error: ...` then one line per problem (or the message alone)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    problems = error.get("problems") if isinstance(error, dict) else None
    if not problems:
        return [f"error: {error_message(payload)}"]
    count = len(problems)
    head = f"error: config refused ({count} problem{'' if count == 1 else 's'}); nothing applied"
    return [head, *(f"  {problem_text(problem)}" for problem in problems)]


def problem_text(problem: dict[str, Any]) -> str:
    """One problem (or warning) of an admin API answer, as `Problem.format` writes it."""
    return Problem(
        str(problem.get("document") or "?"),
        problem.get("type"),
        str(problem.get("path") or ""),
        str(problem.get("message") or ""),
    ).format()


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
