from shared.errors import DomainError, NotFound


class SubsidyAlreadyAssigned(DomainError):
    status_code = 409
    code = "subsidy_already_assigned"
    message_zh = "该人员本年度已有此资助类别"
    message_en = "This person already holds this subsidy category for the year"


class SubsidyAssignmentNotFound(NotFound):
    code = "subsidy_assignment_not_found"
    message_zh = "资助类别记录不存在"
    message_en = "Subsidy assignment not found"


class SubsidyAssignmentAlreadyRemoved(DomainError):
    status_code = 409
    code = "subsidy_assignment_already_removed"
    message_zh = "该资助类别记录已被撤销"
    message_en = "This subsidy assignment was already removed"
