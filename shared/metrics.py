"""Prometheus metrics both services serve at `GET /metrics`: requests per route template, the outbox, the
consumer, dead letters, the database pool, and each service's business figures.

Two kinds of figure. What this process did (requests answered, events published and handled, payments
recorded) is counted as it happens, in this process's own counters; a business counter moves only when the
transaction that recorded the fact commits (`count_on_commit`). What the database holds (the outbox backlog,
open dead letters, enrollments by status) is read from the database when scraped, at most once every
`METRICS_CACHE_S` however often scrapes come, so scraping cannot load the database; replicas of one service
report the same such figures (dashboards take their `max`).

Labels are bounded: route templates (never the raw path), event types the code knows, topics, channels,
statuses, region codes and years; never an ID number, a name or any value of one person.

One process serves each replica (`python -m <service> serve` runs one uvicorn worker unless `WORKERS` says
more), so there is no multiprocess mode: Prometheus scrapes every replica (with several workers, whichever one
answers; docs/operations.md).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from starlette.types import Scope

from shared.errors import DomainError
from shared.events import EVENT_TYPES

if TYPE_CHECKING:  # the outbox and the consumer count into this module's metrics
    from shared.inbox import DeadLetterMixin
    from shared.outbox import OutboxMixin

log = structlog.get_logger(__name__)

# `_created` series double every counter's output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# This process's own figures. Business counters of each service register here too.
PROCESS = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    PROCESS.register(_collector)

HTTP_REQUESTS = Counter(
    "canbao_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=PROCESS,
)
HTTP_DURATION = Histogram(
    "canbao_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=PROCESS,
)
OUTBOX_PUBLISHED = Counter(
    "canbao_outbox_published_events",
    "Outbox events the broker acknowledged and the relay marked published, by topic",
    ["topic"],
    registry=PROCESS,
)
OUTBOX_FAILURES = Counter(
    "canbao_outbox_publish_failures",
    "Relay rounds that failed (broker or database unreachable); the events stay for the next round",
    registry=PROCESS,
)
CONSUMER_LAG = Gauge(
    "canbao_consumer_lag_messages",
    "Messages on a partition this process consumes that it has not handled yet (high watermark minus "
    "position), measured after each poll",
    ["topic", "partition"],
    registry=PROCESS,
)
EVENT_HANDLING = Histogram(
    "canbao_event_handling_seconds",
    "Time to handle one consumed message, retries included, by event type and outcome (applied, "
    "redelivered: already applied, dead_lettered)",
    ["event_type", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=PROCESS,
)
DEAD_LETTERED = Counter(
    "canbao_dead_lettered_messages",
    "Messages this process set aside in the dead-letter table, by topic and reason",
    ["topic", "reason"],
    registry=PROCESS,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


def event_type_label(event_type: object) -> str:
    """An event type the code knows, or `unknown`: a message's own text never becomes a label."""
    return event_type if isinstance(event_type, str) and event_type in EVENT_TYPES else "unknown"


def count_request(scope: Scope, status: int, duration_s: float) -> None:
    """Counts an answered request and its duration by method, route template and status (every request:
    shared.middleware). The template is the route the router chose (`/v1/enrollments/{enrollment_id}`), so
    record ids never become labels; a request no route matched is `unmatched`."""
    route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
    method = scope["method"] if scope["method"] in _METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(duration_s)


# Counting on commit: a business counter moves when the transaction that recorded the fact commits, not when
# the code ran (a request refused later, a savepoint rolled back, must not count).
_ON_COMMIT = "metrics_on_commit"
_Pending = list[tuple[SessionTransaction | None, Counter, float]]


def count_on_commit(session: AsyncSession, counter: Counter, amount: float = 1) -> None:
    """Add `amount` to `counter` (a labelled child) once the session's transaction commits."""
    sync = session.sync_session
    pending: _Pending = sync.info.setdefault(_ON_COMMIT, [])
    pending.append((sync.get_nested_transaction() or sync.get_transaction(), counter, amount))


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: _Pending | None = session.info.get(_ON_COMMIT)
    if pending:
        pending[:] = [p for p in pending if not _within(p[0], previous_transaction)]


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: its facts count when the whole transaction commits
    for _, counter, amount in session.info.pop(_ON_COMMIT, []):
        counter.inc(amount)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # closed without a commit: nothing it recorded happened
        session.info.pop(_ON_COMMIT, None)


# Figures read from the database at scrape time.
Probe = Callable[[AsyncSession], Awaitable[list[Metric]]]


