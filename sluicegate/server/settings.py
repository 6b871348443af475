"""Process settings: from `sluicegate serve` flags, passed to the app factory through the
environment (granian imports the factory by name in its worker)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

import msgspec

from sluicegate.identity.envelope import DEFAULT_PREFIXES

ENV_PREFIX = "SLUICEGATE_"
# Where `serve --emulator` mounts the provider emulator on the gateway's own port.
EMULATOR_MOUNT = "/emulator"
WHAT_IF_DEADLINE_MAX_S = 600.0  # the longest `--what-if-deadline` (the CLI waits that long)


class Settings(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8340
    database_url: str = "sqlite:///./sluicegate.db"
    redis_url: str | None = None
    redis_prefix: str = "sluice:"  # every Redis key starts with it (isolates deployments)
    config_files: tuple[str, ...] = ()
    admin_key: str = ""
    max_body_bytes: int = 10 * 1024 * 1024
    counter_failure_mode: str = "fail_open"  # what to do when Redis is unreachable
    # Capacity leases (policy/counters/redis_lease.py): a replica admits locally against a
    # share of a counter's free capacity it has reserved in Redis. Off: every admission is
    # a Redis call, and even limits too large to lease small are exact to the request.
    redis_leases: bool = True
    # In-memory counters kept per rule window, one per scope value (session, user, tag);
    # past it the least recently used is dropped (policy/counters/memory.py).
    max_counter_keys: int = 20_000
    # The ledger's durable spool, where rows wait while the database is unreachable
    # (ledger/spool_dir.py): None derives it from database_url (beside a SQLite file,
    # else ./sluicegate-spool); bounded to spool_max_mb on disk.
    spool_dir: str | None = None
    spool_max_mb: int = 1024
    # Slow and half-sent requests, overload (server/overload.py; README "Overload"):
    # headers and body must arrive within these times (408 past the body's), a worker holds
    # at most `max_connections` connections, serves `max_in_flight` model calls at once and
    # queues `max_queued` more for at most `queue_timeout_ms`; past that it sheds (503).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 4096
    max_in_flight: int = 1024
    max_queued: int = 128
    queue_timeout_ms: int = 100
    # How long an admitted call waits, after the body, for a close its client sent with it
    # before the provider is called (server/overload.py Departure.last_look); 0: none.
    departure_grace_ms: int = 2
    # What-if replays of the ledger (whatif/, docs/what-if.md): rows one replays at most
    # (then its answer says `truncated`), and its wall-clock deadline (then a 503).
    what_if_max_rows: int = 2_000_000
    what_if_deadline_s: float = 300.0
    header_prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    poll_interval_s: float = 0.5
    # The provider emulator (sluicegate.emulator), a development tool with unauthenticated
    # fault-injection endpoints: mounted at EMULATOR_MOUNT only with `serve --emulator`
    # (SLUICEGATE_EMULATOR=1), never by default. When mounted, it is the default
    # catalog's upstream for providers whose credential variable is unset.
    emulator: bool = False
    public_url: str | None = None  # how the gateway reaches itself (the mounted emulator)
    # Outcome webhooks (docs/outcomes.md): each is served only when its secret is set,
    # from the environment (SLUICEGATE_GITHUB_WEBHOOK_SECRET, ..._HELPDESK_...), never
    # from config documents. The helpdesk's session id is in the custom field with this
    # id or name.
    github_webhook_secret: str | None = None
    helpdesk_webhook_secret: str | None = None
    helpdesk_session_field: str = "sluice_session"
    # The web UI (sluicegate/ui, docs/ui.md): how long a sign-in lasts, and whether its
    # cookies are Secure even when the request arrived over plain HTTP (TLS ended by a
    # proxy in front); over HTTPS they always are.
    ui_session_hours: float = 12.0
    ui_secure_cookie: bool = False

    @property
    def self_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.public_url or f"http://{host}:{self.port}"

    @property
    def emulator_url(self) -> str | None:
        """Base URL of the mounted emulator as the gateway reaches it; None when not mounted."""
        return self.self_url.rstrip("/") + EMULATOR_MOUNT if self.emulator else None

    def to_env(self) -> dict[str, str]:
        env = {}
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = os.pathsep.join(value)
            env[ENV_PREFIX + field.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        values: dict[str, Any] = {}  # each field's value, typed as its default is
        defaults = cls()
        for field in cls.__struct_fields__:
            raw = env.get(ENV_PREFIX + field.upper())
            if raw is None:
                continue
            default = getattr(defaults, field)
            if isinstance(default, tuple):
                values[field] = tuple(p for p in raw.split(os.pathsep) if p)
            elif isinstance(default, bool):
                values[field] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[field] = int(raw)
            elif isinstance(default, float):
                values[field] = float(raw)
            else:
                values[field] = raw
        settings = cls(**values)
        if not settings.admin_key:
            settings.admin_key = secrets.token_urlsafe(24)
        return settings
