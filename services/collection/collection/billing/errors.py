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
