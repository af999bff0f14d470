from shared.errors import DomainError, NotFound


class AmountMismatch(DomainError):
    status_code = 422
    code = "amount_mismatch"
    message_zh = "缴费金额与应缴金额不一致，请按缴费单的应缴金额（见 amount_due）缴费"
    message_en = "The amount differs from the amount due; pay the bill's amount due (`amount_due`)"


class BillAlreadyPaid(DomainError):
    status_code = 409
    code = "bill_already_paid"
    message_zh = "该缴费单已缴费，无需再缴；缴费单据可在缴费记录中查询打印"
    message_en = "This bill is already paid: nothing more to pay; its receipt is with the payment"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    message_zh = "缴费记录不存在"
    message_en = "Payment not found"


class BillCancelled(DomainError):
    status_code = 409
    code = "bill_cancelled"
    message_zh = (
        "该缴费单已作废（参保登记已失效或已注销）。集中参保缴费期内可重新参保登记；期后只有符合补办参保情形的"
        "（如新生儿、退役军人、刑满释放人员、新增资助对象等，以当地政策为准）可凭证明补办，否则请参加下一年度集中参保，"
        "或咨询当地医保经办机构"
    )
    message_en = (
        "This bill is cancelled (its enrollment lapsed or was cancelled). Within the enrollment window, "
        "enroll again; after it only the policy's late-enrollment cases (newborns, discharged veterans, "
        "released prisoners, newly subsidised people, as the local policy says) may enroll with their "
        "evidence; others enroll in the next campaign or ask the local medical security office"
    )


class PaymentWindowClosed(DomainError):
    status_code = 422
    code = "payment_window_closed"
    message_zh = (
        "已超过该缴费单的缴费期限（见 payable_until）。集中参保缴费期内可重新参保登记，按当日标准缴费；"
        "期后只有符合补办参保情形的（如新生儿、退役军人、刑满释放人员、新增资助对象等，以当地政策为准）可凭证明补办，"
        "否则请参加下一年度集中参保，或咨询当地医保经办机构"
    )
    message_en = (
        "The time to pay this bill has passed (`payable_until`). Within the enrollment window, enroll again "
        "on that day's terms; after it only the policy's late-enrollment cases (newborns, discharged "
        "veterans, released prisoners, newly subsidised people, as the local policy says) may enroll with "
        "their evidence; others enroll in the next campaign or ask the local medical security office"
    )


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
