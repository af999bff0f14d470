"""What both services' processes share: the app factory with its lifespan, migrations, and serving."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from alembic import command
from alembic.config import Config
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import tracing
from shared.audit import AuditMixin, AuditTrail, audit_router
from shared.auth import ACCESS_ERRORS, VerifiedTokens
from shared.clock import Clock
from shared.db import create_engine, create_sessionmaker
from shared.dead_letters import dead_letter_router
from shared.delivery import delivery_router
from shared.errors import (
    ConcurrentChange,
    DomainError,
    ErrorResponse,
    InvalidCharacters,
    MalformedBody,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
    error_responses,
    install_error_handlers,
)
from shared.events import dead_letter_topic
from shared.health import router as health_router
from shared.inbox import BatchLocks, DeadLetterMixin, Handler, IdempotentConsumer, InboxMixin
from shared.kafka import KafkaLink
from shared.logging import configure_logging
from shared.metrics import Probe, ServiceMetrics, dead_letter_probe, outbox_probe
from shared.metrics import router as metrics_router
from shared.middleware import RequestStack
from shared.oidc import OidcVerifier
from shared.outbox import OutboxMixin, OutboxRelay
from shared.polling import LoopThread
from shared.settings import ServiceSettings
from shared.tabular import configure as configure_file_limits

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = structlog.get_logger(__name__)

# How many more container objects made than freed start a young collection while a service serves.
YOUNG_OBJECTS = 10_000


class _ServingCollector:
    """The cyclic collector's settings while any service of the process serves. They are the process's, not
    a service's: two services' lifespans may overlap in one process (an embedded deployment, the tests'
    stacks), so the first to start sets them and the last to stop hands back what the first found."""

    def __init__(self) -> None:
        self._serving = 0
        self._found = gc.get_threshold()

    def serving_starts(self) -> None:
        if self._serving == 0:
            self._found = gc.get_threshold()
            gc.set_threshold(YOUNG_OBJECTS, *self._found[1:])
        self._serving += 1
        # Each start sets aside what the process holds by then, this service's start-up with it.
        gc.freeze()

    def serving_stops(self) -> None:
        self._serving -= 1
        if self._serving == 0:
            gc.set_threshold(*self._found)
            gc.unfreeze()


_COLLECTOR = _ServingCollector()


@dataclass(frozen=True)
class ServiceSpec:
    """How one service plugs into the shared machinery."""

    name: str
    title: str
    description: str
    outbox: type[OutboxMixin]
    inbox: type[InboxMixin]
    dead_letters: type[DeadLetterMixin]
    audit: type[AuditMixin]
    produces: list[str]
    consumes: list[str]
    handlers: dict[str, Handler]
    routers: list[APIRouter] = field(default_factory=list)
    # The consumer's batches take their records' row locks with this first (shared.inbox.BatchLocks).
    batch_locks: BatchLocks | None = None
    # Other background loops the service runs for its lifetime, each given the app.
    workers: list[Callable[[FastAPI], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # The service's own figures read from its database for GET /metrics (shared/metrics.py).
    metric_probes: list[Probe] = field(default_factory=list)


def create_service_app(
    spec: ServiceSpec, settings: ServiceSettings, *, tracer_provider: "TracerProvider | None" = None
) -> FastAPI:
    """`tracer_provider`: where the service's spans go; by default the settings' OTLP endpoint, or none."""
    provider = tracer_provider or tracing.provider_for(spec.name, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pre_ping=settings.database_pool_pre_ping,
            recycle_s=settings.database_pool_recycle_s,
            lock_timeout_s=settings.database_lock_timeout_s,
            statement_timeout_s=settings.database_statement_timeout_s,
        )
        sessionmaker = create_sessionmaker(engine)
        if provider is not None:
            tracing.instrument_engine(engine, provider)
            tracing.instrument_httpx(provider)
        # The broker link of requests (readiness); the event path has its own, on its own loop.
        link = KafkaLink(settings, _topics(spec))
        events = LoopThread(f"{spec.name}-events", _event_path(spec, settings, sessionmaker, provider))
        app.state.engine, app.state.sessionmaker, app.state.kafka = engine, sessionmaker, link
        events.start()
        tasks = [asyncio.create_task(worker(app), name=f"{spec.name}-worker") for worker in spec.workers]
        # What the process built to start (its modules, the app and its routes, models, policies: some 230k
        # objects) lives as long as it serves: set aside from the cyclic collector, whose full collections
        # walked all of it again (~0.2 s each, one every few hundred requests under load: a third of an
        # enrollment's CPU). And what a request makes is nearly all freed by reference counts as it ends: at
        # CPython's default (a young collection per 700 more objects made than freed) one ran every few
        # requests over what the requests in flight held, ~45 us of an enrollment's CPU in all. Both handed
        # back when the process's last service stops.
        _COLLECTOR.serving_starts()
        log.info("service_started", service=spec.name, port=settings.port)
        try:
            yield
        finally:
            _COLLECTOR.serving_stops()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await events.stop()
            await link.close()
            await engine.dispose()
            if provider is not None:
                tracing.uninstrument_httpx()
                if tracer_provider is None:  # ours: send what is left
                    provider.shutdown()
            log.info("service_stopped", service=spec.name)

    app = FastAPI(title=spec.title, description=spec.description, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    configure_file_limits(settings.file_limits)  # every file this process reads from outside
    app.state.clock = Clock(settings.clock_start)
    app.state.audit_trail = AuditTrail(spec.audit, lambda: app.state.sessionmaker)
    app.state.metrics = ServiceMetrics(
        app.state,
        [
            outbox_probe(spec.outbox, [*spec.produces, *(dead_letter_topic(t) for t in spec.consumes)]),
            dead_letter_probe(spec.dead_letters),
            *spec.metric_probes,
        ],
        max_age_s=settings.metrics_cache_s,
    )
    # The bureau's identity provider, when configured: its tokens are accepted besides the HS256 ones.
    app.state.oidc = OidcVerifier.of(settings)
    app.state.verified_tokens = VerifiedTokens()
    # Upload routes add their own limits (path -> bytes); the middleware reads them per request.
    app.state.body_limits = {}
    install_error_handlers(app)
    _add_middleware(app, settings, provider)
    _include_routers(app, spec)
    _declare_common_errors(app)
    return app


# The event path's own pool: the relay and the consumer hold one connection each at a time.
EVENT_POOL_SIZE = 2


def _topics(spec: ServiceSpec) -> list[str]:
    return sorted({*spec.produces, *spec.consumes, *(dead_letter_topic(t) for t in spec.consumes)})


def _event_path(
    spec: ServiceSpec,
    settings: ServiceSettings,
    requests: async_sessionmaker[AsyncSession],
    provider: "TracerProvider | None",
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The outbox relay and the consumer, to run on an event loop of their own (`LoopThread`): on the
    request loop, every round trip of theirs waited for a whole turn of a loop busy with requests, and under
    load an event's hop took seconds. Connections belong to the loop that made them, so they get their own
    engine and broker link; their sessions are of the requests' Session class, so that a request's commit
    wakes the relay (and a consumer's commit too)."""
    engine = create_engine(
        settings.database_url,
        pool_size=EVENT_POOL_SIZE,
        max_overflow=EVENT_POOL_SIZE,
        pre_ping=settings.database_pool_pre_ping,
        recycle_s=settings.database_pool_recycle_s,
    )
    tracer = None
    if provider is not None:
        tracing.instrument_engine(engine, provider)
        tracer = provider.get_tracer("canbao")
    sessionmaker = async_sessionmaker(
        engine, expire_on_commit=False, sync_session_class=requests.kw["sync_session_class"]
    )
    link = KafkaLink(settings, _topics(spec))
    relay = OutboxRelay(
        sessionmaker,
        spec.outbox,
        link,
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
        round_spacing_s=settings.outbox_round_spacing_s,
        tracer=tracer,
    )
    consumer = IdempotentConsumer(
        settings,
        spec.consumes,
        sessionmaker,
        spec.inbox,
        spec.dead_letters,
        spec.outbox,
        spec.handlers,
        tracer=tracer,
        batch_locks=spec.batch_locks,
    )

    async def run() -> None:
        try:
            await asyncio.gather(relay.run(), consumer.run())
        finally:
            await link.close()
            await engine.dispose()

    return run


