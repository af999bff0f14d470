"""Region names in the docs are the shipped reference data's (issue 17: the README called 340104 包河区; it is
蜀山区, and 包河区 is 340111)."""

import csv
import re
from pathlib import Path

from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from tests.support import ROOT

REFERENCE = ROOT / "services" / "registry" / "registry" / "progress" / "data" / "hefei-2024.csv"


def names_by_code() -> dict[str, str]:
    with REFERENCE.open(encoding="utf-8") as table:
        known = {row["region_code"]: row["district"] for row in csv.DictReader(table) if row["region_code"]}
    for policy in PolicyBook.load(SHIPPED_POLICIES).all():
        for region in policy.regions:
            assert known.setdefault(region.code, region.name) == region.name, (region.code, policy.policy_id)
    return known


def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_policies_name_regions_as_the_reference_table_does() -> None:
    assert names_by_code()["340104"] == "蜀山区"
    assert names_by_code()["340111"] == "包河区"


def test_a_region_code_and_a_region_name_on_one_line_agree() -> None:
    known = names_by_code()
    codes_by_name = {name: code for code, name in known.items()}
    wrong = []
    for doc in docs():
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            codes = {c for c in re.findall(r"(?<![0-9])([0-9]{6})(?![0-9])", line) if c in known}
            names = {n for n in codes_by_name if n in line}
            if len(codes) == 1 and names and not names & {known[c] for c in codes}:
                wrong.append(f"{doc.relative_to(ROOT)}:{number}: {sorted(codes)} named {sorted(names)}")
    assert wrong == []
