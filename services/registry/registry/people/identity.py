"""Resident identity numbers (居民身份证号码, GB 11643): validation and what derives from them."""

from dataclasses import dataclass
from datetime import date
from typing import Literal

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric

from registry.people.errors import (
    IdNumberBadBirthDate,
    IdNumberBadChecksum,
    IdNumberBadFormat,
    IdNumberBadRegion,
)

Sex = Literal["male", "female"]

_EARLIEST_BIRTH = date(1890, 1, 1)


@dataclass(frozen=True)
class ResidentIdentity:
    id_number: str
    birth_date: date
    sex: Sex
    birth_region_code: str


def parse_resident_id(raw: str, today: date) -> ResidentIdentity:
    """Validate an 18-character ID number (ISO 7064 MOD 11-2 check character, which may be X)."""
    try:
        number = ric.validate(raw)
    except (stdnum_errors.InvalidLength, stdnum_errors.InvalidFormat) as exc:
        raise IdNumberBadFormat({"field": "id_number"}) from exc
    except stdnum_errors.InvalidChecksum as exc:
        raise IdNumberBadChecksum({"field": "id_number"}) from exc
    except stdnum_errors.InvalidComponent as exc:
        # The birth date is checked before the region, so a bad date surfaces first.
        try:
            ric.get_birth_date(raw)
        except stdnum_errors.InvalidComponent:
            raise IdNumberBadBirthDate({"field": "id_number"}) from exc
        raise IdNumberBadRegion({"field": "id_number"}) from exc
    birth_date = ric.get_birth_date(number)
    if not _EARLIEST_BIRTH <= birth_date <= today:
        raise IdNumberBadBirthDate({"field": "id_number", "birth_date": birth_date.isoformat()})
    return ResidentIdentity(
        id_number=number,
        birth_date=birth_date,
        sex="male" if int(number[16]) % 2 == 1 else "female",
        birth_region_code=number[:6],
    )
