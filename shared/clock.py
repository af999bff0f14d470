"""Business dates are Asia/Shanghai dates; timestamps are stored in UTC.

A service reads time only through its Clock, so windows and deadlines can be exercised at any date: outside
production, `*_CLOCK_START` starts the clock at a chosen moment and lets it run from there.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


def business_date(moment: datetime) -> date:
    """The date in Beijing time: a payment at 23:30 on 31 Dec Beijing time is on 31 Dec."""
    return moment.astimezone(BUSINESS_TZ).date()


def business_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The moments [start, end) of a Beijing business day."""
    start = datetime.combine(day, time(), BUSINESS_TZ)
    return start, start + timedelta(days=1)


class Clock:
    def __init__(self, start: datetime | None = None):
        self._offset = timedelta(0)
        if start is not None:
            self.set(start)

    def set(self, moment: datetime) -> None:
        """From now on, time runs on from `moment`."""
        if moment.tzinfo is None:
            raise ValueError("clock start needs a time zone, e.g. 2023-10-08T09:00:00+08:00")
        self._offset = moment - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def today(self) -> date:
        return business_date(self.now())


async def get_clock(request: Request) -> Clock:
    # async: FastAPI runs a plain function dependency on a worker thread, a hop for nothing here.
    clock: Clock = request.app.state.clock
    return clock


AppClock = Annotated[Clock, Depends(get_clock)]
