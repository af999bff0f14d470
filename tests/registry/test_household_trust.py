"""A household is a real household, and areas hold on every path. A resident may pay for family members, but
sees another person's details only when the relationship is established — the member accepts from their own
account, or public security's registration data puts both in one 户 — and never changes another person's
record. Staff reach only records in their regions, through households and subsidy assignments too."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from registry.people.models import Person
from shared.auth import Role, dev_token
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, enrolled, person
from tests.support import problem, resident_id

ME, STRANGER = resident_id("340104", "19800101", 31), resident_id("340104", "19850505", 32)
MY_TOKEN = dev_token(Role.RESIDENT, sub="me", id_number=ME)
STRANGER_TOKEN = dev_token(Role.RESIDENT, sub="stranger", id_number=STRANGER)


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(h: Harness, token: str, *members: dict[str, Any]) -> httpx.Response:
    return await h.client.post("/v1/households", json={"members": list(members)}, headers=as_(token))


async def stored(h: Harness, number: str) -> Person | None:
    async with h.sessionmaker() as s:
        found: Person | None = (
            await s.scalars(select(Person).where(Person.document_number == number))
        ).first()
        return found


async def test_a_stranger_named_by_a_resident_is_only_invited_and_nothing_of_theirs_shows_or_changes(
    registry: Harness,
) -> None:
    h = registry
    victim = await enrolled(h, person(STRANGER, "王真", phone="13900000001"), HEFEI)
    response = await register(
        h,
        MY_TOKEN,
        person(ME, "李我") | {"relation": "head"},
        person(STRANGER, "王假", phone="13800000000") | {"relation": "spouse"},
    )
    assert response.status_code == 201, response.text
    members = response.json()["members"]
    assert [(m["name"], m["status"]) for m in members] == [("李我", "accepted"), ("王假", "invited")]
    household_id = response.json()["household_id"]
    # The stranger's record is unchanged: name and phone (reminders would go to the attacker).
    record = await stored(h, STRANGER)
    assert record is not None
    assert (record.name, record.phone) == ("王真", "13900000001")
    # Nothing of the stranger's shows through the household, and their enrollment stays theirs.
    summary = await h.client.get(
        f"/v1/households/{household_id}/enrollments", params={"coverage_year": 2024}, headers=as_(MY_TOKEN)
    )
    assert summary.status_code == 200, summary.text
    assert victim["enrollment_id"] not in summary.text
    assert "王真" not in summary.text
    peek = await h.client.get(f"/v1/enrollments/{victim['enrollment_id']}", headers=as_(MY_TOKEN))
    assert (peek.status_code, problem(peek)["code"]) == (403, "not_your_record")
    # Nor can the household enroll them.
    stranger_id = members[1]["person_id"]
    enroll = await h.client.post(
        f"/v1/households/{household_id}/enrollments",
        json=HEFEI | {"members": [{"person_id": stranger_id}]},
        headers=as_(MY_TOKEN),
    )
    assert enroll.status_code == 422
    assert problem(enroll)["code"] == "not_a_household_member"


async def test_an_invitation_accepted_from_the_members_own_account_establishes_the_household(
    registry: Harness,
) -> None:
    h = registry
    me = person(ME, "李我") | {"relation": "head"}
    created = await register(h, MY_TOKEN, me, person(STRANGER, "王五") | {"relation": "spouse"})
    household_id = created.json()["household_id"]
    # The invited person may read the household to decide; the inviter may not accept for them.
    seen = await h.client.get(f"/v1/households/{household_id}", headers=as_(STRANGER_TOKEN))
    assert seen.status_code == 200, seen.text
    mine = await h.client.post(f"/v1/households/{household_id}/acceptance", headers=as_(MY_TOKEN))
    assert (mine.status_code, problem(mine)["code"]) == (404, "no_household_invitation")
    accepted = await h.client.post(f"/v1/households/{household_id}/acceptance", headers=as_(STRANGER_TOKEN))
    assert accepted.status_code == 200, accepted.text
    assert [m["status"] for m in accepted.json()["members"]] == ["accepted", "accepted"]
    both = await h.client.post(
        f"/v1/households/{household_id}/enrollments", json=HEFEI, headers=as_(MY_TOKEN)
    )
    assert both.status_code == 201, both.text
    assert len(both.json()["enrollments"]) == 2


async def test_public_security_data_putting_both_in_one_hu_establishes_the_member_at_once(
    registry: Harness,
) -> None:
    h = registry
    me, spouse = await stored_people(h, [(ME, "李我"), (STRANGER, "王五")])
    async with h.sessionmaker() as s, s.begin():
        for person_id in (me, spouse):
            await s.execute(
                text(
                    "INSERT INTO registered_residents (person_id, region_code, coverage_year, source, "
                    "recorded_at, household_no) "
                    "VALUES (:p, '340104', 2024, 'test', CURRENT_TIMESTAMP, 'H-001')"
                ),
                {"p": person_id},
            )
    created = await register(
        h,
        MY_TOKEN,
        person(ME, "李我") | {"relation": "head"},
        person(STRANGER, "王五") | {"relation": "spouse"},
    )
    assert [m["status"] for m in created.json()["members"]] == ["accepted", "accepted"]


async def stored_people(h: Harness, people: list[tuple[str, str]]) -> list[str]:
    """People registered by staff (as population data loads them)."""
    ids = []
    for number, name in people:
        await enrolled(h, person(number, name), HEFEI)
        record = await stored(h, number)
        assert record is not None
        ids.append(record.id)
    return ids


async def test_an_id_squatted_under_a_false_name_does_not_lock_its_owner_out(registry: Harness) -> None:
    """A resident invites an ID nobody registered yet, under a false name: the record is provisional, and the
    real person's own enrollment replaces the name (staff get a review case) instead of 409."""
    h = registry
    await register(
        h,
        MY_TOKEN,
        person(ME, "李我") | {"relation": "head"},
        person(STRANGER, "冒名") | {"relation": "child"},
    )
    own = await h.client.post(
        "/v1/enrollments", json=person(STRANGER, "王真") | HEFEI, headers=as_(STRANGER_TOKEN)
    )
    assert own.status_code == 201, own.text
    record = await stored(h, STRANGER)
    assert record is not None
    assert (record.name, record.source) == ("王真", "self")
    reviews = await h.client.get("/v1/identity-reviews", params={"state": "open"})
    assert [(r["recorded_name"], r["claimed_name"], r["recorded_by"]) for r in reviews.json()["items"]] == [
        ("冒名", "王真", "me")
    ]


