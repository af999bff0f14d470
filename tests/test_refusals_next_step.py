"""Every refusal a resident meets on the way to being insured says what they can do next (issue 17): a
late-enrollment case, the next campaign, another year, whom to ask — never a bare "no", and never advice the
system would then refuse (请重新参保登记 after the window)."""

import pytest

from collection.payments.errors import AmountMismatch, BillAlreadyPaid, BillCancelled, PaymentWindowClosed
from collection.refunds.errors import AlreadyRefunded, BillNotPaid, RefundNotAllowed
from registry.enrollment.errors import AlreadyEnrolled, CancellationNotAllowed, EnrollmentEnded
from registry.exclusion.errors import EnrolledElsewhere, InEmployeeInsurance
from registry.policy import errors as policy
from shared.errors import DomainError

RESIDENT_FACING: list[type[DomainError]] = [
    policy.EnrollmentWindowNotOpen,
    policy.EnrollmentWindowClosed,
    policy.CoverageYearOver,
    policy.CoverageYearRequired,
    policy.NewbornCoverageYearRequired,
    policy.NewbornsOnlyYear,
    policy.NewbornYearNotAllowed,
    policy.UnknownWindowExtension,
    policy.LateCaseNotInPolicy,
    policy.LateCaseEvidenceMissing,
    policy.LateCaseEvidenceInvalid,
    policy.LateCaseExpired,
    policy.UnknownSubsidyCategory,
    policy.EligibilityNotInPolicy,
    AlreadyEnrolled,
    CancellationNotAllowed,
    EnrollmentEnded,
    InEmployeeInsurance,
    EnrolledElsewhere,
    PaymentWindowClosed,
    BillCancelled,
    AmountMismatch,
    BillAlreadyPaid,
    RefundNotAllowed,
    BillNotPaid,
    AlreadyRefunded,
]
NEXT_STEP_ZH = ("请", "可", "无需", "见")


@pytest.mark.parametrize("error", RESIDENT_FACING, ids=lambda e: e.code)
def test_the_refusal_says_what_to_do_next(error: type[DomainError]) -> None:
    assert any(word in error.message_zh for word in NEXT_STEP_ZH), error.message_zh
    assert ";" in error.message_en or ":" in error.message_en or "." in error.message_en.rstrip(".")


@pytest.mark.parametrize("error", [PaymentWindowClosed, BillCancelled], ids=lambda e: e.code)
def test_a_closed_bill_does_not_promise_a_registration_the_window_refuses(error: type[DomainError]) -> None:
    assert not error.message_zh.endswith("请重新参保登记")
    assert "补办" in error.message_zh
    assert "下一年度" in error.message_zh
