from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillSubsidyLine
from collection.billing.repository import STANDING
from collection.transfers.models import SubsidyTransfer


async def owed_by_category(
    session: AsyncSession, funder: str, region_code: str, coverage_year: int
) -> list[tuple[str, int, int]]:
    """(category, people, fen) a funder owes on bills that stand, for a region and year."""
    query = (
        select(
            BillSubsidyLine.category, func.count(func.distinct(Bill.id)), func.sum(BillSubsidyLine.amount_fen)
        )
        .join(Bill, Bill.id == BillSubsidyLine.bill_id)
        .where(
            BillSubsidyLine.funder == funder,
            Bill.region_code == region_code,
            Bill.coverage_year == coverage_year,
            Bill.status.in_(STANDING),
        )
        .group_by(BillSubsidyLine.category)
        .order_by(BillSubsidyLine.category)
    )
    return [
        (category, int(people), int(fen)) for category, people, fen in (await session.execute(query)).all()
    ]


async def for_funder(
    session: AsyncSession, funder: str, region_code: str, coverage_year: int
) -> list[SubsidyTransfer]:
    query = (
        select(SubsidyTransfer)
        .where(
            SubsidyTransfer.funder == funder,
            SubsidyTransfer.region_code == region_code,
            SubsidyTransfer.coverage_year == coverage_year,
        )
        .order_by(SubsidyTransfer.received_at, SubsidyTransfer.id)
    )
    return list((await session.scalars(query)).all())


async def by_reference(session: AsyncSession, funder: str, reference: str) -> SubsidyTransfer | None:
    query = select(SubsidyTransfer).where(
        SubsidyTransfer.funder == funder, SubsidyTransfer.reference == reference
    )
    return (await session.scalars(query)).one_or_none()


async def totals_by_funder(session: AsyncSession) -> dict[str, int]:
    query = select(SubsidyTransfer.funder, func.sum(SubsidyTransfer.amount_fen)).group_by(
        SubsidyTransfer.funder
    )
    return {funder: int(total) for funder, total in (await session.execute(query)).all()}


def add(session: AsyncSession, transfer: SubsidyTransfer) -> None:
    session.add(transfer)
