from shared.errors import DomainError, NotFound


class OrderNotFound(NotFound):
    code = "payment_order_not_found"
    message_zh = "支付订单不存在"
    message_en = "Payment order not found"


class OrderExpired(DomainError):
    status_code = 409
    code = "payment_order_expired"
    message_zh = "支付订单已过期，请重新发起缴费"
    message_en = "The payment order has expired; start the payment again"


class OrderCancelled(DomainError):
    status_code = 409
    code = "payment_order_cancelled"
    message_zh = "支付订单已取消，请重新发起缴费"
    message_en = "The payment order was cancelled; start the payment again"


class OrderCompleted(DomainError):
    status_code = 409
    code = "payment_order_completed"
    message_zh = "支付订单已完成缴费"
    message_en = "The payment order is already paid"


class OrderChannelMismatch(DomainError):
    status_code = 409
    code = "payment_order_channel_mismatch"
    message_zh = "支付订单不属于该缴费渠道"
    message_en = "The payment order was started for another channel"


class ChannelNotOrderable(DomainError):
    status_code = 422
    code = "channel_not_orderable"
    message_zh = "该渠道不支持线上缴费，请到办税服务厅或通过代收人员缴费"
    message_en = "This channel takes no online payments; pay at a tax hall or through an agent"


class PaymentSandboxOff(NotFound):
    code = "payment_sandbox_off"
    message_zh = "支付沙箱未启用（生产环境不提供）"
    message_en = "The payment sandbox is not enabled (never in production)"
