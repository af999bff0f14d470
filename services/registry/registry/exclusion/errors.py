from shared.errors import DomainError, NotFound


class InEmployeeInsurance(DomainError):
    status_code = 409
    code = "in_employee_insurance"
    message_zh = (
        "该人员已参加职工医保，不得重复参保；如职工医保已中断，请持停保证明到当地医保经办机构核实后再办理"
    )
    message_en = (
        "This person is insured under employee insurance and may not enroll; if that insurance has ended, "
        "bring its proof to the local medical security office to have the record checked"
    )


class EnrolledElsewhere(DomainError):
    status_code = 409
    code = "enrolled_elsewhere"
    message_zh = (
        "该人员本年度已在外地参加居民医保，不得重复参保；如已在外地退保，请持证明到当地医保经办机构核实"
    )
    message_en = (
        "This person is enrolled in another area's resident insurance for this year and may not enroll "
        "again; if that enrollment has ended, bring its proof to the local medical security office"
    )


class ExclusionAlreadyRecorded(DomainError):
    status_code = 409
    code = "exclusion_already_recorded"
    message_zh = "该排除记录已存在"
    message_en = "This exclusion is already recorded"


class ExclusionNotFound(NotFound):
    code = "exclusion_not_found"
    message_zh = "排除记录不存在"
    message_en = "Exclusion not found"
