"""No log line of either service carries a full ID number, a mobile number or a person's name, whatever the
error: a load against the running system with failures of every kind (refused requests, a unique-index race,
lookups by ID number and name, database errors inside requests and inside the consumers, malformed and
invalid events), then every log file is searched for what the load used."""

import asyncio
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth import Role, dev_token
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS
from tests.collection.helpers import enrollment_event
from tests.support import Stack, eventually, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

# Names no log line has a reason to contain otherwise.
NAMES = ["欧阳青松", "司马明月", "诸葛晓燕", "上官云飞", "慕容雪晴", "东方振宇", "皇甫秋实", "公孙长风"]


def person(i: int) -> dict[str, str]:
    return {
        "id_number": resident_id("340102", seq=100 + i),
        "name": NAMES[i],
        "phone": f"139{uuid.uuid4().int % 10**8:08d}",
    }


@asynccontextmanager
async def sabotaged(database_url: str, table: str) -> AsyncIterator[None]:
    """Every insert into `table` fails inside the database, with the row's values in the statement's
    parameters: what an unforeseen database error looks like to the service."""
    engine = create_async_engine(database_url)
    name = "canbao_log_test_sabotage"
    if database_url.startswith("sqlite"):
        add = [f"CREATE TRIGGER {name} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"]
        drop = [f"DROP TRIGGER {name}"]
    else:
        add = [f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (false) NOT VALID"]
        drop = [f"ALTER TABLE {table} DROP CONSTRAINT {name}"]
    try:
        async with engine.begin() as conn:
            for statement in add:
                await conn.execute(text(statement))
        yield
    finally:
        async with engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))
        await engine.dispose()


async def publish(stack: Stack, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=str(uuid.uuid4()).encode())
    finally:
        await producer.stop()


def raw_envelope(data: Any, event_type: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/canbao/test",
            "type": event_type,
            "time": datetime.now(UTC).isoformat(),
            "subject": str(uuid.uuid4()),
            "datacontenttype": "application/json",
            "data": data,
        },
        ensure_ascii=False,
    ).encode()


