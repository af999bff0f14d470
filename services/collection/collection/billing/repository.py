from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillStatus


async def get(session: AsyncSession, bill_id: str) -> Bill | None:
    return await session.get(Bill, bill_id)


async def get_by_enrollment(session: AsyncSession, enrollment_id: str) -> Bill | None:
    return (await session.scalars(select(Bill).where(Bill.enrollment_id == enrollment_id))).one_or_none()


async def list_bills(session: AsyncSession, enrollment_id: str | None, limit: int) -> list[Bill]:
    query = select(Bill).order_by(Bill.created_at, Bill.id).limit(limit)
    if enrollment_id is not None:
        query = query.where(Bill.enrollment_id == enrollment_id)
    return list((await session.scalars(query)).all())


def add(session: AsyncSession, bill: Bill) -> None:
    session.add(bill)


async def settle_if_open(session: AsyncSession, bill: Bill, paid_at: datetime) -> bool:
    """Mark an open bill paid; False if another payment settled it first (the WHERE decides, not a read)."""
    result = await session.execute(
        update(Bill)
        .where(Bill.id == bill.id, Bill.status == BillStatus.OPEN)
        .values(status=BillStatus.PAID, paid_at=paid_at)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await session.refresh(bill)
    return True
