from shared.errors import DomainError, NotFound


class AlreadyEnrolled(DomainError):
    status_code = 409
    code = "already_enrolled"
    message_zh = "该人员本参保年度已参保登记，不得重复参保"
    message_en = "This person is already enrolled for this coverage year"


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"
    message_zh = "参保登记不存在"
    message_en = "Enrollment not found"


class PaymentDoesNotMatch(Exception):
    """A payment confirmation disagrees with the enrollment: left for an operator, never applied silently."""
