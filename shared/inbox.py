"""Idempotent consumer: the event id goes into an inbox table in the same transaction as the effect, and
the Kafka offset is committed only after that database commit. Redelivery then changes nothing.

What one poll brings is applied in one transaction (one inbox lookup, one commit for the lot, each partition's
records in their order); if anything in it fails, that transaction is rolled back whole and the records are
applied one by one, each in its own transaction, as before. A message that cannot be processed (malformed,
unknown type, or failing after a bounded number of tries) is written to the service's dead-letter table and
skipped, so it never blocks its partition. A database outage is not the message's fault: the consumer waits
and retries without advancing.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from pydantic import ValidationError
from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from shared import tracing
from shared.db import UTCDateTime, database_unavailable
from shared.events import EVENT_TYPES, Envelope, dead_letter_topic
from shared.kafka import client_options, ensure_topics, start_within, stop_within
from shared.logging import mask_pii
from shared.metrics import CONSUMER_LAG, DEAD_LETTERED, EVENT_HANDLING, event_type_label
from shared.outbox import OutboxMixin, enqueue_raw
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
_LAG_EVERY_S = 1.0
Outcome = Literal["applied", "redelivered", "dead_lettered"]


@dataclass(frozen=True)
class BatchHandler:
    """A handler that applies a run of events of its type together, in their order (one lookup and one
    flush for the run instead of one each per event); called with one event, it applies that one."""

    many: Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        await self.many(session, [envelope])


async def _apply_in_order(session: AsyncSession, events: Sequence[tuple[Envelope, Handler, Span]]) -> None:
    """Each event's handler in the events' order; consecutive events of one batch handler as one run (an
    enrollment's events share a partition and keep their order: a run never passes over an event of another
    type)."""
    start = 0
    while start < len(events):
        envelope, handler, span = events[start]
        end = start + 1
        with trace.use_span(span, end_on_exit=False):  # the run's first event's trace
            if isinstance(handler, BatchHandler):
                while end < len(events) and events[end][1] is handler:
                    end += 1
                await handler.many(session, [e for e, _, _ in events[start:end]])
            else:
                await handler(session, envelope)
        start = end


# Takes, in one fixed order, the row locks a batch's events will take (their subjects' records), before any
# handler runs: a batch holds its locks until its one commit, and a request that takes the same rows in the
# same order then never waits in a circle with it.
BatchLocks = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


class InboxMixin:
    """Event ids already applied; the primary key makes a second application impossible."""

    __tablename__: str

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str] = mapped_column(String(128))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


class DeadLetterMixin:
    """Messages set aside with the reason, for operators to inspect and replay."""

    __tablename__: str

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(128))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    resolution: Mapped[str | None] = mapped_column(String(16), default=None, doc="replayed or discarded")
    resolved_by: Mapped[str | None] = mapped_column(String(128), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


async def apply_once(
    session: AsyncSession,
    inbox: type[InboxMixin],
    handler: Handler,
    envelope: Envelope,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """Apply an event in the caller's transaction unless the inbox shows it applied; False if it was."""
    if await session.get(inbox, envelope.id) is not None:
        return False
    session.add(_inbox_row(inbox, envelope, topic, partition, offset))
    await handler(session, envelope)
    return True


def _inbox_row(
    inbox: type[InboxMixin], envelope: Envelope, topic: str, partition: int, offset: int
) -> InboxMixin:
    return inbox(  # type: ignore[call-arg]
        event_id=envelope.id, event_type=envelope.type, topic=topic, partition=partition, offset=offset
    )


class EventRejected(Exception):
    """A handler's verdict that an event must not be applied (it contradicts what the service holds): set
    aside at once with `reason`, for an operator, rather than retried."""

    reason = "event_rejected"


