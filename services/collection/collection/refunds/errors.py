from shared.errors import DomainError


class RefundNotAllowed(DomainError):
    status_code = 422
    code = "refund_not_allowed"
    message_zh = (
        "待遇享受期内已缴纳的医保费不予退还（政策规定的错误缴费、自然减员等情形除外，"
        "见 refundable_reasons）；属于这些情形的，请以相应原因重新申请，其他情况请咨询当地医保经办机构"
    )
    message_en = (
        "Paid contributions are not refunded within the coverage period, except for the reasons the "
        "policy names (erroneous payment, death: `refundable_reasons`); for those, ask again with that "
        "reason, otherwise ask the local medical security office"
    )


class BillNotPaid(DomainError):
    status_code = 409
    code = "bill_not_paid"
    message_zh = "该缴费单尚未缴费，无需退费；不再参保的，请医保经办机构注销参保登记，缴费单随之作废"
    message_en = (
        "This bill is not paid: there is nothing to refund; to leave, have the registry cancel the "
        "enrollment and its bill is cancelled with it"
    )


class AlreadyRefunded(DomainError):
    status_code = 409
    code = "already_refunded"
    message_zh = "该缴费单已全额退费，无需再次申请；退费记录见 GET /v1/refunds?bill_id="
    message_en = "This bill was already refunded in full; nothing more to do (see GET /v1/refunds?bill_id=)"
