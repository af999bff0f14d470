from typing import ClassVar

from registry.exclusion.errors import EnrolledElsewhere, InEmployeeInsurance
from registry.people.errors import IDENTITY_ERRORS, PersonNameMismatch
from registry.policy.errors import (
    CoverageYearOver,
    CoverageYearRequired,
    EligibilityDocumentMismatch,
    EligibilityNotInPolicy,
    EligibilityNotMet,
    EnrollmentWindowClosed,
    EnrollmentWindowNotOpen,
    LateCaseEvidenceInvalid,
    LateCaseEvidenceMissing,
    LateCaseExpired,
    LateCaseNotInPolicy,
    NewbornCoverageYearRequired,
    NewbornsOnlyYear,
    NewbornYearNotAllowed,
    PolicyNotFound,
    UnknownTownship,
    UnknownWindowExtension,
)
from shared.errors import DomainError, NotFound
from shared.inbox import EventRejected


class AlreadyEnrolled(DomainError):
    status_code = 409
    code = "already_enrolled"
    message_zh = "该人员本参保年度已参保登记，不得重复参保；请查看或缴纳已有的参保登记（见 enrollment_id）"
    message_en = (
        "This person is already enrolled for this coverage year; see or pay the existing enrollment "
        "(`enrollment_id`)"
    )


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"
    message_zh = "参保登记不存在"
    message_en = "Enrollment not found"


class CancellationNotAllowed(DomainError):
    status_code = 422
    code = "cancellation_not_allowed"
    message_zh = (
        "待遇享受期内已缴纳的医保费不予退还：该参保登记已缴费，政策只对错误缴费、自然减员等情形退费"
        "（见 refundable_reasons），不能以此原因注销；属于这些情形的，请以相应原因和证明办理"
    )
    message_en = (
        "Paid contributions are not refunded within the coverage period: this enrollment is paid and its "
        "policy refunds only the reasons in `refundable_reasons` (erroneous payment, death), so it cannot be "
        "ended for this one; for those, state that reason with its evidence"
    )


class TooManyWaiting(DomainError):
    status_code = 429
    code = "too_many_waiting"
    message_zh = "等待参保登记变化的请求过多，请稍后再试，或不等待直接查询"
    message_en = (
        "Too many requests are waiting for enrollments to change here; try again shortly, "
        "or ask without waiting"
    )
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


class EnrollmentEnded(DomainError):
    status_code = 409
    code = "enrollment_ended"
    message_zh = "该参保登记已失效或已注销，无需再办理注销"
    message_en = "This enrollment has already lapsed or been cancelled: there is nothing left to end"


class PaymentDoesNotMatch(EventRejected):
    """A payment confirmation or refund disagrees with the enrollment (another amount than priced, a payment
    for an enrollment paid otherwise): dead-lettered for an operator at once, never applied."""

    reason = "payment_does_not_match"


ENROLLMENT_ERRORS: tuple[type[DomainError], ...] = (
    *IDENTITY_ERRORS,
    PolicyNotFound,
    CoverageYearRequired,
    NewbornCoverageYearRequired,
    EligibilityNotInPolicy,
    EligibilityDocumentMismatch,
    EligibilityNotMet,
    EnrollmentWindowNotOpen,
    EnrollmentWindowClosed,
    CoverageYearOver,
    UnknownWindowExtension,
    UnknownTownship,
    LateCaseNotInPolicy,
    LateCaseEvidenceMissing,
    LateCaseEvidenceInvalid,
    LateCaseExpired,
    NewbornYearNotAllowed,
    NewbornsOnlyYear,
    AlreadyEnrolled,
    InEmployeeInsurance,
    EnrolledElsewhere,
    PersonNameMismatch,
)
"""What enrolling a person can be refused for, wherever it is asked (alone, or for a household's members);
endpoints declare these in OpenAPI."""
