"""Kafka connection kit: start/stop with time limits, explicit topic creation, a reconnecting producer."""

import asyncio
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context

from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

_TOPIC_ALREADY_EXISTS = 36


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached within the configured time."""


class _Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def start_within(client: _Startable, timeout_s: float) -> None:
    """Start an aiokafka client; raise KafkaUnavailable if it fails or hangs, leaving nothing open."""
    try:
        await asyncio.wait_for(client.start(), timeout_s)
    except Exception as exc:  # aiokafka raises several unrelated types when the broker is away
        await stop_within(client, timeout_s)
        raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc


async def stop_within(client: _Startable, timeout_s: float) -> None:
    # stop() can hang when the broker is gone; never let shutdown wait forever on it.
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
    except Exception as exc:
        log.warning("kafka_stop_failed", client=type(client).__name__, error=repr(exc))


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Security options every aiokafka client of the service takes (producer, consumer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": int(settings.kafka_request_timeout_s * 1000),
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    return options


async def ensure_topics(settings: ServiceSettings, topics: list[str]) -> None:
    """Create topics with the configured partition count; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(client_id=f"{settings.kafka_client_id}-admin", **client_options(settings))
    try:
        await asyncio.wait_for(admin.start(), settings.kafka_request_timeout_s)
        response: Any = await asyncio.wait_for(
            admin.create_topics(
                [
                    NewTopic(t, settings.kafka_topic_partitions, settings.kafka_replication_factor)
                    for t in topics
                ]
            ),
            settings.kafka_request_timeout_s,
        )
    except Exception as exc:
        raise KafkaUnavailable(f"create_topics failed: {exc!r}") from exc
    finally:
        try:
            await asyncio.wait_for(admin.close(), settings.kafka_request_timeout_s)
        except Exception as exc:
            log.warning("kafka_admin_close_failed", error=repr(exc))
    for topic, code, message in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise KafkaUnavailable(f"cannot create topic {topic}: {code} {message}")


class KafkaLink:
    """One producer per process, (re)started on demand so a service runs while the broker is away."""

    def __init__(self, settings: ServiceSettings, topics: list[str]):
        self._settings = settings
        self._topics = topics
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def timeout_s(self) -> float:
        return self._settings.kafka_request_timeout_s

    async def producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                await ensure_topics(self._settings, self._topics)
                producer = AIOKafkaProducer(
                    client_id=self._settings.kafka_client_id,
                    acks="all",
                    # The embedded broker has no InitProducerId; the outbox/inbox pair gives effectively-once.
                    enable_idempotence=False,
                    linger_ms=round(self._settings.kafka_linger_s * 1000),
                    **client_options(self._settings),
                )
                await start_within(producer, self.timeout_s)
                self._producer = producer
                log.info("kafka_producer_started", bootstrap=self._settings.kafka_bootstrap_servers)
            return self._producer

    async def reset(self) -> None:
        """Drop the producer after a failure; the next call to producer() reconnects."""
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await stop_within(producer, self.timeout_s)

    async def is_reachable(self) -> bool:
        try:
            producer = await self.producer()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.timeout_s)
        except Exception as exc:
            log.warning("kafka_unreachable", error=repr(exc))
            await self.reset()
            return False
        return True

    async def close(self) -> None:
        await self.reset()
