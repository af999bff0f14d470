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
