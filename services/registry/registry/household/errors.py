from registry.enrollment.errors import ENROLLMENT_ERRORS
from shared.errors import DomainError, NotFound


class HouseholdNotFound(NotFound):
    code = "household_not_found"
    message_zh = "家庭户不存在"
    message_en = "Household not found"


class HouseholdNeedsOneHead(DomainError):
    status_code = 422
    code = "household_needs_one_head"
    message_zh = "家庭户须有且只有一名户主"
    message_en = "A household needs exactly one head"


class AlreadyInHousehold(DomainError):
    status_code = 409
    code = "already_in_household"
    message_zh = "该人员已属于其他家庭户"
    message_en = "This person already belongs to a household"


class NotAHouseholdMember(DomainError):
    status_code = 422
    code = "not_a_household_member"
    message_zh = "该人员不是本家庭户成员"
    message_en = "This person is not a member of the household"


class DuplicateMember(DomainError):
    status_code = 422
    code = "duplicate_household_member"
    message_zh = "同一人员在请求中出现多次"
    message_en = "The same person appears more than once in the request"


class NoInvitation(DomainError):
    status_code = 404
    code = "no_household_invitation"
    message_zh = "您没有该家庭户待确认的邀请"
    message_en = "You have no pending invitation to this household"


ENROLL_MEMBERS_ERRORS: tuple[type[DomainError], ...] = (
    *ENROLLMENT_ERRORS,
    HouseholdNotFound,
    NotAHouseholdMember,
    DuplicateMember,
)
"""What enrolling several members of a household at once can be refused for."""
