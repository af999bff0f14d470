"""Who may see or act on which of the registry's records: shared.auth's area rules applied to people,
enrollments and households. Residents reach their own records and their household's; staff reach records
in their region codes. Each check also notes the person for the audit trail."""

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import Enrollment
from registry.household import repository as households
from registry.household.models import Household
from shared.auth import Access, OutsideArea


def new_record(access: Access, id_number: str, region_code: str) -> None:
    """Registering or enrolling a person: a resident only themselves; staff only in their regions."""
    if access.is_resident:
        access.require_own(id_number.strip().upper())
    else:
        access.require_region(region_code)
    access.touch(id_number.strip().upper(), "person")


async def new_household(session: AsyncSession, access: Access, numbers: list[str]) -> None:
    """A resident registers a household they belong to; staff one whose members enrolled, if ever, in their
    regions (as for reading one)."""
    access.require_own(*numbers)
    if (regions := access.regions_filter()) is not None:
        enrolled_in = await households.enrollment_regions_of_numbers(session, numbers)
        if enrolled_in and not enrolled_in & regions:
            raise OutsideArea()
    for number in numbers:
        access.touch(number, "household")


async def enrollment(session: AsyncSession, access: Access, record: Enrollment) -> None:
    number = record.person.document_number
    if access.is_resident:
        household = await households.get(session, record.household_id) if record.household_id else None
        members = [m.person.document_number for m in household.members] if household else []
        access.require_own(number, *members)
    else:
        access.require_region(record.region_code)
    access.touch(number, f"enrollment:{record.id}")


async def household(session: AsyncSession, access: Access, record: Household) -> None:
    """Staff reach a household whose members enrolled in their regions, or one with no enrollment yet
    (just registered, as at a service counter)."""
    numbers = [m.person.document_number for m in record.members]
    if access.is_resident:
        access.require_own(*numbers)
    elif (regions := access.regions_filter()) is not None:
        enrolled_in = await households.enrollment_regions(session, record)
        if enrolled_in and not enrolled_in & regions:
            raise OutsideArea({"household_id": record.id})
    for number in numbers:
        access.touch(number, f"household:{record.id}")
