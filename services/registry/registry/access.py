"""Who may see or act on which of the registry's records: shared.auth's area rules applied to people,
enrollments and households. Residents reach their own records and their household's; staff reach records
in their region codes. Each check also notes the person for the audit trail."""

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import Enrollment
from registry.household import repository as households
from registry.household.models import Household
from registry.people import service as people
from registry.screening import repository as screening_cases
from shared.auth import Access, NotYourRecord, OutsideArea


def new_record(access: Access, id_number: str, region_code: str) -> None:
    """Registering or enrolling a person: a resident only themselves; staff only in their regions."""
    if access.is_resident:
        access.require_own(id_number.strip().upper())
    else:
        access.require_region(region_code)
    access.touch(id_number.strip().upper(), "person")


def claimant(access: Access, *, region_code: str | None = None) -> people.Claimant:
    """Who names the people of this request: a resident names themselves by their verified identity and
    others only provisionally; staff and departments are official."""
    if access.is_resident:
        own = access.principal.id_number  # tokens carry it stripped and upper-cased
        return people.Claimant(access.principal.subject, own, official=False, region_code=region_code)
    return people.Claimant(access.principal.subject, region_code=region_code)


async def new_household(session: AsyncSession, access: Access, numbers: list[str]) -> None:
    """A resident registers a household they belong to; staff one whose members enrolled, if ever, only in
    their regions (as for reading one)."""
    access.require_own(*numbers)
    if (regions := access.regions_filter()) is not None:
        outside = await households.enrollment_regions_of_numbers(session, numbers) - regions
        if outside:
            raise OutsideArea()
    for number in numbers:
        access.touch(number, "household")


async def enrollment(session: AsyncSession, access: Access, record: Enrollment) -> None:
    number = record.person.document_number
    if access.is_resident:
        # A household's records are shared only among members whose place in it is established.
        household = await households.get(session, record.household_id) if record.household_id else None
        members = [m.person.document_number for m in household.members if m.established] if household else []
        access.require_own(number, *(members if _established_member(access, household) else []))
    else:
        access.require_region(record.region_code)
    access.touch(number, f"enrollment:{record.id}")


def _established_member(access: Access, household: Household | None) -> bool:
    own = access.principal.id_number
    return household is not None and any(
        m.established and m.person.document_number == own for m in household.members
    )


async def household(
    session: AsyncSession, access: Access, record: Household, *, established: bool = True
) -> None:
    """Residents reach a household they are an established member of (an invited one may read it, to decide);
    staff one whose members enrolled, if ever, only in their regions (or none yet: just registered, as at a
    service counter)."""
    numbers = [m.person.document_number for m in record.members]
    if access.is_resident:
        access.require_own(*numbers)
        if established and not _established_member(access, record):
            raise NotYourRecord({"household_id": record.id, "reason": "invitation_not_accepted"})
    elif (regions := access.regions_filter()) is not None and (
        await households.enrollment_regions(session, record) - regions
    ):
        raise OutsideArea({"household_id": record.id})
    for number in numbers:
        access.touch(number, f"household:{record.id}")


async def screening_case(session: AsyncSession, access: Access, case_id: int) -> None:
    """A screening case is its region's staff's; a missing one is left for the service to report."""
    case = await screening_cases.get(session, case_id)
    if case is not None:
        access.require_region(case.region_code)
        access.touch(case.person.document_number, f"screening-case:{case.id}")
