"""Bills: issued once per enrollment from the registry's events."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository
from collection.billing.models import Bill, BillStatus
from shared.events import EnrollmentCreated


async def issue_for_enrollment(session: AsyncSession, enrollment: EnrollmentCreated) -> Bill:
    existing = await repository.get_by_enrollment(session, enrollment.enrollment_id)
    if existing is not None:
        # The inbox already stops a redelivered event; this covers the same enrollment sent under a new id.
        return existing
    bill = Bill(
        id=str(uuid.uuid4()),
        enrollment_id=enrollment.enrollment_id,
        id_number=enrollment.id_number,
        payer_name=enrollment.name,
        region_code=enrollment.region_code,
        coverage_year=enrollment.coverage_year,
        amount_due_fen=enrollment.personal_due_fen,
        coverage_start=enrollment.coverage_start,
        coverage_end=enrollment.coverage_end,
        status=BillStatus.OPEN,
    )
    repository.add(session, bill)
    return bill
