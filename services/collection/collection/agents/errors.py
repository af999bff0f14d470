from shared.errors import DomainError, NotFound


class AgentNotFound(NotFound):
    code = "agent_not_found"
    message_zh = "代收单位不存在"
    message_en = "No such collecting agent"


class AgentExists(DomainError):
    status_code = 409
    code = "agent_exists"
    message_zh = "该代收单位已登记"
    message_en = "This collecting agent is already registered"


class RemittanceExceedsCash(DomainError):
    status_code = 422
    code = "remittance_exceeds_cash"
    message_zh = "解缴金额超过代收单位未解缴的现金"
    message_en = "The remittance is more than the cash the agent holds"


class RemittanceReferenceUsed(DomainError):
    status_code = 409
    code = "remittance_reference_used"
    message_zh = "该缴库凭证号已登记"
    message_en = "This remittance reference is already recorded"
