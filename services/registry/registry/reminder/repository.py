from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.reminder.models import Reminder, ReminderStatus, ReminderThrottle


async def throttles(session: AsyncSession, person_ids: Sequence[str]) -> dict[str, ReminderThrottle]:
    """The people's throttle rows, locked until the transaction ends (SQLite writes one at a time)."""
    if not person_ids:
        return {}
    query = (
        select(ReminderThrottle)
        .where(ReminderThrottle.person_id.in_(sorted(set(person_ids))))
        .order_by(ReminderThrottle.person_id)
        .with_for_update()
    )
    return {t.person_id: t for t in (await session.scalars(query)).all()}


async def due(session: AsyncSession, now: datetime, limit: int) -> list[Reminder]:
    """Queued reminders whose time has come, skipping any another dispatcher holds."""
    query = (
        select(Reminder)
        .where(Reminder.status == ReminderStatus.QUEUED, Reminder.next_attempt_at <= now)
        .order_by(Reminder.next_attempt_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def of_case(session: AsyncSession, case_id: int) -> list[Reminder]:
    query = select(Reminder).where(Reminder.case_id == case_id).order_by(Reminder.queued_at, Reminder.id)
    return list((await session.scalars(query)).all())
