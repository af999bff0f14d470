"""A category given to a person while their enrollment is being written is priced in. On
PostgreSQL the enrollment's one statement locks the person's row while their category epoch is the one read
with the facts (a transaction taking their categories is waited for, and the write then finds the epoch
moved and prices again under the lock). On SQLite the epoch is compared by a read before the write that
opens the transaction: an assignment holding the write lock meanwhile is not seen, the enrollment waits for
its turn behind it and is then written at the price without the category, and the assignment, which repriced
the live enrollments it found, found none."""

import asyncio

import pytest

from registry.context import get_registry_of
from registry.people.schemas import PersonIn
from registry.subsidy.schemas import AssignmentCreate
from registry.subsidy.service import assign as assign_now
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, assign, enroll, enrollment_of, person


async def test_a_category_assigned_while_the_enrollment_waits_to_be_written_is_priced_in(
    registry: Harness,
) -> None:
    if registry.backend != "sqlite":
        pytest.skip("the harness's PostgreSQL sessions share one connection: no second writer to wait for")
    who = person(name="王芳")
    # On record, holding no category for the year, not enrolled.
    given = await assign(registry, who, HEFEI, "poverty_monitoring")
    assert given.status_code == 201, given.text
    removed = await registry.client.post(
        f"/v1/subsidy-assignments/{given.json()['assignment_id']}/removal",
        json={"removed_by": "s", "reason": "r"},
    )
    assert removed.status_code == 200, removed.text
    # What someone holding the category pays.
    holder = person(name="李四")
    assert (await assign(registry, holder, HEFEI, "minimum_living")).status_code == 201
    subsidised = (await enroll(registry, holder, HEFEI)).json()["personal_due"]
    full_price = (await enroll(registry, person(name="赵六"), HEFEI)).json()["personal_due"]
    assert subsidised != full_price

    async with registry.sessionmaker() as staff:
        # A staff member's assignment, written and not yet committed.
        await assign_now(
            staff,
            get_registry_of(registry.app),
            AssignmentCreate(
                person=PersonIn(**who),
                category="minimum_living",
                evidence_ref="民发〔2023〕1号",
                assigned_by="staff-01",
                **HEFEI,
            ),
        )
        await staff.flush()
        enrolling = asyncio.create_task(enroll(registry, who, HEFEI))
        await asyncio.sleep(0.5)
        assert not enrolling.done()  # waiting to write
        await staff.commit()
    response = await enrolling
    assert response.status_code == 201, response.text

    enrollment = await enrollment_of(registry, who, HEFEI)
    assert enrollment["personal_due"] == subsidised, enrollment
