"""The outbox relay (shared.outbox.OutboxRelay) on its own, with a fake broker link, on SQLite and PostgreSQL:
rows are marked published only after every acknowledgement of their round, in id order, a batch at a time;
on PostgreSQL two relays on one outbox never publish at once; a crash between acknowledgement and marking
sends the rows again, and the idempotent consumer applies them once."""

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from collection.billing.events import HANDLERS
from collection.billing.models import Bill
from collection.database import DeadLetter, InboxMessage
from collection.database import OutboxMessage as CollectionOutbox
from collection.settings import CollectionSettings
from registry.database import OutboxMessage
from registry.settings import RegistrySettings
from shared.db import create_engine
from shared.events import REGISTRY_ENROLLMENTS, Envelope
from shared.inbox import Handler, IdempotentConsumer
from shared.kafka import KafkaLink
from shared.outbox import OutboxRelay, enqueue, enqueue_raw
from tests.collection.helpers import enrollment_event
from tests.conftest import DB_PREFIX
from tests.support import consumer_record

TOPIC = "relay.test"
BATCH = 3
AN_HOUR_S = 3600.0  # the relay's own poll: these tests drive its rounds themselves
ACK_TIMEOUT_S = 0.2


class AckFailed(Exception):
    """What the broker's acknowledgement of one message raises."""


class Crash(Exception):
    """The process dies before the relay's marking transaction commits."""


@dataclass
class Sent:
    relay: str
    key: str
    payload: bytes


@dataclass
class FakeProducer:
    """Stands in for AIOKafkaProducer: records each send (in `log`, shared by several producers to see the
    order across them) and acknowledges it as the test says: at once, after `ack_delay_s()`, failing the
    `fail_at`-th send (0-based, over the producer's life), only on `release()` while `holding`, or never while
    `silent`."""

    name: str
    log: list[Sent]
    fail_at: int | None = None
    holding: bool = False
    silent: bool = False
    ack_delay_s: Callable[[], float] | None = None
    sends: int = 0
    acked: int = 0
    held: list[asyncio.Future[None]] = field(default_factory=list)
    _held_more: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[None]:
        assert topic in (TOPIC, REGISTRY_ENROLLMENTS)
        self.log.append(Sent(self.name, key.decode(), value))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        index, self.sends = self.sends, self.sends + 1
        if index == self.fail_at:
            ack.set_exception(AckFailed(f"send {index}"))
        elif self.holding:
            self.held.append(ack)
            self._held_more.set()
        elif self.ack_delay_s is not None:
            asyncio.get_running_loop().call_later(self.ack_delay_s(), self._ack, ack)
        elif not self.silent:
            self._ack(ack)
        return ack

    def _ack(self, ack: asyncio.Future[None]) -> None:
        if not ack.done():  # the relay may have given up on it (cancelled)
            ack.set_result(None)
            self.acked += 1

    async def until_held(self, count: int) -> None:
        """Until `count` acknowledgements are held back (the round's sends are done)."""
        async with asyncio.timeout(5.0):
            while len(self.held) < count:
                self._held_more.clear()
                await self._held_more.wait()

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for ack in held:
            self._ack(ack)


class FakeLink(KafkaLink):
    """A broker link whose producer is a FakeProducer; `timeout_s` (how long the relay waits for a round's
    acknowledgements) comes from the settings, as the real link's does."""

    def __init__(self, producer: FakeProducer, timeout_s: float = 5.0):
        settings = RegistrySettings(
            environment="test", database_url="sqlite+aiosqlite://", kafka_request_timeout_s=timeout_s
        )
        super().__init__(settings, [TOPIC])
        self.fake = producer

    async def producer(self) -> Any:
        return self.fake


