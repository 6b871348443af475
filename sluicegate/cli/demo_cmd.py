"""`sluicegate demo`: drive the demo organisation through a running gateway (or, with
`--serve`, through one it starts: what `make demo` runs). See sluicegate/demo/."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from sluicegate.cli.admin_key import ENV as ADMIN_KEY_ENV
from sluicegate.cli.admin_key import admin_key
from sluicegate.demo import setup, stack
from sluicegate.demo.backfill import backfill
from sluicegate.demo.plan import plan
from sluicegate.demo.runner import RunResult, Target, run
from sluicegate.errors import ConfigError

GITHUB_SECRET_ENV = "SLUICEGATE_GITHUB_WEBHOOK_SECRET"


def _default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8340}"


def demo(
    url: str = typer.Option(
        None,
        "--url",
        envvar="SLUICEGATE_URL",
        help="The running gateway (default http://127.0.0.1:$PORT, PORT 8340 unless set)",
    ),
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Start the gateway (serve --emulator) here and keep it running until Ctrl-C",
    ),
    port: int = typer.Option(None, "--port", envvar="PORT", help="--serve: the port (8340)"),
    database_url: str = typer.Option(
        None,
        "--database-url",
        help="The gateway's ledger: needed by --backfill-days (--serve: sqlite:///./sluicegate.db)",
    ),
    admin_key_file: Path = typer.Option(
        Path(".sluicegate-admin-key"),
        "--admin-key-file",
        help="Without SLUICEGATE_ADMIN_KEY: the admin key file (serve writes it, 0600)",
    ),
    keys_file: Path = typer.Option(
        Path(".sluicegate-demo-keys.json"),
        "--keys-file",
        help="The demo users' API keys (0600), reused while the gateway accepts them",
    ),
    documents: Path = typer.Option(
        setup.DOCUMENTS,
        "--documents",
        exists=True,
        file_okay=False,
        help="A folder of config documents to apply first (budgets, limits, analytics)",
    ),
    seed: int = typer.Option(7, "--seed", help="The same seed plans the same requests"),
    requests: int = typer.Option(400, "--requests", min=1, max=100_000, help="Live calls"),
    duration: float = typer.Option(
        300.0, "--duration", min=1.0, help="Stop live traffic after this many seconds"
    ),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=64, help="Sessions at once"),
    backfill_days: int = typer.Option(
        0, "--backfill-days", min=0, max=90, help="Past days written into the ledger"
    ),
    backfill_per_day: int = typer.Option(
        300, "--backfill-requests-per-day", min=1, max=20_000, help="Records per past day"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="The progress bar"),
) -> None:
    """Drive a synthetic organisation (teams, tools, agents, a looping agent, untagged
    spend, frontier overuse, errors, rate limits, outcomes, history) through a gateway,
    so every control-room panel has something to show."""
    out = Console(stderr=True, soft_wrap=True)
    options = _Run(
        seed,
        requests,
        duration,
        concurrency,
        backfill_days,
        backfill_per_day,
        keys_file,
        documents,
        progress,
    )
    try:
        if not serve:
            key = _admin_key(admin_key_file)
            _drive(out, url or _default_url(), key, database_url, options)
            return
        # `kill` (SIGTERM) ends the demo as Ctrl-C does: the gateway child is stopped too.
        signal.signal(signal.SIGTERM, _interrupt)
        port = port or 8340
        database_url = database_url or "sqlite:///./sluicegate.db"
        with stack.serving(port, database_url, admin_key_file) as (base, proc):
            key = _admin_key(admin_key_file)
            _drive(out, base, key, database_url, options)
            out.print(
                f"\n[bold]Control room: {base}/ui/[/]  (sign in with the admin key in "
                f"{admin_key_file}: `cat {admin_key_file}`)"
            )
            out.print(
                f"CLI: export SLUICEGATE_URL={base} SLUICEGATE_ADMIN_KEY=$(cat "
                f"{admin_key_file}); .venv/bin/sluicegate report"
            )
            out.print("The gateway keeps running; Ctrl-C stops it.")
            stack.wait_until_stopped(proc)
    except (setup.SetupError, stack.GatewayDidNotStart, ConfigError) as exc:
        out.print(f"error: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        out.print("stopped")
        raise typer.Exit(130) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True)
class _Run:
    """What to send (the command's options, less where to send it)."""

    seed: int
    requests: int
    duration: float
    concurrency: int
    backfill_days: int
    backfill_per_day: int
    keys_file: Path
    documents: Path
    progress: bool


def _admin_key(key_file: Path) -> str:
    if os.environ.get(ADMIN_KEY_ENV):
        return os.environ[ADMIN_KEY_ENV]
    if not key_file.exists():
        raise ConfigError(f"no admin key: set {ADMIN_KEY_ENV} or pass --admin-key-file")
    return admin_key({}, key_file).value


def _drive(out: Console, url: str, key: str, database_url: str | None, options: _Run) -> None:
    with setup.admin_client(url, key) as admin:
        applied = setup.apply_documents(admin, options.documents)
        keys = setup.user_keys(admin, options.keys_file)
    setup.set_faults(url)
    out.print(f"demo: {url}; applied {', '.join(applied)}; {len(keys)} users' keys")
    if options.backfill_days:
        if not database_url:
            raise ConfigError("--backfill-days writes into the ledger: give --database-url")
        written = asyncio.run(
            backfill(database_url, options.backfill_days, options.backfill_per_day, options.seed)
        )
        out.print(f"backfill: {written:,} requests over {options.backfill_days} past days")
    demo_plan = plan(options.seed, options.requests)
    target = Target(url, key, keys, os.environ.get(GITHUB_SECRET_ENV) or None)
    result = asyncio.run(
        run(
            target,
            demo_plan,
            concurrency=options.concurrency,
            duration_s=options.duration,
            show_progress=options.progress,
        )
    )
    _report(out, result)


def _report(out: Console, result: RunResult) -> None:
    ended = "done" if result.finished else "stopped at --duration"
    out.print(
        f"traffic {ended}: {result.calls} calls ({result.summary()}); outcomes reported: "
        f"{sum(n for s, n in result.outcomes.items() if 200 <= s < 300)}"
    )
