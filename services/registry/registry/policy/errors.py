from shared.errors import DomainError


class PolicyNotFound(DomainError):
    status_code = 422
    code = "policy_not_found"
    message_zh = "该地区或参保年度没有可用的参保政策"
    message_en = "No policy covers this region and coverage year"


class EnrollmentWindowNotOpen(DomainError):
    status_code = 422
    code = "enrollment_window_not_open"
    message_zh = "集中参保缴费期尚未开始"
    message_en = "The enrollment window has not opened yet"


class EnrollmentWindowClosed(DomainError):
    status_code = 422
    code = "enrollment_window_closed"
    message_zh = "集中参保缴费期已结束，且未提供可补办参保的情形"
    message_en = "The enrollment window has closed and no late-enrollment case was given"


class CoverageYearOver(DomainError):
    status_code = 422
    code = "coverage_year_over"
    message_zh = "该参保年度的待遇享受期已结束"
    message_en = "The coverage period of this year is over"


class UnknownWindowExtension(DomainError):
    status_code = 422
    code = "unknown_window_extension"
    message_zh = "该政策没有此延长缴费期人群"
    message_en = "The policy has no window extension for this group"


class LateCaseNotInPolicy(DomainError):
    status_code = 422
    code = "late_case_not_in_policy"
    message_zh = "该政策不允许此情形补办参保"
    message_en = "The policy does not allow late enrollment for this case"


class LateCaseEvidenceMissing(DomainError):
    status_code = 422
    code = "late_case_evidence_missing"
    message_zh = "补办参保缺少所需的证明信息"
    message_en = "The late-enrollment case lacks the evidence it needs"


class LateCaseEvidenceInvalid(DomainError):
    status_code = 422
    code = "late_case_evidence_invalid"
    message_zh = "补办参保的证明信息不符合政策条件"
    message_en = "The evidence does not meet the late-enrollment case's conditions"


class LateCaseExpired(DomainError):
    status_code = 422
    code = "late_case_expired"
    message_zh = "已超过该情形补办参保的期限"
    message_en = "The time allowed for this late-enrollment case has passed"


class NewbornYearNotAllowed(DomainError):
    status_code = 422
    code = "newborn_year_not_allowed"
    message_zh = "新生儿不能参加该年度的居民医保"
    message_en = "A newborn may not enroll for this coverage year"


class UnknownSubsidyCategory(DomainError):
    status_code = 422
    code = "unknown_subsidy_category"
    message_zh = "该政策没有此资助类别"
    message_en = "The policy has no such subsidy category"


class EligibilityNotInPolicy(DomainError):
    status_code = 422
    code = "eligibility_not_in_policy"
    message_zh = "该地区政策不接受此参保身份"
    message_en = "The policy does not accept this basis of enrollment"


class EligibilityDocumentMismatch(DomainError):
    status_code = 422
    code = "eligibility_document_mismatch"
    message_zh = "参保身份与证件类型不符（外籍人员使用外国人证件，其他人员使用居民身份证）"
    message_en = (
        "The basis does not fit the document: foreigners use a foreign document, others a resident ID"
    )


class EligibilityNotMet(DomainError):
    status_code = 422
    code = "eligibility_not_met"
    message_zh = "不符合该参保身份的条件"
    message_en = "The person does not meet the conditions of this basis"


class UnknownTownship(DomainError):
    status_code = 422
    code = "unknown_township"
    message_zh = "该地区没有此乡镇"
    message_en = "No such township in this region"


class UnknownVillage(DomainError):
    status_code = 422
    code = "unknown_village"
    message_zh = "该乡镇没有此村（居）委会"
    message_en = "No such village or community in this township"


class PolicyFileInvalid(Exception):
    """A policy file failed validation; the message names the file, the key and what is wrong."""
