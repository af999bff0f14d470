from shared.errors import DomainError


class PolicyNotFound(DomainError):
    status_code = 422
    code = "policy_not_found"
    message_zh = "该地区或参保年度没有可用的参保政策"
    message_en = "No policy covers this region and coverage year"


class PolicyFileInvalid(Exception):
    """A policy file failed validation; the message names the file, the key and what is wrong."""
