from shared.errors import DomainError


class RefundNotAllowed(DomainError):
    status_code = 422
    code = "refund_not_allowed"
    message_zh = "待遇享受期内已缴纳的医保费不予退还（政策规定的错误缴费、自然减员等情形除外）"
    message_en = (
        "Paid contributions are not refunded within the coverage period, except for the reasons the "
        "policy names (erroneous payment, death)"
    )


class BillNotPaid(DomainError):
    status_code = 409
    code = "bill_not_paid"
    message_zh = "该缴费单尚未缴费，无需退费"
    message_en = "This bill is not paid: there is nothing to refund"


class AlreadyRefunded(DomainError):
    status_code = 409
    code = "already_refunded"
    message_zh = "该缴费单已全额退费"
    message_en = "This bill was already refunded in full"
