"""Bills, as requests see them: someone's bills for paying on their behalf, and where bills stand for the
cross-service check. Bills are issued and kept at the registry's price by its events (`billing.events`)."""

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository
from collection.billing.errors import TooManyLookups
from collection.billing.models import Bill, BillStatus
from collection.billing.watch import BillWatch
from collection.payments.models import PaymentItem
from shared.crosscheck import EnrollmentStanding, Standing, StandingReader
from shared.db import release

LOOKUP_LIMIT = 20


async def wait_for_bills(
    session: AsyncSession,
    watch: BillWatch,
    read: Callable[[], Awaitable[list[Bill]]],
    enrollment_id: str,
    *,
    wait_s: float,
    caller: str,
) -> list[Bill]:
    """The enrollment's bills as soon as it has one, or none after `wait_s` seconds. Read again (`read`
    checks who may see them) at each wake-up; no connection is held while waiting."""
    bills = await read()
    deadline = time.monotonic() + wait_s
    while not bills:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await release(session)
        if not await watch.wait(enrollment_id, None, remaining, caller=caller):
            return await read()  # the place was given to another caller: as they stand now
        bills = await read()
    return bills


async def lookup(
    session: AsyncSession,
    subject: str,
    id_number: str,
    name: str,
    now: datetime,
    *,
    allowed_failures: int,
    window: timedelta,
) -> list[Bill]:
    """Someone's bills, for paying on their behalf (代缴): found only by ID number and name together, and a
    caller whose lookups keep matching nothing is refused for a while (no way to enumerate people)."""
    if await repository.failed_lookups_since(session, subject, now - window) >= allowed_failures:
        retry_after = str(int(window.total_seconds()))
        raise TooManyLookups({"retry_after_s": int(retry_after)}, headers={"Retry-After": retry_after})
    found = [
        b
        for b in await repository.for_person(session, id_number.strip().upper(), LOOKUP_LIMIT)
        if b.payer_name == name.strip()
    ]
    if not found:
        repository.add_failed_lookup(session, subject, now)
    return found


# Bill statuses in the cross-service check's vocabulary.
_STANDING = {
    BillStatus.OPEN: Standing.OPEN,
    BillStatus.PAID: Standing.PAID,
    BillStatus.CANCELLED: Standing.CLOSED_UNPAID,
    BillStatus.REFUNDED: Standing.REFUNDED,
}


def _standing(row: tuple[Bill, PaymentItem | None]) -> EnrollmentStanding:
    bill, item = row
    return EnrollmentStanding(
        enrollment_id=bill.enrollment_id,
        standing=_STANDING[bill.status],
        amount_due=bill.amount_due_fen,
        price_version=bill.price_version,
        payment_id=item.payment_id if item else None,
        paid=item.amount_fen if item else 0,
        refunded=bill.refunded_fen,
    )


# The check's pages (核对, the repair job) over collection's bills, each with the payment item that settled
# it; enrollments without a bill are left out.
_READER = StandingReader(
    of_region_year=repository.of_region_year,
    changed_since=repository.changed_since,
    of_enrollments=repository.of_enrollments,
    standing=_standing,
    changed_at=lambda row: row[0].updated_at,
)
standings = _READER.standings
changes = _READER.changes
standings_of = _READER.standings_of
