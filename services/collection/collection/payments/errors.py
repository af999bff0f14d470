from shared.errors import DomainError, NotFound


class AmountMismatch(DomainError):
    status_code = 422
    code = "amount_mismatch"
    message_zh = "缴费金额与应缴金额不一致"
    message_en = "The amount differs from the amount due"


class BillAlreadyPaid(DomainError):
    status_code = 409
    code = "bill_already_paid"
    message_zh = "该缴费单已缴费"
    message_en = "This bill is already paid"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    message_zh = "缴费记录不存在"
    message_en = "Payment not found"


class BillCancelled(DomainError):
    status_code = 409
    code = "bill_cancelled"
    message_zh = "该缴费单已作废（参保登记已失效），请重新参保登记"
    message_en = "This bill is cancelled (its enrollment lapsed); enroll again"


class PaymentWindowClosed(DomainError):
    status_code = 422
    code = "payment_window_closed"
    message_zh = "已超过该缴费单的缴费期限，请重新参保登记"
    message_en = "The time to pay this bill has passed; enroll again"


class NoOpenBills(NotFound):
    code = "no_open_bills"
    message_zh = "该单位没有待缴费的缴费单"
    message_en = "This organisation has no open bills"


class ChannelReferenceUsed(DomainError):
    status_code = 409
    code = "channel_reference_used"
    message_zh = "该渠道交易流水号已记录过一笔缴费"
    message_en = "A payment with this channel transaction number is already recorded"


class ChannelRecordsItself(DomainError):
    status_code = 422
    code = "channel_records_itself"
    message_zh = (
        "线上渠道的缴费由渠道签名通知记录：请发起支付订单（POST /v1/payment-orders）；"
        "柜台只记录办税服务厅、现金和代收缴费"
    )
    message_en = (
        "Online channels record their payments by signed notification: start a payment order "
        "(POST /v1/payment-orders); the counter records tax hall, cash and agent payments only"
    )
