"""Households: registering members, and enrolling several of them in one transaction."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment import service as enrollments
from registry.enrollment.models import Enrollment, EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate, EnrollmentOut
from registry.household import repository
from registry.household.errors import (
    AlreadyInHousehold,
    DuplicateMember,
    HouseholdNeedsOneHead,
    HouseholdNotFound,
    NotAHouseholdMember,
)
from registry.household.models import Household, HouseholdMember, Relation
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdEnrollmentCreate,
    HouseholdEnrollments,
    MemberEnrollmentIn,
    MemberOut,
)
from registry.people import service as people
from registry.people.schemas import person_in
from shared.errors import DomainError
from shared.logging import mask_id_number


async def register(
    session: AsyncSession, registry: enrollments.Registry, request: HouseholdCreate
) -> Household:
    if sum(m.relation is Relation.HEAD for m in request.members) != 1:
        raise HouseholdNeedsOneHead()
    household = Household(id=str(uuid.uuid4()), created_at=registry.clock.now())
    seen: set[str] = set()
    for position, member in enumerate(request.members):
        identity = people.identify(member, registry.clock.today())
        person = await people.find_or_register(session, identity, member.name, member.phone)
        if person.id in seen:
            raise DuplicateMember({"member": position})
        seen.add(person.id)
        if await repository.membership_of(session, person.id) is not None:
            raise AlreadyInHousehold({"member": position})
        household.members.append(
            HouseholdMember(person_id=person.id, relation=member.relation, position=position, person=person)
        )
    repository.add(session, household)
    await session.flush()
    return household


async def get(session: AsyncSession, household_id: str) -> Household:
    household = await repository.get(session, household_id)
    if household is None:
        raise HouseholdNotFound({"household_id": household_id})
    return household


async def enroll_members(
    session: AsyncSession,
    registry: enrollments.Registry,
    household_id: str,
    request: HouseholdEnrollmentCreate,
) -> HouseholdEnrollments:
    """Each member goes through the same enrollment rules as one person alone; one refusal refuses all."""
    household = await get(session, household_id)
    by_person = {m.person_id: m for m in household.members}
    already = {
        e.person_id for e in await repository.members_enrollments(session, household, request.coverage_year)
    }
    wanted = request.members or [MemberEnrollmentIn(person_id=p) for p in by_person if p not in already]
    if len({w.person_id for w in wanted}) != len(wanted):
        raise DuplicateMember()
    for position, choice in enumerate(wanted):
        member = by_person.get(choice.person_id)
        if member is None:
            raise NotAHouseholdMember({"member": position, "person_id": choice.person_id})
        request_for_member = EnrollmentCreate.model_validate(
            person_in(member.person).model_dump()
            | choice.model_dump(exclude={"person_id"})
            | request.model_dump(include={"region_code", "township", "coverage_year"})
        )
        try:
            await enrollments.enroll(session, registry, request_for_member, household_id=household.id)
        except DomainError as exc:
            exc.details = {**(exc.details or {}), "member": position, "person_id": choice.person_id}
            raise
    return await summary(session, household_id, request.coverage_year)


async def summary(session: AsyncSession, household_id: str, coverage_year: int) -> HouseholdEnrollments:
    household = await get(session, household_id)
    enrolled = await repository.members_enrollments(session, household, coverage_year)
    enrolled_ids = {e.person_id for e in enrolled}
    order = {m.person_id: m.position for m in household.members}
    enrolled.sort(key=lambda e: order[e.person_id])
    return HouseholdEnrollments(
        household_id=household.id,
        coverage_year=coverage_year,
        enrollments=[EnrollmentOut.of(e) for e in enrolled],
        not_enrolled=[
            MemberOut(
                person_id=m.person_id,
                name=m.person.name,
                id_number_masked=mask_id_number(m.person.document_number),
                relation=m.relation,
            )
            for m in household.members
            if m.person_id not in enrolled_ids
        ],
        total_due=sum(_owed(e) for e in enrolled),
        total_paid=sum(e.paid_fen or 0 for e in enrolled),
    )


def _owed(enrollment: Enrollment) -> int:
    return enrollment.personal_due_fen if enrollment.status is EnrollmentStatus.PENDING_PAYMENT else 0