def _add_middleware(app: FastAPI, settings: ServiceSettings, provider: "TracerProvider | None") -> None:
    # The last added runs first: each request is traced (when on), then counted, logged, bounded, its caller
    # checked before its body is read and its answer masked (shared.middleware.RequestStack).
    app.add_middleware(
        RequestStack, max_header_bytes=settings.max_header_bytes, default_body_bytes=settings.max_body_bytes
    )
    if provider is not None:
        tracing.instrument_app(app, provider)


def _include_routers(app: FastAPI, spec: ServiceSpec) -> None:
    app.include_router(health_router)
    app.include_router(metrics_router)
    operators = [
        audit_router(spec.audit),
        dead_letter_router(spec.dead_letters, spec.inbox, spec.handlers),
        delivery_router(spec.outbox, spec.dead_letters),
    ]
    for router in [*spec.routers, *operators]:
        app.include_router(router)


def _declare_common_errors(app: FastAPI) -> None:
    """Say in OpenAPI what every endpoint of a kind can answer: 401 and 403 where a token is required, 400
    and 413 where a body is read, and our error body wherever FastAPI would describe its own 422. Done on the
    generated document: FastAPI does not expose included routes for editing."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_in(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_in(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs"))
    components["ErrorResponse"] = error_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    operations = ((method, op) for path in schema.get("paths", {}).values() for method, op in path.items())
    for method, operation in operations:
        responses: dict[str, Any] = operation.setdefault("responses", {})
        common: list[type[DomainError]] = [ValidationFailed, InvalidCharacters, ServiceUnavailable]
        if method != "get":
            common.append(ConcurrentChange)
        if operation.get("security"):
            common += ACCESS_ERRORS
        if "requestBody" in operation:
            common += [MalformedBody, PayloadTooLarge]
        for status, description in _describe(common).items():
            known = responses.setdefault(status, {}).get("description", "Validation Error")
            if known == "Validation Error":  # FastAPI's own, for its own body
                known = ""
            missing = [part for part in description.split("; ") if part not in known]
            responses[status]["description"] = "; ".join(filter(None, [known, *missing]))
        for status, response in responses.items():
            # Errors are JSON even where success is a page or a spreadsheet; FastAPI files them under the
            # route's media type, and describes 422 with its own body rather than ours.
            if status[0] in "45":
                response["content"] = {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                }


def _describe(errors: list[type[DomainError]]) -> dict[str, str]:
    return {str(status): r["description"] for status, r in error_responses(*errors).items()}


def migrate(migrations_dir: Path, database_url: str) -> None:
    """Apply the service's Alembic migrations (`alembic upgrade head`) to its own database."""
    if database_url.startswith("sqlite"):
        db_path = database_url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = database_url
    return config


def serve(app: FastAPI | str, settings: ServiceSettings) -> None:
    """The h11 protocol bounds the request line and headers together (`max_header_bytes`): a head still
    arriving past the bound is answered 400 and the connection closed before it is parsed (httptools,
    uvicorn's default, has no such bound and buffers whatever comes); RequestStack refuses one that arrived
    whole. uvicorn's own access log is off: it prints query strings whole, and lookups carry ID numbers and
    names there; RequestStack writes one without their values.

    `app` is the application, or where its factory is ("registry.main:create_app"), which `workers` > 1
    needs: each worker process builds its own (its pool, outbox relay and consumer; they share the work as
    replicas do: one relay at a time by the advisory lock, the consumers as members of one group)."""
    if settings.workers > 1 and not isinstance(app, str):
        raise ValueError("several workers build their own application: give its factory's import path")
    uvicorn.run(app, factory=isinstance(app, str), **server_options(settings))


def server_options(settings: ServiceSettings) -> dict[str, Any]:
    """How uvicorn serves a service (`serve`); the benchmarks' floor app is served the same way."""
    return {
        "workers": settings.workers,
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "timeout_graceful_shutdown": 10,
        "http": "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "access_log": False,
    }
