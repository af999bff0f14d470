"""The roster attachments' column layouts, as departments send them."""

ATTACHMENT_4 = ["序\n号", "姓名", "身份证号\n码", "乡镇", "村（居）委\n会", "村民组", "备注"]
ATTACHMENT_6 = [
    "序号",
    "姓名",
    "身份证号码",
    "乡镇",
    "村（居）委会",
    "村民组",
    "新增原因",
    "新增日期",
    "人员类别",
    "备注",
]
ATTACHMENT_7 = [
    "序号",
    "姓名",
    "身份证号码",
    "乡镇",
    "村（居）委会",
    "村民组",
    "减少原因",
    "人员类别",
    "备注",
]
