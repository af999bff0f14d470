from shared.errors import DomainError, NotFound
from shared.inbox import EventRejected


class AlreadyEnrolled(DomainError):
    status_code = 409
    code = "already_enrolled"
    message_zh = "该人员本参保年度已参保登记，不得重复参保"
    message_en = "This person is already enrolled for this coverage year"


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"
    message_zh = "参保登记不存在"
    message_en = "Enrollment not found"


class CancellationNotAllowed(DomainError):
    status_code = 422
    code = "cancellation_not_allowed"
    message_zh = "该参保登记已缴费，且参保政策不对此原因退费，不能注销"
    message_en = (
        "This enrollment is paid and its policy refunds nothing for this reason, so it cannot be ended"
    )


class EnrollmentEnded(DomainError):
    status_code = 409
    code = "enrollment_ended"
    message_zh = "该参保登记已失效或已注销"
    message_en = "This enrollment has already lapsed or been cancelled"


class PaymentDoesNotMatch(EventRejected):
    """A payment confirmation or refund disagrees with the enrollment (another amount than priced, a payment
    for an enrollment paid otherwise): dead-lettered for an operator at once, never applied."""

    reason = "payment_does_not_match"
