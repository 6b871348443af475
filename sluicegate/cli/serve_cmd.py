"""`sluicegate serve` and `sluicegate emulator`."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console

from sluicegate.cli.admin_key import AdminKey, admin_key
from sluicegate.errors import ConfigError, SluiceError
from sluicegate.server.settings import WHAT_IF_DEADLINE_MAX_S, Settings

out = Console(soft_wrap=True)  # the banner is for copying: never break its lines


def _banner(settings: Settings, key: AdminKey) -> None:
    base = settings.self_url
    out.print(f"[bold]sluicegate[/] listening on {base}")
    out.print(f"  database: {settings.database_url}")
    out.print(f"  control room: {base}/ui/ (sign in with the admin key or an admin API token)")
    out.print(f"  counters: {'redis ' + settings.redis_url if settings.redis_url else 'in memory'}")
    spool = settings.spool_dir or "in memory (the ledger itself is in memory)"
    out.print(f"  ledger spool: {spool} (rows wait here while the database is unreachable)")
    if settings.emulator:
        out.print(
            f"  [bold yellow]emulator: mounted at {settings.emulator_url}[/] (development tool: "
            "its /_emulator fault endpoints need no key; serves models with no provider "
            "credentials; never use --emulator in production)"
        )
    else:
        out.print(
            "  emulator: off (the default catalog calls the real APIs with OPENAI_API_KEY / "
            "ANTHROPIC_API_KEY; `serve --emulator` mounts the development emulator)"
        )
    hooks = [
        f"{name} ({url})"
        for name, url, secret in (
            ("github", f"{base}/api/outcomes/github", settings.github_webhook_secret),
            ("helpdesk", f"{base}/api/outcomes/helpdesk", settings.helpdesk_webhook_secret),
        )
        if secret
    ]
    out.print(
        f"  outcome webhooks: {', '.join(hooks) if hooks else 'none'} (a secret in "
        "SLUICEGATE_GITHUB_WEBHOOK_SECRET / SLUICEGATE_HELPDESK_WEBHOOK_SECRET turns one on)"
    )
    # A key from the environment or a file is a secret kept elsewhere: never echo it to a
    # terminal or a log. A generated one exists nowhere else, so it is shown once.
    if key.origin == "environment":
        out.print("  admin key: from SLUICEGATE_ADMIN_KEY (not shown)")
        export_key = None
    elif key.path is not None:
        kept = "written to" if key.origin == "new file" else "from"
        out.print(f"  admin key: {kept} {key.path} (mode 0600; kept across restarts)")
        export_key = f"$(cat {_shell_path(key.path)})"
    else:
        out.print(
            f"  admin key: [bold]{key.value}[/] (generated; set SLUICEGATE_ADMIN_KEY to keep it)"
        )
        export_key = key.value
    cli = _cli_command()
    out.print("\nTry it:")
    out.print(f"  export SLUICEGATE_URL={base}")
    if export_key is not None:
        out.print(f"  export SLUICEGATE_ADMIN_KEY={export_key}")
    out.print(
        f"  {cli} keys create --user alice --team search --project platform-search "
        "--name alice-laptop"
    )
    out.print("  export KEY=...   # the key it printed")
    out.print(
        f'  curl {base}/v1/chat/completions -H "Authorization: Bearer $KEY" '
        "-H 'Content-Type: application/json' \\\n"
        '    -d \'{"model": "gpt-4o-mini", "messages": '
        '[{"role": "user", "content": "hello"}]}\'\n',
        soft_wrap=True,
    )


def _cli_command() -> str:
    """How to run this very `sluicegate` from the current directory: its bare name when
    the shell finds this one, else its path (`.venv/bin/sluicegate` after `make demo`)."""
    script = Path(sys.executable).parent / "sluicegate"
    found = shutil.which("sluicegate")
    if found and Path(found).resolve() == script.resolve():
        return "sluicegate"
    return _shell_path(script) if script.exists() else f"{sys.executable} -m sluicegate.cli.main"


def _shell_path(path: Path) -> str:
    """`path` as short as it can be typed from here."""
    path = path.absolute()
    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind"),
    port: int = typer.Option(8340, help="Port to bind"),
    database_url: str = typer.Option(
        "sqlite:///./sluicegate.db", "--database-url", help="sqlite:///PATH or postgresql://..."
    ),
    redis_url: str = typer.Option(
        None, "--redis-url", help="Share counters, breakers and sessions across replicas"
    ),
    redis_prefix: str = typer.Option(
        "sluice:", "--redis-prefix", help="Prefix of every Redis key (isolates deployments)"
    ),
    config: list[Path] = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        help="Config document file to apply at start (repeatable)",
    ),
    emulator: bool = typer.Option(
        False,
        "--emulator/--no-emulator",
        help="Development only: mount the provider emulator (fault endpoints without a key) "
        "at /emulator",
    ),
    counter_failure_mode: str = typer.Option(
        "fail_open", "--counter-failure-mode", help="fail_open | fail_closed when Redis is down"
    ),
    redis_leases: bool = typer.Option(
        True,
        "--redis-leases/--no-redis-leases",
        help="Admit locally against capacity leased from Redis (off: one Redis call per admission)",
    ),
    max_counter_keys: int = typer.Option(
        20_000,
        "--max-counter-keys",
        min=100,
        help="In-memory counters kept per rule window (one per session, user or tag value); "
        "past it the least recently used is dropped",
    ),
    spool_dir: Path = typer.Option(
        None,
        "--spool-dir",
        file_okay=False,
        help="Where ledger rows wait while the database is unreachable, replayed at start "
        "and when it returns [default: beside a SQLite file (DB-spool/), else "
        "./sluicegate-spool/HOST-PORT-DB/]",
    ),
    spool_max_mb: int = typer.Option(
        1024, "--spool-max-mb", min=1, help="Disk the spool may use; rows past it are lost"
    ),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        min=0.1,
        help="Seconds a connection may take to send a request's headers (and may idle "
        "between keep-alive requests); past it the connection is closed",
    ),
    body_timeout: float = typer.Option(
        30.0,
        "--body-timeout",
        min=0.1,
        help="Seconds a request's whole body may take to arrive; past it: 408",
    ),
    max_connections: int = typer.Option(
        4096,
        "--max-connections",
        min=16,
        help="Open connections per worker; past it new connections wait in the backlog",
    ),
    max_in_flight: int = typer.Option(
        1024,
        "--max-in-flight",
        min=1,
        help="Model calls a worker serves at once (a stream counts until it ends)",
    ),
    max_queued: int = typer.Option(
        128,
        "--max-queued",
        min=0,
        help="Model calls a worker queues past --max-in-flight; past both: 503 at once",
    ),
    queue_timeout_ms: int = typer.Option(
        100,
        "--queue-timeout-ms",
        min=1,
        help="Longest wait in that queue before the call is shed with 503",
    ),
    departure_grace_ms: int = typer.Option(
        2,
        "--departure-grace-ms",
        min=0,
        max=1000,
        help="Milliseconds an admitted call waits before the provider is called when "
        "slots are getting scarce (an eighth of --max-in-flight taken, or a queue), for a "
        "close sent with the request to be seen (no upstream call for a client that left); "
        "0: none",
    ),
    workers: int = typer.Option(
        1, min=1, help="Worker processes (more than one needs --redis-url)"
    ),
    admin_key_file: Path | None = typer.Option(
        None,
        "--admin-key-file",
        dir_okay=False,
        help="Without SLUICEGATE_ADMIN_KEY: read the admin key from this file, or write a "
        "new one there (mode 0600) and keep it across restarts",
    ),
    helpdesk_session_field: str = typer.Option(
        "sluice_session",
        "--helpdesk-session-field",
        envvar="SLUICEGATE_HELPDESK_SESSION_FIELD",
        help="The helpdesk webhook's custom field (id or name) holding the session id; "
        "its secret is read from SLUICEGATE_HELPDESK_WEBHOOK_SECRET, GitHub's from "
        "SLUICEGATE_GITHUB_WEBHOOK_SECRET (docs/outcomes.md)",
    ),
    ui_secure_cookie: bool = typer.Option(
        False,
        "--ui-secure-cookie",
        envvar="SLUICEGATE_UI_SECURE_COOKIE",
        help="Mark the web UI's cookies Secure even over plain HTTP (TLS ended by a proxy "
        "in front); over HTTPS they always are (docs/ui.md)",
    ),
    ui_session_hours: float = typer.Option(
        12.0,
        "--ui-session-hours",
        min=0.1,
        max=24 * 30,
        envvar="SLUICEGATE_UI_SESSION_HOURS",
        help="How long a web UI sign-in lasts before signing in again",
    ),
    what_if_max_rows: int = typer.Option(
        2_000_000,
        "--what-if-max-rows",
        min=1,
        max=100_000_000,
        help="Ledger rows one what-if replays at most; past it the answer says truncated",
    ),
    what_if_deadline: float = typer.Option(
        300.0,
        "--what-if-deadline",
        min=1.0,
        max=WHAT_IF_DEADLINE_MAX_S,
        help="Seconds one what-if may take before it is stopped with an error (503)",
    ),
) -> None:
    """Run the gateway and its control room."""
    if counter_failure_mode not in ("fail_open", "fail_closed"):
        raise typer.BadParameter(
            "use fail_open or fail_closed", param_hint="--counter-failure-mode"
        )
    if workers > 1 and not redis_url:
        raise typer.BadParameter(
            f"{workers} workers need --redis-url: without Redis each worker keeps its own "
            f"counters, so every rate limit and budget would admit up to {workers} times "
            "its value. Run one worker, or share counters with --redis-url redis://...",
            param_hint="--workers",
        )
    spool = _spool_dir(database_url, spool_dir)
    _migrate(database_url)
    try:
        key = admin_key(dict(os.environ), admin_key_file)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--admin-key-file") from None
    settings = Settings(
        host=host,
        port=port,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        config_files=tuple(str(p.resolve()) for p in (config or [])),
        admin_key=key.value,
        emulator=emulator,
        counter_failure_mode=counter_failure_mode,
        redis_leases=redis_leases,
        max_counter_keys=max_counter_keys,
        spool_dir=spool,
        spool_max_mb=spool_max_mb,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        max_connections=max_connections,
        max_in_flight=max_in_flight,
        max_queued=max_queued,
        queue_timeout_ms=queue_timeout_ms,
        departure_grace_ms=departure_grace_ms,
        # secrets come from the environment only: a flag would show in `ps`
        github_webhook_secret=os.environ.get("SLUICEGATE_GITHUB_WEBHOOK_SECRET") or None,
        helpdesk_webhook_secret=os.environ.get("SLUICEGATE_HELPDESK_WEBHOOK_SECRET") or None,
        helpdesk_session_field=helpdesk_session_field,
        what_if_max_rows=what_if_max_rows,
        what_if_deadline_s=what_if_deadline,
        ui_secure_cookie=ui_secure_cookie,
        ui_session_hours=ui_session_hours,
    )
    os.environ.update(settings.to_env())
    _banner(settings, key)

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    # backpressure is granian's cap on a worker's open connections (idle keep-alive ones
    # included); the header timeout also closes connections idle between requests.
    # A worker that dies (killed for memory, a crash) is replaced instead of the whole
    # server shutting down.
    Granian(
        "sluicegate.server.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        log_access=False,
        backlog=2048,
        backpressure=max_connections,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=int(header_timeout * 1000)),
        respawn_failed_workers=True,
        respawn_interval=1.0,
    ).serve()


def _spool_dir(database_url: str, spool_dir: Path | None) -> str | None:
    """The spool directory every worker uses, as an absolute path (None: in memory)."""
    from sluicegate.ledger.spool_dir import default_spool_dir

    if spool_dir is not None:
        return str(spool_dir.resolve())
    try:
        return default_spool_dir(database_url)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--database-url") from None


def _migrate(database_url: str) -> None:
    """Bring the database to the current schema once, before any worker starts: workers
    migrating a fresh database side by side collide (SQLite: `table requests already
    exists`). Each worker's own check then finds nothing to do."""
    from sluicegate.db.engine import async_url, is_memory_sqlite
    from sluicegate.db.migrate import upgrade

    if is_memory_sqlite(async_url(database_url)):
        return  # every worker has its own in-memory database, migrated where it lives
    try:
        asyncio.run(upgrade(database_url))
    except SluiceError as exc:
        out.print(f"[bold red]error:[/] cannot prepare the database {database_url}: {exc}")
        raise typer.Exit(1) from None


def emulator(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8350),
    faults: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="YAML/JSON fault table: model -> fault"
    ),
) -> None:
    """Run the provider emulator alone (OpenAI and Anthropic wire formats)."""
    from sluicegate.emulator import serve as serve_emulator

    out.print(f"provider emulator on http://{host}:{port} (OpenAI: /v1, Anthropic: /)")
    serve_emulator(host, port, str(faults) if faults else None)