@pytest.mark.parametrize("guessed", ["王真", "王假"])
async def test_naming_someone_reveals_nothing_whatever_the_name(registry: Harness, guessed: str) -> None:
    """Found: [self, X with a guessed name, self] answered 409 person_name_mismatch when the name was wrong
    and 422 duplicate_household_member when it was right. Duplicates are judged on the request alone."""
    h = registry
    await enrolled(h, person(STRANGER, "王真"), HEFEI)
    me = person(ME, "李我") | {"relation": "head"}
    twice = await register(
        h, MY_TOKEN, me, person(STRANGER, guessed) | {"relation": "spouse"}, me | {"relation": "child"}
    )
    assert (twice.status_code, problem(twice)["code"], problem(twice)["details"]) == (
        422,
        "duplicate_household_member",
        {"member": 2},
    )
    once = await register(h, MY_TOKEN, me, person(STRANGER, guessed) | {"relation": "spouse"})
    assert once.status_code == 201
    assert [m["name"] for m in once.json()["members"]] == ["李我", guessed]


async def test_staff_reach_a_household_only_if_every_member_enrolled_in_their_regions(
    registry: Harness,
) -> None:
    h = registry
    in_a, in_b = resident_id("340104"), resident_id("340102")
    await enrolled(h, person(in_a, "甲"), HEFEI)
    await enrolled(h, person(in_b, "乙"), HEFEI | {"region_code": "340102"})
    staff_a = as_(dev_token(Role.STAFF, sub="staff-a", regions=["340104"]))
    mixed = await h.client.post(
        "/v1/households",
        json={
            "members": [
                person(in_a, "甲") | {"relation": "head"},
                person(in_b, "乙") | {"relation": "spouse"},
            ]
        },
        headers=staff_a,
    )
    assert (mixed.status_code, problem(mixed)["code"]) == (403, "outside_area")


async def test_staff_cannot_reprice_an_enrollment_outside_their_area_through_an_assignment(
    registry: Harness,
) -> None:
    """Found: staff of 340104 assigned a category to a person enrolled in 340102 (region_code 340104 in the
    body): the 340102 bill dropped to 0.00."""
    h = registry
    number = resident_id("340102")
    elsewhere = await enrolled(h, person(number, "丙"), HEFEI | {"region_code": "340102"})
    staff = as_(dev_token(Role.STAFF, sub="staff-a", regions=["340104"]))
    response = await h.client.post(
        "/v1/subsidy-assignments",
        json={
            "person": person(number, "丙"),
            "region_code": "340104",
            "coverage_year": 2024,
            "category": "minimum_living",
            "evidence_ref": "低保证 1",
            "assigned_by": "staff-a",
        },
        headers=staff,
    )
    assert (response.status_code, problem(response)["code"]) == (403, "outside_area")
    after = await h.client.get(f"/v1/enrollments/{elsewhere['enrollment_id']}")
    assert (after.json()["personal_due"], after.json()["price_version"]) == ("380.00", 1)


@pytest.mark.parametrize("name", ["王\u200b真", "王\u202e真", "王\x07真", "王\u2028真"])
async def test_invisible_characters_in_a_name_are_refused(registry: Harness, name: str) -> None:
    response = await registry.client.post("/v1/enrollments", json=person(resident_id(), name) | HEFEI)
    assert response.status_code == 422, response.text


async def test_a_lowercase_x_is_the_same_person_everywhere(registry: Harness) -> None:
    number = next(n for n in (resident_id(seq=s) for s in range(100, 400)) if n.endswith("X"))
    token = dev_token(Role.RESIDENT, sub="x-person", id_number=number.lower())
    created = await registry.client.post(
        "/v1/enrollments", json=person(number.lower(), "赵六") | HEFEI, headers=as_(token)
    )
    assert created.status_code == 201, created.text
    own = await registry.client.get(f"/v1/enrollments/{created.json()['enrollment_id']}", headers=as_(token))
    assert own.status_code == 200, own.text
