from shared.errors import DomainError


class TransferReferenceUsed(DomainError):
    status_code = 409
    code = "transfer_reference_used"
    message_zh = "该拨付凭证号已登记过另一笔拨付"
    message_en = "This transfer reference is already recorded for another transfer"


class NothingOwedByFunder(DomainError):
    status_code = 422
    code = "nothing_owed_by_funder"
    message_zh = "该资助部门在此地区和年度没有应拨付的资助资金"
    message_en = "This funder owes no subsidy for this region and year"
