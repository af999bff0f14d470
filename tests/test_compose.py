"""docker-compose.yml is valid against the Compose specification's JSON Schema (no Docker engine here)."""

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import ROOT

# `make install` downloads the docker-compose 1.29.2 wheel from PyPI only for the schema file it carries
# (compose/config/compose_spec.json, draft 2019-09).
WHEELS = ROOT / ".venv" / "wheels"


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    wheels = sorted(WHEELS.glob("docker_compose-*.whl"))
    assert wheels, f"no docker-compose wheel in {WHEELS}: run `make install`"
    with zipfile.ZipFile(wheels[-1]) as wheel:
        schema: dict[str, Any] = json.loads(wheel.read("compose/config/compose_spec.json"))
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


KAFKA = ROOT / "deploy" / "kafka"
KAFKA_CONFIG = (KAFKA / "server.properties").read_text()
TOPICS = {"registry": "registry.enrollments.v1", "collection": "collection.payments.v1"}


def test_compose_file_follows_the_specification(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    jsonschema.Draft201909Validator(compose_schema).validate(compose)


def test_the_schema_check_catches_a_broken_file(
    compose_schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["registry"]["depends_on"]["migrate"]["condition"] = "whenever"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(compose_schema).validate(broken)


def test_compose_runs_the_production_shape(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "kafka", "kafka-setup", "migrate", "registry", "collection", "repair"} <= set(
        services
    )
    assert "process.roles=broker,controller" in KAFKA_CONFIG  # KRaft, no ZooKeeper
    for name in ("registry", "collection"):
        assert services[name]["deploy"]["replicas"] >= 2
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = services[name]["environment"]
        assert env[f"{name.upper()}_ENVIRONMENT"] == "production"
        assert env[f"{name.upper()}_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert f"{name.upper()}_AUTH_KEYS" in env  # production refuses the development token key
    assert Path(ROOT / services["migrate"]["build"]["dockerfile"]).is_file()
    # Replicas share the uploaded rosters: either one's worker may process an upload.
    assert services["registry"]["volumes"] == ["rosters:/var/lib/canbao/rosters"]
    assert services["registry"]["environment"]["REGISTRY_ROSTER_DIR"] == "/var/lib/canbao/rosters"


def acls() -> list[tuple[str, set[str], str, str]]:
    rows = []
    for line in (KAFKA / "acls.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            principal, operations, resource, name = line.split()
            rows.append((principal, set(operations.split(",")), resource, name))
    return rows


def test_the_broker_authenticates_clients_and_each_service_writes_only_its_own_topic(
    compose: dict[str, Any],
) -> None:
    """Found: a hand-made payment.confirmed on collection.payments.v1 activated an enrollment. Production
    Kafka authenticates every client (SASL/SCRAM-SHA-512) and authorises every topic by ACL."""
    assert "allow.everyone.if.no.acl.found=false" in KAFKA_CONFIG
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in KAFKA_CONFIG
    assert "PLAINTEXT://" not in KAFKA_CONFIG.replace("SASL_PLAINTEXT://", "")  # no unauthenticated listener
    writers = {
        (name, principal) for principal, ops, kind, name in acls() if kind == "topic" and "Write" in ops
    }
    for owner, topic in TOPICS.items():
        assert {p for t, p in writers if t == topic} == {owner}
    services = compose["services"]
    for name in TOPICS:
        env = services[name]["environment"]
        prefix = name.upper()
        assert env[f"{prefix}_KAFKA_SECURITY_PROTOCOL"].startswith("SASL")
        assert env[f"{prefix}_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env[f"{prefix}_KAFKA_SASL_USERNAME"] == name
        # Each service holds only its own Kafka password: the other's would let it write the other's topic.
        other = next(o for o in TOPICS if o != name).upper()
        assert not [key for key in env if key.startswith(f"{other}_")]
    for script in ("start.sh", "setup.sh", "health.sh", "admin-client.sh"):
        assert subprocess.run(["bash", "-n", str(KAFKA / script)], check=False).returncode == 0, script


def test_the_repair_job_runs_in_production(compose: dict[str, Any]) -> None:
    repair = compose["services"]["repair"]
    assert repair["command"] == ["python", "-m", "canbao", "repair"]
    assert repair["environment"]["CANBAO_REGISTRY_URL"] == "http://registry:8001"
    assert "CANBAO_TOKEN" in repair["environment"]
