from shared.errors import DomainError, NotFound


class ReconciliationFileInvalid(DomainError):
    status_code = 422
    code = "reconciliation_file_invalid"
    message_zh = "对账文件无法读取：格式、编码或表头不符合要求，或有错误行（见 details）"
    message_en = (
        "The reconciliation file cannot be used: its format, encoding, header or some lines are wrong"
    )


class ReconciliationFileTooLarge(DomainError):
    status_code = 413
    code = "reconciliation_file_too_large"
    message_zh = "对账文件过大"
    message_en = "The reconciliation file is too large"


class ChannelNotReconciled(DomainError):
    status_code = 422
    code = "channel_not_reconciled"
    message_zh = "该渠道不通过对账文件对账（代收点现金按解缴核对，资助按拨付核对）"
    message_en = "This channel is not reconciled by payment files (agents remit, funders transfer)"


class ReconciliationDayNotFound(NotFound):
    code = "reconciliation_day_not_found"
    message_zh = "该渠道该日尚无对账文件"
    message_en = "No reconciliation file for this channel and day"


class ReconciliationLineNotFound(NotFound):
    code = "reconciliation_line_not_found"
    message_zh = "对账明细不存在"
    message_en = "Reconciliation line not found"


class TransitionNotAllowed(DomainError):
    status_code = 409
    code = "reconciliation_transition_not_allowed"
    message_zh = "该对账明细当前状态不允许此操作"
    message_en = "The line's current state does not allow this"
