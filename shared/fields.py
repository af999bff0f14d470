"""Request fields whose limits are the columns' limits, so that what validation accepts always fits."""

from typing import Annotated

from pydantic import StringConstraints

# Who did something (a staff member's or officer's name or account): the `*_by` columns are String(64).
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# 乡镇 and 村民组 names are String(32) columns, 村(居)委会 String(64).
Township = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Village = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
VillageGroup = Township
