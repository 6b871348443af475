"""`sluicegate budgets` and `sluicegate targets`: live policy and routing state."""

from __future__ import annotations

from rich.console import Console

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call
from sluicegate.cli.tables import table as shown_table

out = Console()


def budgets(url: UrlOption = DEFAULT_URL) -> None:
    """Each budget's spend, what requests in flight reserve, what replicas lease (capacity
    held ahead of requests, given back when idle), ceiling and window reset."""
    rows = call("GET", url, "/api/budgets")["data"]
    headers = ("budget", "window", "spent $", "reserved $", "leased $", "ceiling $", "%")
    table = shown_table(
        (*headers, "resets at"),
        (
            (
                r["id"],
                r["window"],
                f"{r['spent_usd']:.4f}",
                f"{r['reserved_usd']:.4f}",
                f"{r.get('leased_usd', 0):.4f}",
                f"{r['ceiling_usd']:.2f}",
                f"{r['pct']:.1f}",
                str(r["resets_at"]),
            )
            for r in rows
        ),
        whole=("budget",),
    )
    out.print(table)


def targets(url: UrlOption = DEFAULT_URL) -> None:
    """Routing targets: breaker state, latency, error rate and traffic share."""
    rows = call("GET", url, "/api/targets")["data"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    headers = ("virtual model", "target", "provider/model", "breaker", "p50 ms", "p95 ms")
    table = shown_table(
        (*headers, "error %", "share %"),
        (
            (
                r.get("virtual_model") or "",
                r.get("target_id") or "",
                f"{r.get('provider')}/{r.get('model')}",
                r.get("state", ""),
                ms(r.get("p50_ms")),
                ms(r.get("p95_ms")),
                f"{100 * (r.get('error_rate') or 0):.1f}",
                f"{100 * (r.get('share') or 0):.1f}",
            )
            for r in rows
        ),
        whole=("virtual model", "target"),
    )
    out.print(table)
