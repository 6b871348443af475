"""What the demo needs from the gateway, created through its admin API: a key per user
(kept in a 0600 file and reused while the gateway still accepts them), the documents in
examples/demo/ (budgets, rate limits, analytics config), and the emulator's fault table
that makes one model flaky."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from sluicegate.demo.org import FLAKY_MODEL, USERS

ADMIN_TIMEOUT_S = 30.0
DOCUMENTS = Path(__file__).resolve().parents[2] / "examples" / "demo"
FLAKY_FAULT = {"status": 503, "failure_rate": 0.3, "retry_after": "1"}


class SetupError(RuntimeError):
    """The gateway refused or could not be reached; the message says which and why."""


def admin_client(url: str, admin_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, timeout=ADMIN_TIMEOUT_S, headers={"authorization": f"Bearer {admin_key}"}
    )


def user_keys(admin: httpx.Client, keys_file: Path | None) -> dict[str, str]:
    """user id -> API key: the file's keys when every one still works, else new ones
    (written to the file, 0600, when one is given)."""
    kept = _kept_keys(keys_file)
    if kept and all(_works(admin, key) for key in kept.values()):
        return kept
    keys = {}
    for user in USERS:
        fields = {"user_id": user.user_id, "team": user.team, "name": f"demo-{user.user_id}"}
        keys[user.user_id] = _ok(admin.post("/api/keys", json=fields), "create a key")["key"]
    if keys_file is not None:
        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(keys, out)
    return keys


def _kept_keys(keys_file: Path | None) -> dict[str, str]:
    """The file's keys when it holds one string per demo user; else none (made anew)."""
    if keys_file is None:
        return {}
    try:
        kept = json.loads(keys_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    users = {u.user_id for u in USERS}
    if not isinstance(kept, dict) or set(kept) != users:
        return {}
    if not all(isinstance(key, str) for key in kept.values()):
        return {}
    return dict(kept)


def _works(admin: httpx.Client, key: str) -> bool:
    response = admin.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    return response.status_code == 200


def apply_documents(admin: httpx.Client, folder: Path = DOCUMENTS) -> list[str]:
    """Each YAML document of `folder` applied (validated and versioned like `apply`)."""
    applied = []
    for path in sorted(folder.glob("*.yaml")):
        response = admin.post(
            "/api/config",
            content=path.read_bytes(),
            headers={"content-type": "application/yaml", "x-sluice-actor": "sluicegate-demo"},
        )
        _ok(response, f"apply {path.name}")
        applied.append(path.name)
    return applied


def set_faults(url: str) -> None:
    """The emulator fails some of FLAKY_MODEL's calls (503 + Retry-After)."""
    response = httpx.put(
        f"{url}/emulator/_emulator/faults", json={FLAKY_MODEL: FLAKY_FAULT}, timeout=ADMIN_TIMEOUT_S
    )
    _ok(response, "set the emulator's faults (is the gateway running with --emulator?)")


def _ok(response: httpx.Response, doing: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise SetupError(f"could not {doing}: {response.status_code} {response.text[:300]}")
    body = response.json()
    return body if isinstance(body, dict) else {}