async def dead_letters(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/dead-letters", params={"state": "all", "limit": 500})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def forms(value: str) -> set[str]:
    """How a value can appear in a log: as it is, URL-encoded (access logs), JSON-escaped."""
    return {
        value,
        urllib.parse.quote(value),
        urllib.parse.quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


async def test_no_log_line_carries_an_id_number_a_phone_or_a_name(stack: Stack) -> None:
    people = [person(i) for i in range(len(NAMES))]
    enrolled, racing, broken_request, broken_event = people[:4], people[4], people[5], people[6]
    looked_up_wrongly = people[7]
    async with stack.client("registry") as registry, stack.client("collection") as collection:
        letters_before = (await dead_letters(registry), await dead_letters(collection))

        # Enrollments, and their bills through the broker.
        enrollment_ids = []
        for p in enrolled:
            body = {**p, "region_code": "340102", "coverage_year": 2024}
            response = await registry.post("/v1/enrollments", json=body)
            assert response.status_code == 201, response.text
            enrollment_ids.append(response.json()["enrollment_id"])

        async def billed() -> bool:
            for enrollment_id in enrollment_ids:
                got = await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})
                if not got.json()["items"]:
                    return False
            return True

        await eventually(billed, timeout_s=60)

        # Refused requests that carry personal data: invalid fields, bodies that are no JSON, no token.
        bad_bodies: list[dict[str, Any]] = [
            {**enrolled[0], "region_code": "999999", "coverage_year": 2024},
            {**enrolled[0], "region_code": "340102", "coverage_year": 1900},
            {**enrolled[0], "name": enrolled[0]["name"] * 30, "region_code": "340102", "coverage_year": 2024},
            {
                **enrolled[0],
                "phone": enrolled[0]["phone"] + "99",
                "region_code": "340102",
                "coverage_year": 2024,
            },
            {"id_number": enrolled[1]["id_number"], "name": 12345, "coverage_year": "next"},
        ]
        for bad in bad_bodies:
            assert (await registry.post("/v1/enrollments", json=bad)).status_code in (400, 404, 409, 422)
        not_json = f"{{{enrolled[2]['id_number']} {enrolled[2]['name']} {enrolled[2]['phone']}".encode()
        response = await registry.post(
            "/v1/enrollments", content=not_json, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422)
        async with httpx.AsyncClient(base_url=stack.url("registry")) as anonymous:
            response = await anonymous.post("/v1/enrollments", json={**enrolled[3], "region_code": "340102"})
            assert response.status_code == 401

        # The same new person registered by ten requests at once: the unique indexes race.
        race_body = {**racing, "region_code": "340102", "coverage_year": 2024}
        answers = await asyncio.gather(*(registry.post("/v1/enrollments", json=race_body) for _ in range(10)))
        assert {a.status_code for a in answers} <= {200, 201, 409}, [a.text for a in answers]

        # Lookups by ID number and name, as residents paying for family: found, wrong name, unknown.
        resident = dev_token(Role.RESIDENT, sub=f"payer-{uuid.uuid4().hex[:8]}")
        async with stack.client("collection", resident) as payer:
            for p in enrolled:
                found = await payer.get(
                    "/v1/bills/lookup", params={"id_number": p["id_number"], "name": p["name"]}
                )
                assert found.status_code == 200, found.text
                assert found.json()["items"]
            wrong = {"id_number": enrolled[0]["id_number"], "name": looked_up_wrongly["name"]}
            assert (await payer.get("/v1/bills/lookup", params=wrong)).status_code in (200, 429)
            unknown = {"id_number": looked_up_wrongly["id_number"], "name": looked_up_wrongly["name"]}
            assert (await payer.get("/v1/bills/lookup", params=unknown)).status_code in (200, 429)

        # A database error inside a request: the person's row cannot be written.
        async with sabotaged(stack.database_urls["registry"], "people"):
            body = {**broken_request, "region_code": "340102", "coverage_year": 2024}
            response = await registry.post("/v1/enrollments", json=body)
            assert response.status_code >= 400

        # Consumer errors. Collection: a database error applying a valid event (retried, then set aside), an
        # envelope whose data is no object, a payload that fails validation on the name's own value.
        poisoned = enrollment_event(id_number=broken_event["id_number"], name=broken_event["name"])
        named = {"id_number": broken_event["id_number"], "name": broken_event["name"]}
        async with sabotaged(stack.database_urls["collection"], "bills"):
            await publish(stack, REGISTRY_ENROLLMENTS, [poisoned.to_bytes()])
            await eventually(lambda: _more(collection, letters_before[1], 1), timeout_s=60)
        invalid = json.loads(enrollment_event().to_bytes())
        invalid["data"] |= {
            "personal_due_fen": broken_event["name"],
            "coverage_year": broken_event["id_number"],
        }
        await publish(
            stack,
            REGISTRY_ENROLLMENTS,
            [
                raw_envelope(
                    [broken_event["name"], broken_event["id_number"], broken_event["phone"]], poisoned.type
                ),
                json.dumps(invalid, ensure_ascii=False).encode(),
            ],
        )
        # Registry: a payment confirmation that is no object, and one that names a person.
        await publish(
            stack,
            COLLECTION_PAYMENTS,
            [
                raw_envelope(
                    [broken_event["name"], broken_event["id_number"]],
                    "canbao.collection.payment.confirmed.v1",
                ),
                raw_envelope(named, "canbao.collection.payment.confirmed.v1"),
            ],
        )
        await eventually(lambda: _more(collection, letters_before[1], 3), timeout_s=60)
        await eventually(lambda: _more(registry, letters_before[0], 2), timeout_s=60)

    await asyncio.sleep(1.0)  # the last lines reach the files
    logs = {path.name: path.read_text(errors="replace") for path in stack.workdir.glob("**/*.log")}
    leaks = [
        (file, p[field])
        for p in people
        for field in ("id_number", "name", "phone")
        for file, content in logs.items()
        if any(form in content for form in forms(p[field]))
    ]
    assert not leaks, leaks
    # The load left its traces: the access log (without values) and the errors.
    assert "query=id_number,name" in logs["stack.log"]
    assert "Exception in ASGI application" in logs["stack.log"] or "event_dead_lettered" in logs["stack.log"]


async def _more(client: httpx.AsyncClient, before: int, more: int) -> bool:
    return await dead_letters(client) >= before + more
