"""The composition root: every store, client and stage is built here, once, and passed
down. Nothing else in the package constructs a store or reads process settings.

`create_app(settings)` returns the ASGI app; `app_from_env()` is the factory granian
imports in its worker (settings arrive through SLUICEGATE_* variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from sluicegate import __version__
from sluicegate.alerts.delivery import Notifier
from sluicegate.alerts.store import SqlAlertStore
from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.audit.store import SqlAuditStore
from sluicegate.config.live import ConfigSnapshot, LiveConfig
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade_engine
from sluicegate.identity.admin_token_store import SqlAdminTokenStore
from sluicegate.identity.admin_tokens import AdminTokenService
from sluicegate.identity.client_tool import ClientToolReader
from sluicegate.identity.envelope import EnvelopeReader
from sluicegate.identity.key_store import SqlKeyStore
from sluicegate.identity.keys import KeyService
from sluicegate.ledger.landed_marks import LandedPublisher, LocalLanded, SqlLandedMarks
from sluicegate.ledger.spool_dir import default_spool_dir, open_spool
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.writer import LedgerWriter
from sluicegate.model.identity import Principal
from sluicegate.outcomes.store import SqlOutcomeStore
from sluicegate.pipeline import Pipeline
from sluicegate.policy.engine import PolicyEngine
from sluicegate.providers.catalog import Catalog, build_catalog
from sluicegate.providers.upstream import AiohttpUpstream, UpstreamClient
from sluicegate.router.plan import Router
from sluicegate.router.routes import Target
from sluicegate.server.access import RouteAccess
from sluicegate.server.admin_api import AdminApi, json_response
from sluicegate.server.admin_auth import (
    AdminAuthenticator,
    AdminGate,
    AdminKeyAuth,
    admin_app,
    route_error,
    server_error,
)
from sluicegate.server.admin_config import config_routes
from sluicegate.server.admin_whatif import what_if_routes
from sluicegate.server.analytics_api import analytics_routes
from sluicegate.server.analytics_sessions_api import session_routes
from sluicegate.server.config_review import (
    CompiledConfig,
    ConfigReview,
    compile_config,
    config_warnings,
)
from sluicegate.server.control_api import control_routes
from sluicegate.server.emulator_mount import emulator_route
from sluicegate.server.export_api import ExportApi
from sluicegate.server.openapi import OPENAPI_PATH, openapi_document
from sluicegate.server.outcomes_api import outcome_routes, webhook_paths, webhook_settings
from sluicegate.server.overload import AdmissionGate
from sluicegate.server.settings import Settings
from sluicegate.server.state_stores import memory_stores, redis_client, redis_stores
from sluicegate.server.tokens_api import TokensApi
from sluicegate.server.wire_routes import WireEndpoints
from sluicegate.server.worker_tuning import tune_worker
from sluicegate.ui import ui_app
from sluicegate.whatif.service import WhatIf, WhatIfLimits

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("sluicegate")

LEDGER_MAX_QUEUE = 100_000  # records waiting for the writer (then for an in-memory spool)
START_REPLAY_TIMEOUT_S = 30.0
STOP_BACKGROUND_TIMEOUT_S = 5.0


class Gateway:
    """Owns the components of one gateway process and their start/stop order."""

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: UpstreamClient | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        """Parts given here are used as they are and left open at `stop()` (their maker
        closes them); the rest are built from `settings` and closed here. `upstream`: the
        HTTP client to providers (tests and benches pass a fake or an in-process one).
        `redis`: the client for counters, breakers and sticky pins (made with
        `policy.counters.redis_store.connect`); without one, `settings.redis_url` makes one
        client shared by all three, and with neither they live in memory."""
        self.settings = settings
        self.engine = create_engine_for(settings.database_url)
        self.keys = KeyService(SqlKeyStore(self.engine), admin_key=settings.admin_key)
        self.tokens = AdminTokenService(SqlAdminTokenStore(self.engine))
        self.audit = SqlAuditStore(self.engine)
        # who an /api/ request is (tests wrap it to act as principals of any role)
        self.admin_auth: AdminAuthenticator = AdminKeyAuth(self.keys, self.tokens)
        self.ledger_store = SqlLedgerStore(self.engine)
        spool = open_spool(
            settings.spool_dir or default_spool_dir(settings.database_url),
            max_bytes=settings.spool_max_mb << 20,
            memory_capacity=LEDGER_MAX_QUEUE,
        )
        self.writer = LedgerWriter(self.ledger_store, spool=spool, max_queue=LEDGER_MAX_QUEUE)
        self.alert_store = SqlAlertStore(self.engine)
        self.outcomes = SqlOutcomeStore(self.engine)
        self._owns_upstream = upstream is None
        self.upstream: UpstreamClient = upstream or AiohttpUpstream()
        self._owns_redis = False
        if redis is None and settings.redis_url:
            redis, self._owns_redis = redis_client(settings.redis_url), True
        self.redis = redis
        stores = memory_stores(settings) if redis is None else redis_stores(redis, settings)
        # how far the ledger landed, for budget rebuilds after Redis lost its data: every
        # replica's (a row each in the database), or in one process its writer's own
        self.landed: LocalLanded | SqlLandedMarks = LocalLanded(self.writer)
        self._landed_publisher: LandedPublisher | None = None
        if redis is not None:
            self.landed = SqlLandedMarks(self.engine)
            self._landed_publisher = LandedPublisher(self.writer, self.landed)
        self.counters = stores.counters
        self.notifier = Notifier(alert_store=self.alert_store)
        self.policy = PolicyEngine(
            stores.counters, notifier=self.notifier, failure_mode=settings.counter_failure_mode
        )
        self.router = Router(stores.breakers, sticky=stores.sticky)
        self.registry = DocumentRegistry()
        self.config = ConfigService(
            SqlConfigVersionStore(self.engine), self.registry, review=ConfigReview(self._compile)
        )
        self.live = LiveConfig(self.config, self.registry, poll_interval=settings.poll_interval_s)
        self.what_if = WhatIf(
            engine=self.engine,
            config=self.config,
            compile=self._compile,
            sum_cost=self.ledger_store.sum_cost,
            flush=self.writer.flush,
            limits=WhatIfLimits(
                max_rows=settings.what_if_max_rows, deadline_s=settings.what_if_deadline_s
            ),
        )
        self.live.subscribe(self._on_config)
        self.catalog: Catalog = build_catalog([], self.upstream, emulator_url=settings.emulator_url)
        self.analytics = AnalyticsSettings()  # the gateway-analytics-config in force
        self._background: set[asyncio.Task[object]] = set()
        self.router.set_routes({}, self._catalog_target)
        self.gate = AdmissionGate(
            max_in_flight=settings.max_in_flight,
            max_queued=settings.max_queued,
            queue_timeout_s=settings.queue_timeout_ms / 1000,
        )
        self.pipeline = Pipeline(
            keys=self.keys,
            envelopes=EnvelopeReader(settings.header_prefixes),
            policy=self.policy,
            router=self.router,
            sinks=(self.writer,),
            catalog=lambda: self.catalog,
            client_tools=ClientToolReader(settings.header_prefixes),
        )

    # --- config -> runtime ------------------------------------------------------------
    def _compile(self, snapshot: ConfigSnapshot) -> CompiledConfig:
        return compile_config(
            snapshot,
            self.upstream,
            emulator_url=self.settings.emulator_url,
            header_prefixes=self.settings.header_prefixes,
        )

    def _on_config(self, snapshot: ConfigSnapshot) -> None:
        """Compile a new config version; if anything fails, the old one stays live.
        (Its warnings were reported to whoever applied it; the log keeps them too.)"""
        compiled = self._compile(snapshot)
        for warning in config_warnings(compiled):
            log.warning("config v%s: %s", snapshot.version, warning.format())
        self.notifier.set_targets(compiled.targets)
        self.catalog = compiled.catalog
        self.analytics = compiled.analytics
        self.router.set_routes(compiled.routes, self._catalog_target)
        self.policy.set_policy(compiled.policy)
        self.ledger_store.set_rollup_keys(compiled.analytics.rollup_metadata_keys)
        self._soon(self.ledger_store.record_rollup_keys())

    def _soon(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` in the background (kept until done; awaited at stop). Outside a
        running loop it is dropped: what it does is retried by its owner anyway."""
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _catalog_target(self, model: str) -> Target | None:
        route = self.catalog.model(model)
        if route is None:
            return None
        return self.router.plain_target(route.provider, route.upstream_model)

    def models_for(self, principal: Principal) -> list[str]:
        names = sorted({*self.catalog.models, *self.router.virtual_model_names()})
        return [n for n in names if principal.may_use(n)]

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await upgrade_engine(self.engine)
        await self.keys.start(self.settings.poll_interval_s)
        await self.tokens.start(self.settings.poll_interval_s)
        if self.settings.config_files:
            await self.live.bootstrap(list(self.settings.config_files))
        await self.live.start()
        # The ledger store knows the rollup keys before it writes anything (the spool's
        # rows included), even when no config version could go live.
        self.ledger_store.set_rollup_keys(self.analytics.rollup_metadata_keys)
        await self.ledger_store.record_rollup_keys()
        await self.writer.start()
        if self._landed_publisher is not None:
            await self._landed_publisher.start()
        await self._replay_spool()  # rows from before the restart count in the budgets
        await self.policy.rebuild_budgets(self.ledger_store.sum_cost, self.landed)

    async def _replay_spool(self) -> None:
        """Replay what the spool kept before the budgets are rebuilt from the ledger;
        bounded: the writer goes on replaying the rest in the background."""
        if self.writer.spooled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.writer.replay(), START_REPLAY_TIMEOUT_S)

    async def stop(self) -> None:
        await self.live.stop()
        await self.keys.stop()
        await self.tokens.stop()
        await self.pipeline.drain()
        await self.writer.close()
        if self._landed_publisher is not None:
            await self._landed_publisher.stop()
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=STOP_BACKGROUND_TIMEOUT_S)
            for task in late:
                task.cancel()
        await self.ledger_store.close()
        await self.notifier.close()
        if self._owns_upstream:
            await self.upstream.close()
        await self.policy.close()
        await self.router.close()
        if self._owns_redis and self.redis is not None:
            await self.redis.aclose()  # after every store on it has flushed
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # --- health -----------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        await self.policy.check_store()  # pings Redis: an outage shows here before traffic
        checks: dict[str, dict[str, Any]] = {
            "config": {
                "ok": self.live.last_error is None,
                "version": self.live.version,
                "error": self.live.last_error,
            },
            "counters": {
                "ok": self.policy.healthy,
                "mode": self.settings.counter_failure_mode,
                "backend": "memory" if self.redis is None else "redis",
                "error": self.policy.last_error,
                **self.counters.stats(),
            },
            "admission": {"ok": True, **self.gate.stats()},
            "ledger": {
                "ok": not self.writer.spooling,
                "pending": self.writer.pending,
                "spooled": self.writer.spooled,
                "set_aside": self.writer.status().set_aside,
                "dropped": self.writer.status().dropped,  # rows no spool could keep
                "spool": self.writer.spool_info(),
            },
        }
        # fail_open keeps serving without Redis: ready, but say so.
        ready = checks["config"]["ok"] and (
            checks["counters"]["ok"] or self.settings.counter_failure_mode == "fail_open"
        )
        return Response(
            orjson.dumps({"ready": ready, "checks": checks, "ts": time.time()}),
            status_code=200 if ready else 503,
            media_type="application/json",
        )

    # --- the app ----------------------------------------------------------------------
    def asgi(self) -> ASGIApp:
        wire = WireEndpoints(
            self.pipeline,
            self.keys,
            max_body_bytes=self.settings.max_body_bytes,
            models_for=self.models_for,
            gate=self.gate,
            body_timeout_s=self.settings.body_timeout_s,
            departure_grace_s=self.settings.departure_grace_ms / 1000,
        )
        admin = AdminApi(
            keys=self.keys, ledger=self.ledger_store, writer=self.writer, audit=self.audit
        )
        admin_routes = [
            *admin.routes(),
            *TokensApi(self.tokens, self.audit).routes(),
            *config_routes(lambda r: self.config, lambda r: self.live),
            *what_if_routes(lambda r: self.what_if),
            *control_routes(self),
            *outcome_routes(self.outcomes, webhook_settings(self.settings)),
            *ExportApi(self.engine, audit=self.audit, flush=self.writer.flush).routes(),
            *analytics_routes(self),
            *session_routes(self),
        ]
        routes = [
            *wire.routes(),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route(OPENAPI_PATH, _described(openapi_document(__version__)), methods=["GET"]),
            emulator_route(self.settings.emulator),
        ]
        self.route_table = [*routes, *admin_routes]  # what /openapi.json must describe
        # the web UI: HTML pages, not API operations (docs/ui.md)
        ui = Mount("/ui", app=ui_app(self, AdminKeyAuth(self.keys, self.tokens)))
        app = Starlette(
            routes=[*routes, ui],
            lifespan=self.lifespan,
            # JSON for unknown paths and for bugs
            exception_handlers={HTTPException: route_error, Exception: server_error},
        )
        gate = AdminGate(
            app,
            admin_app(admin_routes),
            self.admin_auth,
            access=RouteAccess(admin_routes),
            max_body_bytes=self.settings.max_body_bytes,
            body_timeout_s=self.settings.body_timeout_s,
            self_authenticating=webhook_paths(),
        )
        return wire.hot_path(gate)


def _described(document: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    """The OpenAPI description, serialised once: it describes routes, never state."""
    body = orjson.dumps(document)

    async def openapi(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return openapi


def create_app(settings: Settings) -> ASGIApp:
    return Gateway(settings).asgi()


def app_from_env() -> ASGIApp:
    """The app a `serve` worker runs: its process is the gateway's own, so the
    interpreter is tuned for it once the app is built (in-process tests and embedders
    keep their own GC and GIL settings)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(Settings.from_env())
    tune_worker()  # gc.freeze, GC thresholds, GIL switch interval (worker_tuning.py)
    return app
