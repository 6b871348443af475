"""The CLI's client for the running gateway's admin API (`--url`, `SLUICEGATE_ADMIN_KEY`)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console

DEFAULT_URL = "http://127.0.0.1:8340"

UrlOption = typer.Option(
    None, "--url", help=f"Gateway URL [env SLUICEGATE_URL; default {DEFAULT_URL}]"
)

err = Console(stderr=True)


def gateway_url(url: str | None) -> str:
    return (url or os.environ.get("SLUICEGATE_URL") or DEFAULT_URL).rstrip("/")


def call(
    method: str,
    url: str | None,
    path: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One admin API call; prints a clear message and exits on any failure."""
    base = gateway_url(url)
    key = os.environ.get("SLUICEGATE_ADMIN_KEY")
    if not key:
        err.print("[red]SLUICEGATE_ADMIN_KEY is not set[/] (serve prints the admin key at start)")
        raise typer.Exit(2)
    try:
        response = httpx.request(
            method,
            base + path,
            json=json,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
    except httpx.ConnectError:
        err.print(
            f"[red]cannot reach the gateway at {base}[/]: is `sluicegate serve` running? "
            "(set --url or SLUICEGATE_URL)"
        )
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        err.print(f"[red]error {response.status_code}[/]: {message}")
        raise typer.Exit(1)
    return response.json()
