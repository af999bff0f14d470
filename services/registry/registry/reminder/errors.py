from shared.errors import DomainError


class RemindersBusy(DomainError):
    status_code = 409
    code = "reminders_busy"
    message_zh = "另一请求正在向同一人员发送提醒，请稍后重试"
    message_en = "Another request is reminding the same people; try again"
