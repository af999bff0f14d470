"""docs/roles.md is the roles × endpoints table as the code has it (issue 17): regenerate it with
`canbao roles` when a route or its roles change."""

from canbao.roles import DOC, render
from tests.support import ROOT


def test_the_published_table_is_the_codes() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/roles.md drifted from the code: run `canbao roles`"
    )


def test_the_table_shows_each_roles_reach() -> None:
    lines = {
        line.split(" | ")[0] + " " + line.split(" | ")[1]: line
        for line in render().splitlines()
        if "`/" in line
    }
    # method, path, what, then resident, staff, department, tax_officer, auditor, admin
    refunds = lines["| POST `/v1/refunds`"].split(" | ")[3:]
    assert [m.strip(" |") for m in refunds] == ["", "", "", "✓", "", "✓"]
    rosters = lines["| POST `/v1/rosters`"].split(" | ")[3:]
    assert [m.strip(" |") for m in rosters] == ["", "✓", "✓", "", "", "✓"]
    assert "no token" in lines["| GET `/healthz`"]


def test_the_readme_links_the_table() -> None:
    assert "(docs/roles.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
