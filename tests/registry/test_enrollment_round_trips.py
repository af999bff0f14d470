"""`POST /v1/enrollments` in one round trip on PostgreSQL for the usual case (issue 19): someone new, or on
record as the request names them with no category and no enrollment for the year, is enrolled by the one
statement that reads the facts, with their event and audit row; anything else is decided on those facts as
before, with every refusal. What is written stays the same on both databases."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from itertools import count
from typing import Any, NamedTuple

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from registry.database import AuditEvent
from registry.main import create_app
from registry.people.models import Person
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.db import create_sessionmaker
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, HEFEI_WINDOW, assign, enroll, enrolled, person, row_counts
from tests.registry.test_account_races import ADMIN, client
from tests.registry.test_eligibility_and_exclusions import exclude
from tests.support import (
    all_statements,
    eventually,
    held,
    migrate,
    problem,
    recreate_pg_database,
    resident_id,
)


async def audit_rows(h: Harness) -> int:
    async with h.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def cancelled(h: Harness, enrollment: dict[str, Any]) -> None:
    """An unpaid enrollment ended: its person may enroll again for the year."""
    response = await h.client.post(
        f"/v1/enrollments/{enrollment['enrollment_id']}/cancellation",
        json={"reason": "death", "evidence_ref": "死亡证明 NO.0099", "reported_by": "staff-07"},
    )
    assert response.status_code == 200, response.text


async def enrolled_counting(h: Harness, who: dict[str, Any]) -> tuple[Any, list[str]]:
    """The response and every statement the request sent."""
    with all_statements() as sent:
        response = await enroll(h, who, HEFEI)
    return response, sent


async def test_someone_new_is_enrolled_with_one_statement(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    await enroll(registry, person(), HEFEI)  # the connection has the statement prepared, as in service
    before, audited = await row_counts(registry), await audit_rows(registry)

    response, sent = await enrolled_counting(registry, person())

    assert response.status_code == 201, response.text
    if registry.backend == "postgresql":
        assert len(sent) == 1, sent
    assert await row_counts(registry) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert await audit_rows(registry) == audited + 1


async def test_someone_on_record_as_named_is_enrolled_with_one_statement(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    who = person()
    await cancelled(registry, (await enroll(registry, who, HEFEI)).json())
    before, audited = await row_counts(registry), await audit_rows(registry)

    response, sent = await enrolled_counting(registry, who)

    assert response.status_code == 201, response.text
    if registry.backend == "postgresql":
        assert len(sent) == 1, sent
    assert await row_counts(registry) == (before[0], before[1] + 1, before[2] + 1)
    assert await audit_rows(registry) == audited + 1


async def test_what_the_facts_say_otherwise_is_decided_on_them(registry: Harness) -> None:
    """A category held, already enrolled, named otherwise than recorded: the first statement writes nothing
    and the request is decided on what it read, as before."""
    registry.at(HEFEI_WINDOW)
    holder, enrolled, recorded = person(), person(), person()
    assert (await assign(registry, holder, HEFEI, "minimum_living")).status_code == 201
    await enroll(registry, enrolled, HEFEI)
    await cancelled(registry, (await enroll(registry, recorded, HEFEI)).json())
    plain = (await enroll(registry, person(), HEFEI)).json()

    subsidised, sent = await enrolled_counting(registry, holder)
    again, _ = await enrolled_counting(registry, enrolled)
    renamed, _ = await enrolled_counting(registry, recorded | {"name": "李四"})

    assert subsidised.status_code == 201, subsidised.text
    assert [line["category"] for line in subsidised.json()["subsidy_lines"]] == ["minimum_living"]
    assert subsidised.json()["personal_due"] < plain["personal_due"]
    if registry.backend == "postgresql":
        assert len(sent) == 2, sent  # the facts with nothing written, then the write on them
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_enrolled")
    assert (renamed.status_code, renamed.json()["error"]["code"]) == (409, "person_name_mismatch")


_adults = count(1)


def adult() -> str:
    """An ID number of someone whose enrollment is priced as a plain one's (the same age), each another."""
    return resident_id(birth="19800101", seq=next(_adults))


