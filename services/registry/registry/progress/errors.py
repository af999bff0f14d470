from shared.errors import DomainError


class ProgressBaselineInvalid(DomainError):
    status_code = 422
    code = "progress_baseline_invalid"
    message_zh = "参保进度基础数据文件有误，未作任何更改"
    message_en = "The progress reference figures are not valid; nothing was changed"


class ProgressBaselineTooLarge(DomainError):
    status_code = 413
    code = "progress_baseline_too_large"
    message_zh = "参保进度基础数据文件过大"
    message_en = "The progress reference file is too large"
