"""Policy files are checked on load, and by a command that needs no running service."""

import subprocess
import sys
from pathlib import Path

from registry.policy.book import SHIPPED_POLICIES
from tests.support import ROOT

THIRD_COUNTY = ROOT / "tests" / "data" / "policies" / "yunxi-2025.toml"


def check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", "check-policy", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_the_shipped_policies_are_valid() -> None:
    files = sorted(SHIPPED_POLICIES.glob("*.toml"))
    result = check(*files)
    assert result.returncode == 0, result.stderr
    assert "hefei-2024" in result.stdout
    assert "jing-2023" in result.stdout


def test_a_bad_policy_names_the_key_and_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        THIRD_COUNTY.read_text()
        .replace('personal = "400.00"', "personal = 400.5")
        .replace("end = 2025-12-31", "end = 2024-12-31")
        .replace("percent = 75", 'amount = "300.00"')
    )

    result = check(THIRD_COUNTY, bad)

    assert result.returncode == 1
    assert "ok" in result.stdout
    assert "yunxi-2025" in result.stdout
    assert "contribution.personal" in result.stderr
    assert "decimal string" in result.stderr
    assert "coverage" in result.stderr
    assert "before start" in result.stderr
    assert "elderly_80: kind percentage needs `percent`" in result.stderr


def test_townships_must_belong_to_the_policy_regions(tmp_path: Path) -> None:
    stray = tmp_path / "stray.toml"
    stray.write_text(THIRD_COUNTY.read_text() + '\n[[townships]]\nname = "飞地镇"\nregion_code = "110101"\n')
    result = check(stray)
    assert result.returncode == 1
    assert "townships: region codes ['110101'] are not among the regions" in result.stderr


def test_a_file_that_is_not_toml_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("policy_id = \n")
    result = check(broken)
    assert result.returncode == 1
    assert "cannot read" in result.stderr
