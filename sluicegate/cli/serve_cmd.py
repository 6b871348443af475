"""`sluicegate serve` and `sluicegate emulator`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer
from rich.console import Console

from sluicegate.server.settings import Settings

out = Console(soft_wrap=True)  # the banner is for copying: never break its lines


def _banner(settings: Settings, generated_key: bool) -> None:
    base = settings.self_url
    out.print(f"[bold]sluicegate[/] listening on {base}")
    out.print(f"  database: {settings.database_url}")
    out.print(f"  counters: {'redis ' + settings.redis_url if settings.redis_url else 'in memory'}")
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
    note = " (generated; set SLUICEGATE_ADMIN_KEY to keep it)" if generated_key else ""
    out.print(f"  admin key: [bold]{settings.admin_key}[/]{note}")
    out.print("\nTry it:")
    out.print(f"  export SLUICEGATE_ADMIN_KEY={settings.admin_key}")
    out.print(
        "  sluicegate keys create --user alice --team search --project platform-search "
        "--name alice-laptop"
    )
    out.print(
        f'  curl {base}/v1/chat/completions -H "Authorization: Bearer $KEY" '
        "-H 'Content-Type: application/json' \\\n"
        '    -d \'{"model": "gpt-4o-mini", "messages": '
        '[{"role": "user", "content": "hello"}]}\''
    )
    out.print(
        f"  python -c \"import openai; print(openai.OpenAI(base_url='{base}/v1', "
        "api_key='$KEY').chat.completions.create(model='claude-haiku-4-5', "
        "messages=[{'role':'user','content':'hi'}]).choices[0].message.content)\"\n",
        soft_wrap=True,
    )


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
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Run the gateway and its control room."""
    if counter_failure_mode not in ("fail_open", "fail_closed"):
        raise typer.BadParameter(
            "use fail_open or fail_closed", param_hint="--counter-failure-mode"
        )
    admin_key = os.environ.get("SLUICEGATE_ADMIN_KEY") or ""
    generated = not admin_key
    settings = Settings(
        host=host,
        port=port,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        config_files=tuple(str(p.resolve()) for p in (config or [])),
        admin_key=admin_key or secrets.token_urlsafe(24),
        emulator=emulator,
        counter_failure_mode=counter_failure_mode,
        redis_leases=redis_leases,
        max_counter_keys=max_counter_keys,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        max_connections=max_connections,
        max_in_flight=max_in_flight,
        max_queued=max_queued,
        queue_timeout_ms=queue_timeout_ms,
    )
    os.environ.update(settings.to_env())
    _banner(settings, generated)

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
