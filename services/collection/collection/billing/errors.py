from shared.errors import NotFound


class BillNotFound(NotFound):
    code = "bill_not_found"
    message_zh = "缴费单不存在"
    message_en = "Bill not found"
