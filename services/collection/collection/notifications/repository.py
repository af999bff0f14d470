from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from collection.notifications.models import NotificationRejection


async def rejection_of(
    session: AsyncSession, channel: str, transaction_id: str
) -> NotificationRejection | None:
    query = select(NotificationRejection).where(
        NotificationRejection.channel == channel, NotificationRejection.transaction_id == transaction_id
    )
    return (await session.scalars(query.with_for_update())).one_or_none()


async def settle_rejection(session: AsyncSession, channel: str, transaction_id: str, payment_id: str) -> None:
    """The rejection kept of this notification, if any, points at the payment that took its money after all
    (one statement: most notifications were never refused)."""
    rejection = NotificationRejection
    await session.execute(
        update(rejection)
        .where(rejection.channel == channel, rejection.transaction_id == transaction_id)
        .values(payment_id=payment_id)
        .execution_options(synchronize_session="evaluate")
    )


def add(session: AsyncSession, rejection: NotificationRejection) -> None:
    session.add(rejection)


async def rejections(session: AsyncSession, *, open_only: bool, limit: int) -> list[NotificationRejection]:
    query = select(NotificationRejection).order_by(NotificationRejection.received_at.desc()).limit(limit)
    if open_only:
        query = query.where(NotificationRejection.payment_id.is_(None))
    return list((await session.scalars(query)).all())
