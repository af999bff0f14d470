from shared.errors import DomainError, NotFound


class ScreeningCaseNotFound(NotFound):
    code = "screening_case_not_found"
    message_zh = "排查记录不存在"
    message_en = "No such screening case"


class ScreeningCaseClosed(DomainError):
    status_code = 409
    code = "screening_case_closed"
    message_zh = "该排查记录已结案，不能再更改跟进状态"
    message_en = "The case is closed; its follow-up state can no longer change"


class NotEnrolledYet(DomainError):
    status_code = 409
    code = "not_enrolled_yet"
    message_zh = "系统中尚无此人本年度已缴费的参保记录，不能标记为已参保"
    message_en = "The person has no paid enrollment for the year; the case cannot be marked enrolled"
