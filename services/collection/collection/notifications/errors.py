from shared.errors import DomainError, NotFound


class ChannelNotNotifying(NotFound):
    code = "channel_not_notifying"
    message_zh = "该缴费渠道不发送缴费通知"
    message_en = "This channel sends no payment notifications"


class NotificationSignatureInvalid(DomainError):
    status_code = 401
    code = "notification_signature_invalid"
    message_zh = "缴费通知签名无效"
    message_en = "The notification's signature does not verify"


class NotificationExpired(DomainError):
    status_code = 401
    code = "notification_expired"
    message_zh = "缴费通知时间戳过期或无效"
    message_en = "The notification's timestamp is missing, malformed or too old"


class NotificationInvalid(DomainError):
    status_code = 422
    code = "notification_invalid"
    message_zh = "缴费通知内容不符合格式要求"
    message_en = "The notification's body is not a valid payment notification"
