from shared.errors import DomainError, NotFound


class RosterFileInvalid(DomainError):
    status_code = 422
    code = "roster_file_invalid"
    message_zh = "花名册文件无法读取：格式、编码或表头不符合要求"
    message_en = "The roster file cannot be read: its format, encoding or header is not as required"


class RosterCategoryRequired(DomainError):
    status_code = 422
    code = "roster_category_required"
    message_zh = "资助花名册须指明人员类别（上传时或表内“人员类别”列）"
    message_en = "A subsidy roster needs its category, given with the upload or in a 人员类别 column"


class RosterUploadNotFound(NotFound):
    code = "roster_upload_not_found"
    message_zh = "花名册上传记录不存在"
    message_en = "Roster upload not found"


class RosterNotReviewable(DomainError):
    status_code = 409
    code = "roster_not_reviewable"
    message_zh = "该花名册当前状态不能审核（须先完成校验，且只能审核一次）"
    message_en = "This roster cannot be reviewed in its current state (it must be validated, and once only)"


class RosterTooLarge(DomainError):
    status_code = 413
    code = "roster_too_large"
    message_zh = "花名册文件过大"
    message_en = "The roster file is too large"


class RosterHasHeldRows(DomainError):
    status_code = 409
    code = "roster_has_held_rows"
    message_zh = "该花名册仍有疑似重复人员待核实，核实后方可审核通过"
    message_en = "Suspected duplicates in this roster await a decision before it can be approved"


class RosterRowNotFound(NotFound):
    code = "roster_row_not_found"
    message_zh = "花名册中没有该行"
    message_en = "No such row in this roster"


class RosterRowNotHeld(DomainError):
    status_code = 409
    code = "roster_row_not_held"
    message_zh = "该行不是待核实状态，或花名册已审核"
    message_en = "This row is not awaiting a decision, or the roster was already reviewed"