class _PermanentFailure(Exception):
    def __init__(self, reason: str, error: str):
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: "IdempotentConsumer"):
        self._owner = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Offsets are committed after each batch, so only a batch cut short by the revocation is pending.
        # If this commit fails the new owner re-reads those records, and the inbox skips them.
        try:
            await self._owner.commit_pending()
        except Exception as exc:
            log.warning("commit_on_revoke_failed", error=repr(exc))
        self._owner.forget_lag(revoked)
        log.info("partitions_revoked", partitions=[f"{tp.topic}[{tp.partition}]" for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=[f"{tp.topic}[{tp.partition}]" for tp in assigned])


class IdempotentConsumer:
    def __init__(
        self,
        settings: ServiceSettings,
        topics: list[str],
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: type[InboxMixin],
        dead_letters: type[DeadLetterMixin],
        outbox: type[OutboxMixin],
        handlers: dict[str, Handler],
        *,
        tracer: Tracer | None = None,
        batch_locks: BatchLocks | None = None,
    ):
        unknown = set(handlers) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"handlers for unknown event types: {sorted(unknown)}")
        self._settings = settings
        self._topics = topics
        self._sessionmaker = sessionmaker
        self._inbox = inbox
        self._dead_letters = dead_letters
        self._outbox = outbox
        self._handlers = handlers
        self._tracer = tracer
        self._batch_locks = batch_locks
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._lagging: set[TopicPartition] = set()

    async def run(self) -> None:
        failures = 0
        while True:
            consumer = AIOKafkaConsumer(
                client_id=self._settings.kafka_client_id,
                group_id=self._settings.kafka_consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=int(self._settings.kafka_fetch_max_wait_s * 1000),
                **client_options(self._settings),
            )
            consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
            try:
                # Before subscribing: the embedded broker would auto-create them with its own partition count.
                await ensure_topics(self._settings, self._topics)
                await start_within(consumer, self._settings.kafka_request_timeout_s)
                self._consumer = consumer
                log.info("consumer_started", topics=self._topics, group=self._settings.kafka_consumer_group)
                failures = 0
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("consumer_failed", error=repr(exc), failures=failures)
                await asyncio.sleep(min(0.5 * 2**failures, 10.0))
            finally:
                self._consumer = None
                self._pending.clear()
                self.forget_lag(list(self._lagging))
                await stop_within(consumer, self._settings.kafka_request_timeout_s)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        measured = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=self._settings.consumer_batch_size)
            records = [record for partition in batches.values() for record in partition]
            if records:
                await self.handle_batch(records)
                for tp, partition in batches.items():
                    self._pending[tp] = partition[-1].offset + 1
            await self.commit_pending()
            # A gauge read every few seconds: measured once a second, not at every poll (up to ten a second).
            if time.monotonic() - measured >= _LAG_EVERY_S:
                measured = time.monotonic()
                await self._measure_lag(consumer)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """What is left on each assigned partition after this poll's records were handled."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:  # nothing fetched from it yet
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), 1.0)
            except (TimeoutError, IllegalStateError):  # being reset or revoked: measured next poll
                continue
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
            self._lagging.add(tp)

    def forget_lag(self, partitions: list[TopicPartition]) -> None:
        """Partitions no longer consumed here leave the lag gauge (another member reports them)."""
        for tp in partitions:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(tp.topic, str(tp.partition))
            self._lagging.discard(tp)

    async def commit_pending(self) -> None:
        if self._consumer is None or not self._pending:
            return
        offsets, self._pending = self._pending, {}
        await asyncio.wait_for(self._consumer.commit(offsets), self._settings.kafka_request_timeout_s)

    async def handle_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply records exactly once: together in one transaction (one inbox lookup, one commit), and if
        anything among them fails, one by one with `handle` (a handler's error is retried and set aside for
        that record alone). Each partition's records must come in their order; they are applied in it."""
        if len(records) > 1:
            started = time.perf_counter()
            applied = await self._apply_together(records)
            if applied is not None:
                elapsed = time.perf_counter() - started  # each waited for the whole batch's commit
                for event_type, outcome in applied:
                    EVENT_HANDLING.labels(event_type, outcome).observe(elapsed)
                return
        for record in records:
            await self.handle(record)

    async def _apply_together(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[tuple[str, Outcome]] | None:
        """Each record's event type and outcome, or None when the transaction was rolled back (nothing of it
        stays) and the records are to be handled one by one."""
        try:
            events = [(record, *self._decode(record)) for record in records]
        except _PermanentFailure:
            return None  # set aside one by one, the others applied around it
        spans: list[Span] = []
        outcomes: list[tuple[str, Outcome]] = []
        try:
            async with self._sessionmaker() as session, session.begin():
                inbox = self._inbox
                ids = {envelope.id for _, envelope, _ in events}
                seen = set(await session.scalars(select(inbox.event_id).where(inbox.event_id.in_(ids))))
                rows = []
                fresh: list[tuple[Envelope, Handler, Span]] = []
                for record, envelope, handler in events:
                    if envelope.id in seen:  # applied before, or twice in this poll
                        outcomes.append((event_type_label(envelope.type), "redelivered"))
                        continue
                    seen.add(envelope.id)
                    span = self._start_span(record)
                    spans.append(span)
                    fresh.append((envelope, handler, span))
                    rows.append(_inbox_row(inbox, envelope, record.topic, record.partition, record.offset))
                    outcomes.append((event_type_label(envelope.type), "applied"))
                if self._batch_locks is not None and len(fresh) > 1:
                    await self._batch_locks(session, [envelope for envelope, _, _ in fresh])
                await _apply_in_order(session, fresh)
                # Written together at the commit; a member that applied one meanwhile fails it on the key.
                session.add_all(rows)
        except Exception as exc:
            for span in spans:
                span.set_attribute("canbao.outcome", "retried_alone")
                span.end()
            log.info("event_batch_retried_one_by_one", size=len(records), error=mask_pii(repr(exc)))
            return None
        for span in spans:
            span.set_attribute("canbao.outcome", "applied")
            span.end()
        for (_, envelope, _), (_, outcome) in zip(events, outcomes, strict=True):
            if outcome == "redelivered":
                log.info("event_redelivered_skipped", event_id=envelope.id, type=envelope.type)
            else:
                log.info("event_applied", event_id=envelope.id, type=envelope.type, subject=envelope.subject)
        return outcomes

    def _start_span(self, record: ConsumerRecord[bytes, bytes]) -> Span:
        """The record's consumer span in the trace its event carries, not yet current (a no-op when off)."""
        if self._tracer is None:
            return trace.INVALID_SPAN
        fields = tracing.fields_of(record.value or b"")
        return self._tracer.start_span(
            f"process {record.topic}",
            context=tracing.context_of(fields),
            kind=SpanKind.CONSUMER,
            attributes=_span_attributes(record, event_type_label(fields.get("type"))),
            record_exception=False,
        )

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record exactly once, or set it aside in the dead-letter table; timed per event type, and
        traced as a consumer span in the trace the event carries."""
        started = time.perf_counter()
        fields = tracing.fields_of(record.value or b"")
        event_type = event_type_label(fields.get("type"))
        context = tracing.context_of(fields) if self._tracer is not None else None
        with tracing.span(
            self._tracer,
            f"process {record.topic}",
            SpanKind.CONSUMER,
            context,
            _span_attributes(record, event_type),
        ) as span:
            outcome = await self._handle(record)
            span.set_attribute("canbao.outcome", outcome)
            if outcome == "dead_lettered":
                span.set_status(Status(StatusCode.ERROR, "dead_lettered"))
        EVENT_HANDLING.labels(event_type, outcome).observe(time.perf_counter() - started)

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._apply(record)
            except _PermanentFailure as failure:
                await self._dead_letter(record, failure.reason, failure.error, attempts)
                return "dead_lettered"
            except Exception as exc:
                if database_unavailable(exc):
                    # Not the message's fault: wait for the database without giving up or advancing.
                    log.warning("consumer_database_unavailable", error=repr(exc))
                    attempts = 0
                    await asyncio.sleep(1.0)
                    continue
                log.warning("event_handling_failed", error=repr(exc), attempt=attempts, offset=record.offset)
                if attempts >= self._settings.consumer_max_attempts:
                    await self._dead_letter(record, "handler_failed", repr(exc), attempts)
                    return "dead_lettered"
                await asyncio.sleep(min(0.1 * 2**attempts, 5.0))

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> tuple[Envelope, Handler]:
        """The record's envelope and its handler; a permanent failure if it has neither."""
        try:
            envelope = Envelope.from_bytes(record.value or b"")
        except ValidationError as exc:
            raise _PermanentFailure("malformed_envelope", str(exc)) from exc
        handler = self._handlers.get(envelope.type)
        if handler is None:
            family = envelope.type.rpartition(".")[0]  # the type without its version suffix
            known = any(t.rpartition(".")[0] == family for t in self._handlers)
            raise _PermanentFailure("unsupported_version" if known else "unknown_event_type", envelope.type)
        return envelope, handler

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        envelope, handler = self._decode(record)
        try:
            async with self._sessionmaker() as session, session.begin():
                applied = await apply_once(
                    session, self._inbox, handler, envelope, record.topic, record.partition, record.offset
                )
                if not applied:
                    log.info("event_redelivered_skipped", event_id=envelope.id, type=envelope.type)
                    return "redelivered"
        except ValidationError as exc:
            raise _PermanentFailure("invalid_payload", str(exc)) from exc
        except EventRejected as exc:
            raise _PermanentFailure(exc.reason, str(exc)) from exc
        except IntegrityError:
            # Another member of the group applied it concurrently (a rebalance); the inbox row proves it.
            async with self._sessionmaker() as session:
                if await session.get(self._inbox, envelope.id) is not None:
                    return "redelivered"
            raise
        log.info("event_applied", event_id=envelope.id, type=envelope.type, subject=envelope.subject)
        return "applied"

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, error: str, attempts: int
    ) -> None:
        log.error(
            "event_dead_lettered",
            reason=reason,
            error=mask_pii(error),
            topic=record.topic,
            offset=record.offset,
        )
        async with self._sessionmaker() as session, session.begin():
            session.add(
                self._dead_letters(  # type: ignore[call-arg]
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key.decode(errors="replace") if record.key else None,
                    payload=record.value or b"",
                    reason=reason,
                    error=error,
                    attempts=attempts,
                )
            )
            # The same message, as received, on the topic's dead-letter topic, for tools that watch topics.
            enqueue_raw(
                session,
                self._outbox,
                dead_letter_topic(record.topic),
                f"dlq:{record.topic}:{record.partition}:{record.offset}",
                reason,
                record.key.decode(errors="replace") if record.key else "",
                record.value or b"",
            )
        DEAD_LETTERED.labels(record.topic, reason).inc()


def _span_attributes(record: ConsumerRecord[bytes, bytes], event_type: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "canbao.event_type": event_type,
    }
