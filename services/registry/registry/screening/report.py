"""入户摸排名单: the open cases of a township, sorted for walking from village to village."""

import io
from collections.abc import Sequence

from registry.screening.models import ScreeningCase
from shared.logging import mask_id_number, mask_phone
from shared.tabular import Spreadsheet

STATE_NAMES = {
    "not_contacted": "未联系",
    "reminded": "已提醒",
    "visited": "已入户",
    "refused": "拒绝参保",
    "moved_away": "已迁出",
    "enrolled_elsewhere": "外地参保",
    "enrolled": "已参保",
    "not_required": "无需参保",
}


def door_to_door(policy_name: str, township: str | None, cases: Sequence[ScreeningCase]) -> bytes:
    book = Spreadsheet()
    sheet = book.active
    assert sheet is not None
    sheet.title = "入户摸排名单"
    sheet.append([f"{policy_name} 未参保人员入户摸排名单（{township or '全部乡镇'}）"])
    sheet.append(
        [
            "序号",
            "姓名",
            "身份证号码",
            "联系电话",
            "乡镇",
            "村(居)委会",
            "村民组",
            "60岁以上",
            "学生",
            "跟进状态",
            "备注",
        ]
    )
    ordered = sorted(
        cases, key=lambda c: (c.township or "", c.village or "", c.village_group or "", c.person.name)
    )
    for number, c in enumerate(ordered, start=1):
        sheet.append(
            [
                number,
                c.person.name,
                mask_id_number(c.person.document_number),
                mask_phone(c.person.phone) if c.person.phone else "",
                c.township or "",
                c.village or "",
                c.village_group or "",
                "是" if c.aged_60_plus else "",
                "是" if c.student else "",
                STATE_NAMES[c.state],
                c.note or "",
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
