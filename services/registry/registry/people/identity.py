"""Resident identity numbers (居民身份证号码, GB 11643): validation and what derives from them."""

from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from typing import Any, Literal

from stdnum import numdb
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


@cache
def _divisions() -> Any:
    return numdb.get("cn/loc")


@lru_cache(maxsize=8192)  # about 3,000 county codes exist; a roster checks the same few over and over
def _is_known_division(code: str) -> bool:
    # Any period counts: numbers were issued from 1984 on with the codes of that day, so a person born
    # before their county's current code existed still carries it. (stdnum's validate() would refuse them.)
    return any("county" in props for _, props in _divisions().info(code))


def parse_resident_id(raw: str, today: date) -> ResidentIdentity:
    """Validate an 18-character ID number: format, ISO 7064 MOD 11-2 check character (may be X),
    a real birth date not in the future, and a division code that exists."""
    number, birth_date = checked_resident_id(raw, today)
    return ResidentIdentity(
        id_number=number, birth_date=birth_date, sex=sex_of(number), birth_region_code=number[:6]
    )


def checked_resident_id(raw: str, today: date) -> tuple[str, date]:
    """`parse_resident_id`'s checks alone, giving the number as stored and its birth date: what a roster's
    million rows need of it."""
    # An ASCII number needs none of stdnum's Unicode clean-up (a roster checks a million of them).
    number = raw.strip().upper() if raw.isascii() else ric.compact(raw)
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise IdNumberBadFormat({"field": "id_number"})
    if number[17] != ric.calc_check_digit(number):
        raise IdNumberBadChecksum({"field": "id_number"})
    try:
        birth_date = birth_date_of(number)
    except ValueError as exc:
        raise IdNumberBadBirthDate({"field": "id_number"}) from exc
    if not _EARLIEST_BIRTH <= birth_date <= today:
        raise IdNumberBadBirthDate({"field": "id_number", "birth_date": birth_date.isoformat()})
    if not _is_known_division(number[:6]):
        raise IdNumberBadRegion({"field": "id_number"})
    return number, birth_date


def birth_date_of(number: str) -> date:
    """The birth date digits of an 18-character number (ValueError if they name no day)."""
    return _day(number[6:14])


@lru_cache(maxsize=65_536)  # a century of days: a roster's people share their birthdays
def _day(digits: str) -> date:
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def sex_of(number: str) -> Sex:
    """The sex the sequence digit gives: odd for men, even for women."""
    return "male" if int(number[16]) % 2 == 1 else "female"
