from typing import ClassVar

from shared.errors import DomainError, NotFound


class BillNotFound(NotFound):
    code = "bill_not_found"
    message_zh = "缴费单不存在"
    message_en = "Bill not found"


class TooManyLookups(DomainError):
    status_code = 429
    code = "too_many_lookups"
    message_zh = "查询失败次数过多，请稍后再试"
    message_en = "Too many lookups that matched nothing; try again later"


class TooManyWaiting(DomainError):
    status_code = 429
    code = "too_many_waiting"
    message_zh = "等待缴费单开具的请求过多，请稍后再试，或不等待直接查询"
    message_en = "Too many requests are waiting for bills here; try again shortly, or ask without waiting"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class WaitNeedsOneEnrollment(DomainError):
    status_code = 422
    code = "wait_needs_one_enrollment"
    message_zh = "等待缴费单时须指定且只指定一个参保登记"
    message_en = "Waiting for a bill needs exactly one enrollment_id"
