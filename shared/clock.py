"""Business dates are Asia/Shanghai dates; timestamps are stored in UTC."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    return datetime.now(UTC)


def business_date(moment: datetime) -> date:
    """The date in Beijing time: a payment at 23:30 on 31 Dec Beijing time is on 31 Dec."""
    return moment.astimezone(BUSINESS_TZ).date()
