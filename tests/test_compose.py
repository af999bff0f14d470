"""docker-compose.yml is valid against the Compose specification's JSON Schema (no Docker engine here)."""

import json
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
    assert {"postgres", "kafka", "migrate", "registry", "collection"} <= set(services)
    assert (
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    )  # KRaft, no ZooKeeper
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