@dataclass
class Outbox:
    """A migrated registry database seen through one engine of its own (one process); its relays."""

    backend: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    def relay(
        self, producer: FakeProducer, *, timeout_s: float = 5.0, batch_size: int = BATCH
    ) -> OutboxRelay:
        return OutboxRelay(
            self.sessionmaker,
            OutboxMessage,
            FakeLink(producer, timeout_s),
            batch_size=batch_size,
            poll_interval_s=AN_HOUR_S,
        )

    async def write(self, count: int) -> list[str]:
        """`count` messages enqueued in one transaction; their keys, in id order."""
        start = await self._count()
        keys = [f"k{n:04d}" for n in range(start, start + count)]
        async with self.sessionmaker() as session, session.begin():
            for key in keys:
                enqueue_raw(session, OutboxMessage, TOPIC, f"event-{key}", "test.v1", key, key.encode())
        return keys

    async def unpublished(self) -> list[str]:
        """Keys of the rows not marked published, in id order."""
        async with self.sessionmaker() as session:
            query = select(OutboxMessage.key).where(OutboxMessage.published_at.is_(None))
            return list(await session.scalars(query.order_by(OutboxMessage.id)))

    async def published(self) -> list[str]:
        async with self.sessionmaker() as session:
            query = select(OutboxMessage.key).where(OutboxMessage.published_at.is_not(None))
            return list(await session.scalars(query.order_by(OutboxMessage.id)))

    async def _count(self) -> int:
        async with self.sessionmaker() as session:
            return await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def _sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A Session class of the test's own: a relay listens for commits on its sessionmaker's class, and on the
    # global Session its listener would outlive the test.
    own = type("RelayTestSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=own)


@pytest.fixture
def registry_url(backend: str, fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("registry", backend, f"{DB_PREFIX}_{worker}_relay_registry")


@pytest.fixture
async def outboxes(registry_url: str, backend: str) -> AsyncIterator[Callable[[], Outbox]]:
    """`outboxes()`: another engine (another process) on the same registry database."""
    engines: list[AsyncEngine] = []

    def make() -> Outbox:
        engines.append(create_engine(registry_url))
        return Outbox(backend, engines[-1], _sessionmaker(engines[-1]))

    yield make
    for engine in engines:
        await engine.dispose()


@pytest.fixture
def outbox(outboxes: Callable[[], Outbox]) -> Outbox:
    return outboxes()


def keys(sent: list[Sent]) -> list[str]:
    return [s.key for s in sent]


async def test_a_failed_acknowledgement_marks_nothing_and_the_next_round_sends_the_whole_batch_again(
    outbox: Outbox,
) -> None:
    batch = await outbox.write(BATCH)
    log: list[Sent] = []
    relay = outbox.relay(FakeProducer("a", log, fail_at=1))  # the second message of the batch

    with pytest.raises(AckFailed):
        await relay.publish_batch()
    # The batch went to the broker whole, but one ack failed: none of it counts as published.
    assert keys(log) == batch
    assert await outbox.unpublished() == batch

    assert await relay.publish_batch() == BATCH
    assert keys(log) == batch + batch
    assert await outbox.unpublished() == []


async def test_an_acknowledgement_that_never_comes_marks_nothing(outbox: Outbox) -> None:
    batch = await outbox.write(BATCH)
    log: list[Sent] = []
    producer = FakeProducer("a", log, silent=True)
    relay = outbox.relay(producer, timeout_s=ACK_TIMEOUT_S)

    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        # A guard well past the link's timeout: the round must give up by itself.
        async with asyncio.timeout(10 * ACK_TIMEOUT_S):
            await relay.publish_batch()
    assert asyncio.get_running_loop().time() - started < 5 * ACK_TIMEOUT_S
    assert keys(log) == batch
    assert await outbox.unpublished() == batch

    producer.silent = False
    assert await relay.publish_batch() == BATCH
    assert keys(log) == batch + batch
    assert await outbox.unpublished() == []


async def test_rounds_publish_in_id_order_a_batch_at_a_time_then_the_rest_then_nothing(
    outbox: Outbox,
) -> None:
    written = await outbox.write(2 * BATCH + 1)
    if outbox.backend == "postgresql":
        # Storage order unlike id order, and read in it: an update writes the rows' new versions after the
        # others, and with statistics (autovacuum's) the planner reads so small a table whole rather than by
        # the index. Only the ORDER BY then keeps the first rows first. SQLite stores rows in id order.
        async with outbox.sessionmaker() as session, session.begin():
            touched = OutboxMessage.key.in_(written[:2])
            await session.execute(update(OutboxMessage).where(touched).values(event_type="test.v1"))
        async with outbox.engine.begin() as connection:
            await connection.execute(text("ANALYZE outbox"))
    log: list[Sent] = []
    relay = outbox.relay(FakeProducer("a", log))

    rounds = []
    for _ in range(4):
        before = len(log)
        published = await relay.publish_batch()
        rounds.append(keys(log[before:]))
        assert published == len(rounds[-1])
        # What a round sent is marked: exactly the first rows, no more and no fewer.
        assert await outbox.published() == written[: len(log)]
    assert rounds == [written[:BATCH], written[BATCH : 2 * BATCH], written[2 * BATCH :], []]
    assert await relay.publish_batch() == 0


TRIALS = 20
ROWS_PER_TRIAL = 2 * BATCH + 1


async def test_two_relays_on_postgresql_never_publish_at_once_so_rows_go_once_and_in_id_order(
    outboxes: Callable[[], Outbox], backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one relay per database (one process); the advisory lock is PostgreSQL's")
    log: list[Sent] = []
    first, second = outboxes(), outboxes()
    # Acks after 0-3 ms: rounds overlap whenever they are started together.
    jitter = random.Random(54)
    producers = [
        FakeProducer(name, log, ack_delay_s=lambda: jitter.uniform(0, 0.003)) for name in ("first", "second")
    ]
    relays = [first.relay(producers[0]), second.relay(producers[1])]

    for trial in range(TRIALS):
        written = await first.write(ROWS_PER_TRIAL)
        start = len(log)
        holder, other = (0, 1) if trial % 2 == 0 else (1, 0)

        # One relay's round is in flight (its batch sent, the acks held back) ...
        producers[holder].holding = True
        in_flight = asyncio.create_task(relays[holder].publish_batch())
        await producers[holder].until_held(BATCH)
        # ... so the other's round finds the lock taken and publishes nothing.
        assert await relays[other].publish_batch() == 0
        assert {s.relay for s in log[start:]} == {producers[holder].name}
        producers[holder].release()
        assert await in_flight == BATCH

        # Then both at once, round after round, until the outbox is empty (rounds started together; relays
        # that each go their own way are the next test's).
        for _ in range(4 * ROWS_PER_TRIAL):
            if not await first.unpublished():
                break
            await asyncio.gather(*(relay.publish_batch() for relay in relays))
        # Every row went once, and in id order across both relays.
        assert keys(log[start:]) == written, (trial, log[start:])
    assert await first.unpublished() == []
    assert {s.relay for s in log} == {"first", "second"}  # both relays did publish


ROWS_RACED = 2000


async def test_relays_going_their_own_ways_send_no_row_twice(
    outboxes: Callable[[], Outbox], backend: str
) -> None:
    """Two relays round after round as two processes' would, a row a round: a round whose read begins just
    as the other's commits must not send the other's row again. (Its snapshot predates that commit while
    its lock try follows it: without the rows' locks re-checking them, such duplicates came about once or
    more in a thousand rows here.)"""
    if backend == "sqlite":
        pytest.skip("SQLite runs one relay per database (one process); the advisory lock is PostgreSQL's")
    log: list[Sent] = []
    first, second = outboxes(), outboxes()
    written = [key for _ in range(ROWS_RACED // 500) for key in await first.write(500)]
    relays = [outbox.relay(FakeProducer(n, log), batch_size=1) for outbox, n in ((first, "a"), (second, "b"))]

    async def relaying(relay: OutboxRelay) -> None:
        while len({s.key for s in log}) < len(written):
            await relay.publish_batch()

    async with asyncio.timeout(120):
        await asyncio.gather(*(relaying(r) for r in relays))

    sent_twice = [key for key, count in Counter(keys(log)).items() if count > 1]
    assert sent_twice == []
    assert keys(log) == written  # in id order
    assert {s.relay for s in log} == {"a", "b"}


@pytest.fixture
def collection_url(backend: str, fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("collection", backend, f"{DB_PREFIX}_{worker}_relay_collection")


@pytest.fixture
async def collection(collection_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(collection_url)
    yield _sessionmaker(engine)
    await engine.dispose()


@dataclass
class Handled:
    """The collection's handlers, each call of theirs counted."""

    calls: list[str] = field(default_factory=list)

    def handlers(self) -> dict[str, Handler]:
        return {event_type: self._counted(handler) for event_type, handler in HANDLERS.items()}

    def _counted(self, handler: Handler) -> Handler:
        async def counted(session: AsyncSession, envelope: Envelope) -> None:
            self.calls.append(envelope.id)
            await handler(session, envelope)

        return counted


@contextmanager
def crashing_at_commit(engine: AsyncEngine, armed: Callable[[], bool]) -> Iterator[list[str]]:
    """The engine's first commit once `armed()` raises Crash before the database commits (the process died
    there); what crashed is listed."""
    crashes: list[str] = []

    def commit(connection: Connection) -> None:
        if armed() and not crashes:
            crashes.append("commit")
            raise Crash

    event.listen(engine.sync_engine, "commit", commit)
    try:
        yield crashes
    finally:
        event.remove(engine.sync_engine, "commit", commit)


async def test_a_crash_between_acknowledgement_and_marking_sends_again_and_the_consumer_applies_once(
    outboxes: Callable[[], Outbox], collection: async_sessionmaker[AsyncSession]
) -> None:
    crashed = outboxes()
    events = [enrollment_event() for _ in range(2)]
    async with crashed.sessionmaker() as session, session.begin():
        for envelope in events:
            enqueue(session, OutboxMessage, REGISTRY_ENROLLMENTS, envelope)
    log: list[Sent] = []
    producer = FakeProducer("crashed", log)

    # The broker acknowledged the whole round; the transaction marking it never commits.
    with (
        crashing_at_commit(crashed.engine, lambda: producer.acked == len(events)) as crashes,
        pytest.raises(Crash),
    ):
        await crashed.relay(producer).publish_batch()
    assert crashes == ["commit"]
    assert len(await crashed.unpublished()) == len(events)

    # The process restarts (a new engine and relay): the same rows go again, at least once in all.
    restarted = outboxes()
    assert await restarted.relay(FakeProducer("restarted", log)).publish_batch() == len(events)
    subjects = [envelope.subject for envelope in events]
    assert [(s.relay, s.key) for s in log] == [("crashed", k) for k in subjects] + [
        ("restarted", k) for k in subjects
    ]
    assert await restarted.unpublished() == []

    # Collection's consumer gets every delivery, the duplicates too: each event is applied once.
    handled = Handled()
    consumer = IdempotentConsumer(
        CollectionSettings(environment="test", database_url="sqlite+aiosqlite://"),
        [REGISTRY_ENROLLMENTS],
        collection,
        InboxMessage,
        DeadLetter,
        CollectionOutbox,
        handled.handlers(),
    )
    for sent in log:
        await consumer.handle(consumer_record(sent.payload, key=sent.key, topic=REGISTRY_ENROLLMENTS))
    # The handlers ran once per event (the inbox turned the duplicates away before them), so one bill each.
    assert handled.calls == [envelope.id for envelope in events]
    async with collection() as session:
        bills = list(await session.scalars(select(Bill.enrollment_id)))
        inbox = list(await session.scalars(select(InboxMessage.event_id)))
    assert sorted(bills) == sorted(subjects)
    assert sorted(inbox) == sorted(envelope.id for envelope in events)
