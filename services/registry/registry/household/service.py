"""Households: registering members, and enrolling several of them in one transaction."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment import service as enrollments
from registry.enrollment.models import Enrollment, EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate, EnrollmentOut
from registry.household import repository
from registry.household.errors import (
    AlreadyInHousehold,
    DuplicateMember,
    HouseholdNeedsOneHead,
    HouseholdNotFound,
    NoInvitation,
    NotAHouseholdMember,
)
from registry.household.models import Household, HouseholdMember, MembershipStatus, Relation
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdEnrollmentCreate,
    HouseholdEnrollments,
    MemberEnrollmentIn,
    MemberOut,
)
from registry.people import service as people
from registry.people.models import Person
from registry.people.schemas import person_in
from registry.population import repository as population
from shared.errors import DomainError


async def register(
    session: AsyncSession,
    registry: Registry,
    request: HouseholdCreate,
    *,
    claimant: people.Claimant = people.OFFICIAL,
) -> Household:
    """Register a household. Staff register what they verified; a resident registers a household they belong
    to, and each other member is only invited — unless public security's data registers both in one 户 — until
    they accept from their own account. Naming someone neither changes their record nor tells whether it
    exists: the answer is the same whatever the name."""
    if sum(m.relation is Relation.HEAD for m in request.members) != 1:
        raise HouseholdNeedsOneHead()
    today = registry.clock.today()
    identities = [people.identify(member, today) for member in request.members]
    numbers = [identity.document_number for identity in identities]
    for position, number in enumerate(numbers):
        if number in numbers[:position]:
            raise DuplicateMember({"member": position})
    found = await people.find_or_register_many(
        session,
        [(identity, m.name, m.phone) for identity, m in zip(identities, request.members, strict=True)],
        claimant=claimant,
        now=registry.clock.now(),
    )
    persons: list[Person] = []
    for position, person in enumerate(found):
        if isinstance(person, DomainError):
            person.details = {**(person.details or {}), "member": position}
            raise person
        persons.append(person)
    verified = await _verified_members(session, claimant, persons)
    household = Household(id=str(uuid.uuid4()), created_at=registry.clock.now())
    for position, (member, person) in enumerate(zip(request.members, persons, strict=True)):
        status = MembershipStatus.ACCEPTED if person.id in verified else MembershipStatus.INVITED
        if status is MembershipStatus.ACCEPTED and await repository.membership_of(session, person.id):
            raise AlreadyInHousehold({"member": position})
        invited = status is MembershipStatus.INVITED
        household.members.append(
            HouseholdMember(
                person_id=person.id,
                relation=member.relation,
                position=position,
                person=person,
                status=status,
                claimed_name=member.name if invited else None,
                invited_by=claimant.subject if invited else None,
                accepted_at=None if invited else registry.clock.now(),
            )
        )
    repository.add(session, household)
    await session.flush()
    return household


async def _verified_members(
    session: AsyncSession, claimant: people.Claimant, persons: list[Person]
) -> set[str]:
    """The members whose place in the household needs no acceptance: all, when staff register it; else the
    resident themselves and whoever public security registers in one 户 with them."""
    if claimant.official:
        return {p.id for p in persons}
    own = [p.id for p in persons if p.document_number == claimant.own_number]
    together = (
        await population.registered_together(session, own[0], [p.id for p in persons]) if own else set()
    )
    return set(own) | together


async def accept(session: AsyncSession, registry: Registry, household_id: str, own_number: str) -> Household:
    """The invited person accepts, from their own account: from now on the household may enroll, see and pay
    for them, and they the household."""
    household = await get(session, household_id)
    member = _invitation(household, own_number)
    if await repository.membership_of(session, member.person_id):
        raise AlreadyInHousehold()
    member.status, member.claimed_name, member.accepted_at = (
        MembershipStatus.ACCEPTED,
        None,
        registry.clock.now(),
    )
    await session.flush()
    return household


async def refuse(session: AsyncSession, household_id: str, own_number: str) -> None:
    """The invited person declines: the invitation is gone."""
    household = await get(session, household_id)
    household.members.remove(_invitation(household, own_number))
    await session.flush()


def _invitation(household: Household, own_number: str) -> HouseholdMember:
    for member in household.members:
        if member.person.document_number == own_number and member.status is MembershipStatus.INVITED:
            return member
    raise NoInvitation({"household_id": household.id})


async def get(session: AsyncSession, household_id: str) -> Household:
    household = await repository.get(session, household_id)
    if household is None:
        raise HouseholdNotFound({"household_id": household_id})
    return household


async def enroll_members(
    session: AsyncSession,
    registry: Registry,
    household_id: str,
    request: HouseholdEnrollmentCreate,
) -> HouseholdEnrollments:
    """Each member goes through the same enrollment rules as one person alone; one refusal refuses all."""
    household = await get(session, household_id)
    by_person = {m.person_id: m for m in household.members if m.established}
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
    order = {m.person_id: m.position for m in household.members if m.established}
    enrolled.sort(key=lambda e: order[e.person_id])
    return HouseholdEnrollments(
        household_id=household.id,
        coverage_year=coverage_year,
        enrollments=[EnrollmentOut.of(e) for e in enrolled],
        not_enrolled=[
            MemberOut.of(m) for m in household.members if m.established and m.person_id not in enrolled_ids
        ],
        total_due=sum(_owed(e) for e in enrolled),
        total_paid=sum(e.paid_fen or 0 for e in enrolled),
    )


def _owed(enrollment: Enrollment) -> int:
    return enrollment.personal_due_fen if enrollment.status is EnrollmentStatus.PENDING_PAYMENT else 0
