from shared.errors import DomainError, NotFound


class IdNumberBadFormat(DomainError):
    status_code = 422
    code = "id_number_invalid_format"
    message_zh = "身份证号码格式不正确，应为18位（最后一位可为X）"
    message_en = "The ID number must have 18 characters, the last of which may be X"


class IdNumberBadChecksum(DomainError):
    status_code = 422
    code = "id_number_invalid_checksum"
    message_zh = "身份证号码校验位不正确"
    message_en = "The ID number's check character is wrong"


class IdNumberBadBirthDate(DomainError):
    status_code = 422
    code = "id_number_invalid_birth_date"
    message_zh = "身份证号码中的出生日期不存在"
    message_en = "The ID number holds an impossible birth date"


class IdNumberBadRegion(DomainError):
    status_code = 422
    code = "id_number_invalid_region"
    message_zh = "身份证号码中的地区码不存在"
    message_en = "The ID number holds an unknown region code"


class PersonNameMismatch(DomainError):
    status_code = 409
    code = "person_name_mismatch"
    message_zh = "姓名与该身份证号码已登记的姓名不一致"
    message_en = "The name differs from the name registered for this ID number"


class DocumentNumberBadFormat(DomainError):
    status_code = 422
    code = "document_number_invalid_format"
    message_zh = "证件号码格式不正确（应为5至20位大写字母或数字）"
    message_en = "The document number must be 5 to 20 capital letters or digits"


class ForeignDocumentDetailsMissing(DomainError):
    status_code = 422
    code = "foreign_document_details_missing"
    message_zh = "使用外国人证件参保时须提供国籍、出生日期和性别"
    message_en = "A foreign document needs nationality, birth date and sex"


class PersonNotFound(DomainError):
    status_code = 404
    code = "person_not_found"
    message_zh = "未找到该证件号码和姓名对应的人员"
    message_en = "No person with this document number and name"


IDENTITY_ERRORS: tuple[type[DomainError], ...] = (
    IdNumberBadFormat,
    IdNumberBadChecksum,
    IdNumberBadBirthDate,
    IdNumberBadRegion,
    DocumentNumberBadFormat,
    ForeignDocumentDetailsMissing,
)
"""What naming a person by document can be refused for; endpoints declare these in OpenAPI."""


class IdentityReviewNotFound(NotFound):
    code = "identity_review_not_found"
    message_zh = "身份核查记录不存在"
    message_en = "Identity review not found"


class IdentityReviewClosed(DomainError):
    status_code = 409
    code = "identity_review_closed"
    message_zh = "该身份核查已处理"
    message_en = "This identity review has already been decided"
