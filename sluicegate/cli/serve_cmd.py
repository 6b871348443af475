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
    # A key from the environment is a secret someone else keeps: never echo it to a
    # terminal or a log. A generated one exists nowhere else, so it is shown once.
    if generated_key:
        out.print(
            f"  admin key: [bold]{settings.admin_key}[/] "
            "(generated; set SLUICEGATE_ADMIN_KEY to keep it)"
        )
    else:
        out.print("  admin key: from SLUICEGATE_ADMIN_KEY (not shown)")
    out.print("\nTry it:")
    if generated_key:
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
    )
    os.environ.update(settings.to_env())
    _banner(settings, generated)

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces

    Granian(
        "sluicegate.server.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        log_access=False,
        backlog=2048,
        http=HTTPModes.http1,
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