def as_resident(number: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_token(Role.RESIDENT, sub=number, id_number=number)}"}


async def another_phone(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    who = person(adult(), phone="13900000001")
    await cancelled(h, (await enrolled(h, who, HEFEI)))
    return who | {"phone": "13900000002"}, {}


async def invited(h: Harness, name: str) -> str:
    """The number of someone put on record provisionally: invited to a household by another resident."""
    inviter, number = adult(), adult()
    response = await h.client.post(
        "/v1/households",
        json={
            "members": [person(inviter) | {"relation": "head"}, person(number, name) | {"relation": "spouse"}]
        },
        headers=as_resident(inviter),
    )
    assert response.status_code == 201, response.text
    return number


async def provisional_named_by_staff(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    return person(await invited(h, "王五"), "王五"), {}


async def provisional_claimed_by_themselves(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    number = await invited(h, "王五")
    return person(number, "王五"), as_resident(number)


async def excluded(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    who = person(adult())
    assert (await exclude(h, who, "employee_insurance")).status_code == 201
    return who, {}


async def excluded_on_record(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    who = person(adult())
    await cancelled(h, await enrolled(h, who, HEFEI))
    assert (await exclude(h, who, "enrolled_elsewhere")).status_code == 201
    return who, {}


async def claimed_by_another_resident(h: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    who = person(adult())
    await cancelled(h, await enrolled(h, who, HEFEI))
    return who, as_resident(adult())


Arrange = Callable[[Harness], Awaitable[tuple[dict[str, Any], dict[str, str]]]]


class OldAnswer(NamedTuple):
    """What the old path (SQLite always takes it) answers a request `arrange` makes ready (its body and
    headers): the status, the error code of a refusal, and the person's record after (name, source, phone),
    which the old path corrects where the naming says more than the record."""

    arrange: Arrange
    status: int
    code: str | None
    record: tuple[str, str, str | None] | None


OLD_ANSWERS = {
    "another phone than recorded": OldAnswer(another_phone, 201, None, ("张三", "official", "13900000002")),
    "a provisional record, named by staff": OldAnswer(
        provisional_named_by_staff, 201, None, ("王五", "official", None)
    ),
    "a provisional record, claimed by the person": OldAnswer(
        provisional_claimed_by_themselves, 201, None, ("王五", "self", None)
    ),
    "excluded": OldAnswer(excluded, 409, "in_employee_insurance", None),
    "excluded, enrolled before": OldAnswer(
        excluded_on_record, 409, "enrolled_elsewhere", ("张三", "official", None)
    ),
    # Refused before the service: a resident enrolls only themselves (access.new_record).
    "another resident as claimant": OldAnswer(
        claimed_by_another_resident, 403, "not_your_record", ("张三", "official", None)
    ),
}


async def recorded(h: Harness, number: str) -> tuple[str, str, str | None] | None:
    async with h.sessionmaker() as s:
        query = select(Person.name, Person.source, Person.phone).where(Person.document_number == number)
        found = (await s.execute(query)).first()
    return None if found is None else (found.name, found.source.value, found.phone)


@pytest.mark.parametrize("case", list(OLD_ANSWERS))
async def test_the_one_statement_writes_only_what_the_old_path_would(registry: Harness, case: str) -> None:
    """Facts the one statement's conditions must match to the rule it copies (people.named_as_recorded, the
    exclusions): it writes nothing, and the request gets the old path's answer, enrollment and record."""
    registry.at(HEFEI_WINDOW)
    plain = await enrolled(registry, person(adult()), HEFEI)
    arrange, status, code, record = OLD_ANSWERS[case]
    who, headers = await arrange(registry)
    before, audited = await row_counts(registry), await audit_rows(registry)

    with all_statements() as sent:
        response = await registry.client.post("/v1/enrollments", json=who | HEFEI, headers=headers)

    assert response.status_code == status, response.text
    if code is not None:
        assert problem(response)["code"] == code
        assert await row_counts(registry) == before
        assert await audit_rows(registry) == audited
    else:
        body = response.json()
        assert (body["personal_due"], body["subsidy_lines"]) == (plain["personal_due"], [])
        assert await row_counts(registry) == (before[0], before[1] + 1, before[2] + 1)
        assert await audit_rows(registry) == audited + 1
    if registry.backend == "postgresql" and status == 201:
        # The one statement ran and wrote nothing: the old path's write came after it.
        (first,) = [i for i, statement in enumerate(sent) if "known_person" in statement]
        assert any("INSERT INTO enrollments" in statement for statement in sent[first + 1 :]), sent
    assert await recorded(registry, who["id_number"]) == record


@pytest.fixture(scope="module")
async def own_database(worker: str) -> AsyncIterator[tuple[FastAPI, str]]:
    """The registry on a PostgreSQL database of its own, every request its own connection and transaction
    (the shared harness runs each test inside one connection), and the database's URL."""
    url = await asyncio.to_thread(recreate_pg_database, f"enrollment_round_trips_{worker}_registry")
    await asyncio.to_thread(migrate, "registry", url)
    app = create_app(RegistrySettings(environment="test", database_url=url))
    engine = create_async_engine(url, pool_size=4, max_overflow=0)
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    app.state.clock.set(datetime.fromisoformat(HEFEI_WINDOW))
    yield app, url
    await engine.dispose()


async def waiting_for_a_lock(url: str) -> None:
    """Until a statement on the database waits for a lock."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            await eventually(lambda: connection.scalar(waiting), timeout_s=10)
    finally:
        await engine.dispose()


# Another transaction assigning the person a category: their categories taken (the epoch moved, the row
# locked) and an assignment in force (the one removed before, back).
_ASSIGNING = """
WITH taken AS (
    UPDATE people SET category_epoch = coalesce(category_epoch, 0) + 1 WHERE document_number = :number
    RETURNING id
)
UPDATE subsidy_assignments s SET removed_at = NULL, removed_by = NULL FROM taken WHERE s.person_id = taken.id
"""


async def test_a_category_assigned_after_the_statements_snapshot_is_priced_in(
    own_database: tuple[FastAPI, str],
) -> None:
    """The facts are read with the statement's snapshot, the person locked after: a category assigned between
    the two (committed while the statement waits for the lock) leaves the statement nothing to write, and the
    old path prices the enrollment with it."""
    app, url = own_database
    async with client(app, "127.0.0.1", **ADMIN) as staff:
        who = person(adult())
        first = await staff.post("/v1/enrollments", json=who | HEFEI)
        cancelling = {"reason": "death", "evidence_ref": "死亡证明 NO.0099", "reported_by": "staff-07"}
        ended = await staff.post(
            f"/v1/enrollments/{first.json()['enrollment_id']}/cancellation", json=cancelling
        )
        assert ended.status_code == 200, ended.text
        assigned = await staff.post(
            "/v1/subsidy-assignments",
            json={
                "person": who,
                "category": "minimum_living",
                "evidence_ref": "民发〔2023〕1号",
                "assigned_by": "s1",
            }
            | HEFEI,
        )
        assert assigned.status_code == 201, assigned.text
        removal = {"removed_by": "s1", "reason": "复核不符"}
        removed = await staff.post(
            f"/v1/subsidy-assignments/{assigned.json()['assignment_id']}/removal", json=removal
        )
        assert removed.status_code == 200, removed.text

        async with held(url, _ASSIGNING, number=who["id_number"]):
            enrolling = asyncio.create_task(staff.post("/v1/enrollments", json=who | HEFEI))
            await waiting_for_a_lock(url)
        response = await enrolling

    assert response.status_code == 201, response.text
    assert [line["category"] for line in response.json()["subsidy_lines"]] == ["minimum_living"]
    assert response.json()["personal_due"] != first.json()["personal_due"]