def outbox_probe(model: "type[OutboxMixin]", topics: Sequence[str]) -> Probe:
    """Unpublished outbox events and the age of the oldest, per topic (zero for a topic with none, so an
    alert sees the series). The partial index on unpublished rows keeps this cheap."""

    async def probe(session: AsyncSession) -> list[Metric]:
        rows = (
            await session.execute(
                select(model.topic, func.count(), func.min(model.created_at))
                .where(model.published_at.is_(None))
                .group_by(model.topic)
            )
        ).all()
        found = {topic: (count, oldest) for topic, count, oldest in rows}
        now = datetime.now(UTC)
        backlog = GaugeMetricFamily(
            "canbao_outbox_unpublished_events",
            "Events committed to the outbox and not yet acknowledged by the broker, by topic",
            labels=["topic"],
        )
        age = GaugeMetricFamily(
            "canbao_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox event, by topic (0 when none waits)",
            labels=["topic"],
        )
        for topic in sorted({*topics, *found}):
            count, oldest = found.get(topic, (0, None))
            backlog.add_metric([topic], count)
            age.add_metric([topic], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        return [backlog, age]

    return probe


def dead_letter_probe(model: "type[DeadLetterMixin]") -> Probe:
    """Messages set aside and neither replayed nor discarded, by topic and reason (the reasons are the
    consumer's own codes); no series while none waits."""

    async def probe(session: AsyncSession) -> list[Metric]:
        rows = (
            await session.execute(
                select(model.topic, model.reason, func.count())
                .where(model.resolution.is_(None))
                .group_by(model.topic, model.reason)
            )
        ).all()
        family = GaugeMetricFamily(
            "canbao_dead_letters_open",
            "Messages in the dead-letter table waiting for an operator, by topic and reason",
            labels=["topic", "reason"],
        )
        for topic, reason, count in sorted(rows):
            family.add_metric([topic, reason], count)
        return [family]

    return probe


class DatabaseFigures:
    """The probes' figures, read at most once every `max_age_s` (one read at a time; scrapes meanwhile get
    the last figures) and within `timeout_s`. When the database cannot answer, its figures are left out and
    `canbao_metrics_database_up` says 0, rather than serving stale ones as current."""

    def __init__(self, probes: Sequence[Probe], *, max_age_s: float, timeout_s: float):
        self._probes = list(probes)
        self.max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._families: list[Metric] = []
        self._read_at: float | None = None
        self._up = 0.0
        self._duration_s = 0.0
        self._reads = 0
        self._lock = asyncio.Lock()

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with self._lock:
            if self._read_at is not None and time.monotonic() - self._read_at < self.max_age_s:
                return
            started = time.monotonic()
            try:
                self._families = await asyncio.wait_for(self._read(sessionmaker), self._timeout_s)
                self._up = 1.0
            except Exception as exc:
                log.warning("metrics_database_read_failed", error=repr(exc))
                self._families, self._up = [], 0.0
            self._read_at = time.monotonic()
            self._duration_s = self._read_at - started
            self._reads += 1

    async def _read(self, sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
        async with sessionmaker() as session:
            return [family for probe in self._probes for family in await probe(session)]

    def collect(self) -> Iterator[Metric]:
        yield from self._families
        yield GaugeMetricFamily(
            "canbao_metrics_database_up",
            "1 when the last read of the database figures succeeded, else 0 (those figures are then absent)",
            value=self._up,
        )
        yield GaugeMetricFamily(
            "canbao_metrics_database_read_seconds",
            "How long the last read of the database figures took",
            value=self._duration_s,
        )
        yield CounterMetricFamily(
            "canbao_metrics_database_reads",
            "Reads of the database figures since the process started (at most one per METRICS_CACHE_S)",
            value=self._reads,
        )


def _pool_families(pool: Any) -> Iterator[Metric]:
    """The connection pool's use, where the pool keeps one (a QueuePool; an in-memory SQLite has none)."""
    if not all(hasattr(pool, name) for name in ("size", "checkedout", "checkedin")):
        return
    for name, documentation, value in (
        ("canbao_db_pool_size", "Connections the pool keeps open", pool.size()),
        ("canbao_db_pool_checked_out", "Connections in use by requests and workers", pool.checkedout()),
        ("canbao_db_pool_idle", "Open connections waiting in the pool", pool.checkedin()),
    ):
        yield GaugeMetricFamily(name, documentation, value=value)


class ServiceMetrics(Collector):
    """Everything one app's `/metrics` shows: this process's figures, the database pool and the database
    figures of the service's probes."""

    def __init__(self, state: Any, probes: Sequence[Probe], *, max_age_s: float, timeout_s: float = 5.0):
        self._state = state  # the app's state, where the engine and sessions are once it started
        self.database = DatabaseFigures(probes, max_age_s=max_age_s, timeout_s=timeout_s)

    async def refresh(self) -> None:
        sessionmaker = getattr(self._state, "sessionmaker", None)
        if sessionmaker is not None:
            await self.database.refresh(sessionmaker)

    def collect(self) -> Iterable[Metric]:
        yield from PROCESS.collect()
        engine = getattr(self._state, "engine", None)
        if engine is not None:
            yield from _pool_families(engine.pool)
        yield from self.database.collect()


class MetricsNotAllowed(DomainError):
    status_code = 403
    code = "metrics_not_allowed"
    message_zh = "监控指标只向允许的地址直接提供（不经代理）"
    message_en = (
        "Metrics are served only to the addresses METRICS_ALLOWED_NETWORKS allows, asking directly "
        "(not through a proxy)"
    )


def address_allowed(host: str | None, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    if host is None:
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:127.0.0.1 on a dual-stack socket
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# Headers a proxy adds. Prometheus scrapes each replica directly; a request carrying one came through a proxy,
# and the address it shows may be the proxy's own (one on an allowed network would pass everyone it serves).
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format, without a token, to the addresses `METRICS_ALLOWED_NETWORKS` allows, asking
    directly (not through a proxy)."""
    client = request.client.host if request.client else None
    proxied = any(name in request.headers for name in FORWARDING_HEADERS)
    if proxied or not address_allowed(client, request.app.state.settings.metrics_allowed_networks):
        raise MetricsNotAllowed()
    collector: ServiceMetrics = request.app.state.metrics
    await collector.refresh()
    return Response(generate_latest(collector), media_type=CONTENT_TYPE_PLAIN_0_0_4)
