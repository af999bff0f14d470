"""Administrative division codes (行政区划代码): six digits, e.g. 340104."""

REGION_CODE_PATTERN = r"^[0-9]{6}$"
