"""Transactional outbox: events are written in the same transaction as the change, then relayed in order.

A service declares `class OutboxMessage(OutboxMixin, Base)`, calls `enqueue()` inside its request
transaction, and runs one `OutboxRelay`. Rows are published in id order and marked sent only after the
broker acknowledged them, so nothing committed is left unpublished; consumers absorb the redelivery that
a crash between acknowledgement and marking can cause.
"""

import asyncio
import math
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    Row,
    String,
    Table,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from shared import bulk, tracing
from shared.db import UTCDateTime, holds_changes
from shared.events import Envelope
from shared.kafka import KafkaLink
from shared.metrics import OUTBOX_FAILURES, OUTBOX_PUBLISHED
from shared.polling import Poller

log = structlog.get_logger(__name__)

_PENDING_FLAG = "outbox_pending"
# How soon a relay tries again when another replica's relay held the lock while events committed here wait.
_LOCKED_OUT_RETRY_S = 0.02
# An unpublished event as the relay reads it: id, event_id, topic, key, payload.
_Unpublished = Row[int, str, str, str, bytes]


class OutboxMixin:
    """Columns of an outbox table; the concrete class sets __tablename__."""

    __tablename__: str

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        # The relay only ever scans unpublished rows in id order: a partial index keeps that cheap.
        unpublished = text("published_at IS NULL")
        return (
            Index(
                f"ix_{cls.__tablename__}_unpublished",
                "id",
                postgresql_where=unpublished,
                sqlite_where=unpublished,
            ),
            # An enrollment's events are found by key to publish them again (shared.delivery).
            Index(f"ix_{cls.__tablename__}_key", "key"),
        )


def enqueue(session: AsyncSession, model: type[OutboxMixin], topic: str, envelope: Envelope) -> None:
    """Add an event to the current transaction's outbox, keyed by its subject (the enrollment id). Within a
    recorded trace the event carries its context (shared.tracing), so the consumer's work joins the trace."""
    traced = envelope.model_copy(update=tracing.trace_fields())
    enqueue_raw(session, model, topic, traced.id, traced.type, traced.subject, traced.to_bytes())


def enqueue_raw(
    session: AsyncSession,
    model: type[OutboxMixin],
    topic: str,
    event_id: str,
    event_type: str,
    key: str,
    payload: bytes,
) -> None:
    """Add a message as it is (e.g. one that is not a valid event, for the dead-letter topic)."""
    session.add(
        model(event_id=event_id, event_type=event_type, topic=topic, key=key, payload=payload)  # type: ignore[call-arg]
    )
    wake_relay(session)


def wake_relay(session: AsyncSession) -> None:
    """The relay looks at the outbox as soon as what this session wrote is committed: when its transaction
    commits, or at once when the session holds no transaction and no changes (the rows were written by a
    driver statement on its own, `shared.db.DriverStatement.fetchrow`, committed when it returned; no commit
    of the session's would come to wake it)."""
    if session.in_transaction() or holds_changes(session):
        session.info[_PENDING_FLAG] = True
        return
    for relay in _RELAYS.get(type(session.sync_session), ()):
        relay.owed()


# The relays of each session class (whose sessions' commits wake them), for rows committed without a commit of
# the session's. Weak both ways: a test's app, its session class and its relay go when they are done with.
_RELAYS: "WeakKeyDictionary[type[Session], WeakSet[OutboxRelay]]" = WeakKeyDictionary()


