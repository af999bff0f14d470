"""参保提醒: queue reminders for the people screening listed, never two to one person within the interval,
and deliver them through the configured sender (at least once: a send whose outcome was not recorded is
sent again)."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.context import Registry
from registry.people.models import Person
from registry.policy.models import Policy
from registry.reminder import repository
from registry.reminder.errors import RemindersBusy
from registry.reminder.models import Reminder, ReminderStatus, ReminderThrottle
from registry.reminder.schemas import ReminderBatch, ReminderRequest
from registry.reminder.senders import OutgoingReminder, ReminderSender
from registry.screening import repository as cases_repo
from registry.screening import service as screening
from registry.screening.models import OPEN
from shared.clock import Clock
from shared.money import format_fen
from shared.polling import Poller, until_idle

log = structlog.get_logger()

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)
IDLE_WAIT_S = 2.0  # how often an idle dispatcher looks for due reminders; a queued batch wakes it at once


def text_for(policy: Policy, region_name: str, person: Person) -> str:
    end = policy.enrollment_window.end
    masked_name = person.name[0] + "*" * (len(person.name) - 1)
    return (
        f"【{region_name}医保】{masked_name}您好：{policy.coverage_year}年度城乡居民医保集中参保缴费期至"
        f"{end.year}年{end.month}月{end.day}日，个人缴费标准{format_fen(policy.contribution.personal)}元，"
        "困难群众按规定享受资助。可通过微信、支付宝或手机银行缴费；已缴费请忽略。"
    )


async def queue(
    session: AsyncSession, registry: Registry, request: ReminderRequest, min_interval: timedelta
) -> ReminderBatch:
    policy = registry.policies.find(request.region_code, request.coverage_year)
    region_name = next(r.name for r in policy.regions if r.code == request.region_code)
    cases = await cases_repo.listing(
        session,
        request.region_code,
        policy.coverage_year,
        township=request.township,
        village=None,
        states=sorted(OPEN),
        aged_60_plus=None,
        student=None,
        after=None,
        limit=None,
        case_ids=request.case_ids,
    )
    now = registry.clock.now()
    reachable = [c for c in cases if c.person.phone]
    held = await repository.throttles(session, [c.person_id for c in reachable])
    queued = throttled = 0
    for case in reachable:
        throttle = held.get(case.person_id)
        if throttle is not None and throttle.last_at > now - min_interval:
            throttled += 1
            continue
        if throttle is None:
            throttle = held[case.person_id] = ReminderThrottle(person_id=case.person_id, last_at=now)
            session.add(throttle)
        throttle.last_at = now
        session.add(
            Reminder(
                id=str(uuid.uuid4()),
                person_id=case.person_id,
                case_id=case.id,
                channel=request.channel,
                recipient=case.person.phone,
                text=text_for(policy, region_name, case.person),
                status=ReminderStatus.QUEUED,
                attempts=0,
                next_attempt_at=now,
                queued_at=now,
                queued_by=request.requested_by,
            )
        )
        queued += 1
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request created the same person's throttle row first
        raise RemindersBusy() from exc
    return ReminderBatch(
        considered=len(cases),
        queued=queued,
        throttled=throttled,
        no_phone=len(cases) - len(reachable),
        min_interval_hours=int(min_interval.total_seconds() // 3600),
    )


class ReminderDispatcher:
    """Hands queued reminders to the sender; failures wait longer each time, and fail after MAX_ATTEMPTS."""

    def __init__(
        self,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        sender: ReminderSender,
        clock: Callable[[], Clock],
        batch: int,
    ):
        self._sessionmaker = sessionmaker
        self.sender = sender
        self._clock = clock
        self._batch = batch
        self._poller = Poller(
            self._deliver_due, interval_s=IDLE_WAIT_S, failure_event="reminder_dispatch_failed"
        )

    def wake(self) -> None:
        self._poller.wake()

    async def run(self) -> None:
        await self._poller.run()

    async def run_until_idle(self) -> None:
        await until_idle(self._deliver_due)

    async def _deliver_due(self) -> bool:
        """Deliver one batch of due reminders; whether there were any."""
        async with self._sessionmaker()() as session, session.begin():
            now = self._clock().now()
            due = await repository.due(session, now, self._batch)
            for reminder in due:
                await self._deliver(session, reminder, now)
        return bool(due)

    async def _deliver(self, session: AsyncSession, reminder: Reminder, now: datetime) -> None:
        reminder.attempts += 1
        try:
            await self.sender.send(
                OutgoingReminder(reminder.id, reminder.channel.value, reminder.recipient, reminder.text)
            )
        except Exception as exc:  # any sender failure is retried; the reason is kept
            reminder.last_error = repr(exc)[:256]
            if reminder.attempts >= MAX_ATTEMPTS:
                reminder.status = ReminderStatus.FAILED
            else:
                reminder.next_attempt_at = now + FIRST_RETRY * 2 ** (reminder.attempts - 1)
            log.warning("reminder_send_failed", reminder_id=reminder.id, attempts=reminder.attempts)
            return
        reminder.status, reminder.sent_at, reminder.last_error = ReminderStatus.SENT, now, None
        if reminder.case_id is not None:
            case = await cases_repo.get(session, reminder.case_id)
            if case is not None:
                screening.mark_reminded(session, case, now)
