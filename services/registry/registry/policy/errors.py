from shared.errors import DomainError


class PolicyNotFound(DomainError):
    status_code = 422
    code = "policy_not_found"
    message_zh = "该地区或参保年度没有可用的参保政策"
    message_en = "No policy covers this region and coverage year"


class EnrollmentWindowNotOpen(DomainError):
    status_code = 422
    code = "enrollment_window_not_open"
    message_zh = "集中参保缴费期尚未开始，请在开始后（见 opens）再办理参保登记"
    message_en = "The enrollment window has not opened yet; enroll once it opens (see `opens`)"


class EnrollmentWindowClosed(DomainError):
    status_code = 422
    code = "enrollment_window_closed"
    message_zh = (
        "集中参保缴费期已结束。符合补办参保情形的（见 late_cases），可凭证明补办参保；"
        "其他人员请参加下一年度集中参保，或咨询当地医保经办机构"
    )
    message_en = (
        "The enrollment window has closed. People in one of the late-enrollment cases (see `late_cases`) "
        "may enroll with their evidence; others enroll in the next campaign or ask the local medical "
        "security office"
    )


class CoverageYearOver(DomainError):
    status_code = 422
    code = "coverage_year_over"
    message_zh = "该参保年度的待遇享受期已结束，请参加下一年度的集中参保"
    message_en = "The coverage period of this year is over; enroll for the next year in its campaign"


class UnknownWindowExtension(DomainError):
    status_code = 422
    code = "unknown_window_extension"
    message_zh = "该政策没有此延长缴费期人群，请不填 window_extension 或填写政策所列人群（见 accepted）"
    message_en = "The policy has no window extension for this group; leave it out or name one in `accepted`"


class LateCaseNotInPolicy(DomainError):
    status_code = 422
    code = "late_case_not_in_policy"
    message_zh = "该政策不允许此情形补办参保。可补办的情形见 late_cases；否则请参加下一年度集中参保"
    message_en = (
        "The policy does not allow late enrollment for this case. The cases it allows are in `late_cases`; "
        "otherwise enroll in the next campaign"
    )


class LateCaseEvidenceMissing(DomainError):
    status_code = 422
    code = "late_case_evidence_missing"
    message_zh = "补办参保缺少所需的证明信息，请补充 missing 所列内容后重新提交"
    message_en = (
        "The late-enrollment case lacks the evidence it needs; add what `missing` lists and send again"
    )


class LateCaseEvidenceInvalid(DomainError):
    status_code = 422
    code = "late_case_evidence_invalid"
    message_zh = "补办参保的证明信息不符合政策条件（见 reason），请核对证明；如有疑问请咨询当地医保经办机构"
    message_en = (
        "The evidence does not meet the late-enrollment case's conditions (see `reason`); check it, or ask "
        "the local medical security office"
    )


class LateCaseExpired(DomainError):
    status_code = 422
    code = "late_case_expired"
    message_zh = "已超过该情形补办参保的期限，请参加下一年度集中参保，或咨询当地医保经办机构"
    message_en = (
        "The time allowed for this late-enrollment case has passed; enroll in the next campaign, or ask the "
        "local medical security office"
    )


class NewbornYearNotAllowed(DomainError):
    status_code = 422
    code = "newborn_year_not_allowed"
    message_zh = "新生儿不能参加该年度的居民医保，请选择政策允许的参保年度（见 coverage_years）"
    message_en = (
        "A newborn may not enroll for this coverage year; choose a year the policy allows (`coverage_years`)"
    )


class NewbornsOnlyYear(DomainError):
    status_code = 422
    code = "newborns_only_year"
    message_zh = (
        "该参保年度只受理当年出生的新生儿参保（当年度）；其他人员请参加正在办理的集中参保（见 open_year）"
    )
    message_en = (
        "Only newborns of this year may enroll for it (当年度); everyone else enrolls in the open campaign "
        "(`open_year`)"
    )


class CoverageYearRequired(DomainError):
    status_code = 422
    code = "coverage_year_required"
    message_zh = "该地区当前没有正在办理的集中参保，请填写参保年度（coverage_year，见 coverage_years）"
    message_en = (
        "No campaign of this region is open today: name the coverage year (coverage_year, see coverage_years)"
    )


class NewbornCoverageYearRequired(DomainError):
    status_code = 422
    code = "newborn_coverage_year_required"
    message_zh = (
        "新生儿可参加当年度及下一年度城乡居民医保，新生儿父母办理参保时应明确新生儿参保年度："
        "请填写 coverage_year（可选年度及各自的缴费和待遇见 choices）"
    )
    message_en = (
        "A newborn may be enrolled for the year of birth or the next year, and the parents must say which: "
        "give coverage_year (the years, with what each costs and covers, are in `choices`)"
    )


class UnknownSubsidyCategory(DomainError):
    status_code = 422
    code = "unknown_subsidy_category"
    message_zh = "该政策没有此资助类别，请填写政策所列的人员类别名称或代码（见 known）"
    message_en = "The policy has no such subsidy category; give a name or code the policy lists (`known`)"


class EligibilityNotInPolicy(DomainError):
    status_code = 422
    code = "eligibility_not_in_policy"
    message_zh = "该地区政策不接受此参保身份，请选择政策接受的参保身份（见 accepted）"
    message_en = "The policy does not accept this basis of enrollment; choose one it accepts (`accepted`)"


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