class OutboxRelay:
    """Publishes outbox rows in order. On PostgreSQL an advisory lock keeps one active relay per service,
    so several replicas never interleave (and so reorder) one enrollment's events. A relay that finds the
    lock held while events committed in its own process wait tries again within moments rather than after
    the poll interval (the holder reads them only if something wakes it)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[OutboxMixin],
        link: KafkaLink,
        *,
        batch_size: int,
        poll_interval_s: float,
        round_spacing_s: float = 0.0,
        tracer: Tracer | None = None,
    ):
        self._sessionmaker = sessionmaker
        self._table: Table = model.__table__  # type: ignore[attr-defined]
        self._link = link
        self._tracer = tracer
        self._batch_size = batch_size
        self._round_spacing_s = round_spacing_s
        # When the last round ended (the event loop's clock), and whether it left a backlog behind it.
        self._last_round_at = -math.inf
        self._backlog = False
        # A broker outage backs off, doubling up to 10 s; the link is dropped to reconnect afresh.
        self._poller = Poller(
            self._publish,
            interval_s=poll_interval_s,
            failure_event="outbox_publish_failed",
            max_backoff_s=10.0,
            recover=self._recover,
        )
        self._lock_key = zlib.crc32(model.__tablename__.encode())
        # Events were committed here since this relay last read the outbox under the lock.
        self._owed = False
        sync_session_class = sessionmaker.kw.get("sync_session_class", Session)
        event.listen(sync_session_class, "after_commit", self._after_commit)
        _RELAYS.setdefault(sync_session_class, WeakSet()).add(self)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_PENDING_FLAG, False):
            self.owed()

    def owed(self) -> None:
        """Events were committed here: the next round starts now."""
        self._owed = True
        self._poller.wake()

    async def run(self) -> None:
        await self._poller.run()

    async def _recover(self) -> None:
        OUTBOX_FAILURES.inc()
        await self._link.reset()

    async def _publish(self) -> bool:
        # Beside a stream of commits, a round that waits out the spacing takes what all of them wrote: a busy
        # registry's relay woke for every second or third enrollment, and a round costs more than its events.
        loop = asyncio.get_running_loop()
        if not self._backlog:
            wait = self._last_round_at + self._round_spacing_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            published = await self._round()
        finally:
            self._last_round_at = loop.time()
        if published is None:  # another replica's relay is publishing
            self._backlog = False
            if self._owed:
                await asyncio.sleep(_LOCKED_OUT_RETRY_S)
                return True
            return False
        # A full batch means more may be waiting: publish on at once.
        self._backlog = published >= self._batch_size
        return self._backlog

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were published."""
        return await self._round() or 0

    async def _round(self) -> int | None:
        """Publish up to one batch: how many rows were, or None if another relay held the lock."""
        table = self._table
        async with self._sessionmaker() as session, session.begin():
            # Cleared before the read: a commit from here on is owed again (and wakes the next round).
            owed, self._owed = self._owed, False
            rows = await self._unpublished(session, ask_holder=owed)
            if rows is None:
                self._owed = self._owed or owed  # the lock was another's: still owed
                return None
            if not rows:
                return 0
            producer = await self._link.producer()
            spans = self._sending(rows)
            try:
                # send() only enqueues; gathering the acknowledgements afterwards lets batches fill.
                pending = [await producer.send(r.topic, r.payload, key=r.key.encode()) for r in rows]
                await asyncio.wait_for(asyncio.gather(*pending), self._link.timeout_s)
            except BaseException as exc:
                for span in spans:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                for span in spans:
                    span.end()
            await session.execute(
                update(table)
                .where(table.c.id.in_([r.id for r in rows]))
                .values(published_at=datetime.now(UTC))
            )
        for topic, count in Counter(r.topic for r in rows).items():
            OUTBOX_PUBLISHED.labels(topic).inc(count)
        log.debug("outbox_published", count=len(rows))
        return len(rows)

    async def _unpublished(self, session: AsyncSession, *, ask_holder: bool) -> list[_Unpublished] | None:
        """The next unpublished rows in id order (plain rows: what publishing needs, without the ORM's
        objects), or None if another relay holds the lock (PostgreSQL). The lock is tried in the same
        statement as the read (an uncorrelated subquery: evaluated once, before any row is read); a read that
        finds nothing asks again whose the lock is only if `ask_holder` (events of this process wait): an
        idle poll is one statement. The statement's snapshot is taken before the lock is tried, so a read
        begun just before the holder committed would see the holder's batch unpublished and send it again;
        locking the rows read (FOR NO KEY UPDATE) has PostgreSQL check each against the latest commit."""
        table = self._table
        query = (
            select(table.c.id, table.c.event_id, table.c.topic, table.c.key, table.c.payload)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.id)
            .limit(self._batch_size)
        )
        if session.get_bind().dialect.name != "postgresql":
            return list((await session.execute(query)).all())
        try_lock = select(func.pg_try_advisory_xact_lock(self._lock_key))
        locked = query.where(try_lock.scalar_subquery()).with_for_update(key_share=True)
        rows = list((await session.execute(locked)).all())
        if not rows and ask_holder and not await session.scalar(try_lock):
            return None
        return rows

    def _sending(self, rows: Sequence[_Unpublished]) -> list[Span]:
        """A producer span per event, in the trace the event carries (none when tracing is off or the event
        carries no trace: the sampler starts no trace at a producer)."""
        if self._tracer is None:
            return []
        return [
            self._tracer.start_span(
                f"send {row.topic}",
                context=tracing.context_of(tracing.fields_of(row.payload)),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": row.topic,
                    "messaging.message.id": row.event_id,
                },
            )
            for row in rows
        ]


_ROW_COLUMNS = ("event_id", "event_type", "topic", "key", "payload", "created_at")


async def enqueue_many(
    session: AsyncSession, model: type[OutboxMixin], topic: str, envelopes: Sequence[Envelope]
) -> None:
    """`enqueue` for many events at once (a reconciliation's payment confirmations): the same rows, in order,
    written in bulk (COPY on PostgreSQL) rather than flushed one object at a time."""
    if not envelopes:
        return
    traced, now = tracing.trace_fields(), datetime.now(UTC)
    rows = [
        (e.id, e.type, topic, e.subject, (e.model_copy(update=traced) if traced else e).to_bytes(), now)
        for e in envelopes
    ]
    await bulk.insert_rows(session, model, _ROW_COLUMNS, rows)
    wake_relay(session)
