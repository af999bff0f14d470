"""`POST /v1/enrollments` in one round trip on PostgreSQL for the usual case (issue 19): someone new, or on
record as the request names them with no category and no enrollment for the year, is enrolled by the one
statement that reads the facts, with their event and audit row; anything else is decided on those facts as
before, with every refusal. What is written stays the same on both databases."""

from typing import Any

from sqlalchemy import func, select

from registry.database import AuditEvent
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, HEFEI_WINDOW, assign, enroll, person, row_counts
from tests.support import all_statements


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
