"""Loads and validates policy files; finds the policy for a region and coverage year."""

import tomllib
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from registry.policy.errors import CoverageYearRequired, PolicyFileInvalid, PolicyNotFound
from registry.policy.models import LateCaseKind, Policy

SHIPPED_POLICIES = Path(__file__).parent / "data"


def load_policy_file(path: Path) -> Policy:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyFileInvalid(f"{path}: cannot read: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyFileInvalid(f"{path}: {problems}") from exc


class PolicyBook:
    def __init__(self, policies: list[Policy]):
        self._by_region_year: dict[tuple[str, int], Policy] = {}
        self._by_id: dict[str, Policy] = {}
        for policy in policies:
            if policy.policy_id in self._by_id:
                raise PolicyFileInvalid(f"policy_id {policy.policy_id} is used by two files")
            self._by_id[policy.policy_id] = policy
            for region in policy.regions:
                key = (region.code, policy.coverage_year)
                other = self._by_region_year.get(key)
                if other is not None:
                    raise PolicyFileInvalid(
                        f"region {region.code} year {policy.coverage_year} is in both "
                        f"{other.policy_id} and {policy.policy_id}"
                    )
                self._by_region_year[key] = policy
        # 当年度 terms for newborns fill a year only where no policy file of that year is loaded; enrollments
        # made under them keep finding them by id whatever is loaded later.
        self._derived: dict[str, Policy] = {}
        for policy in policies:
            derived = policy.current_year_policy()
            if derived is None:
                continue
            self._derived[derived.policy_id] = derived
            for region in derived.regions:
                self._by_region_year.setdefault((region.code, derived.coverage_year), derived)

    @classmethod
    def load(cls, *directories: Path) -> "PolicyBook":
        files = sorted(p for d in directories for p in d.glob("*.toml"))
        return cls([load_policy_file(p) for p in files])

    def find(self, region_code: str, coverage_year: int) -> Policy:
        policy = self._by_region_year.get((region_code, coverage_year))
        if policy is None:
            years = self.years(region_code)
            raise PolicyNotFound(
                {"region_code": region_code, "coverage_year": coverage_year, "coverage_years": years},
                zh=f"{PolicyNotFound.message_zh}。该地区可办理的参保年度："
                f"{'、'.join(map(str, years)) or '无'}；其他年度请咨询当地医保经办机构",
                en=f"{PolicyNotFound.message_en}. Years this region enrolls for: "
                f"{', '.join(map(str, years)) or 'none'}; for others ask the local medical security office",
            )
        return policy

    def years(self, region_code: str) -> list[int]:
        return sorted(year for code, year in self._by_region_year if code == region_code)

    def open_campaign(self, region_code: str, today: date, window_extension: str | None = None) -> Policy:
        """The campaign a person of the region enrolls in when they name no year: the one whose window (or the
        group's extension) is open today, else the one whose coverage period runs today (late cases). Policies
        that only newborns enroll under are never a default."""
        running = [
            p
            for (code, _), p in sorted(self._by_region_year.items())
            if code == region_code
            and not p.newborns_only
            and p.enrollment_window.start <= today <= p.coverage.end
        ]
        in_window = [p for p in running if today <= p.enrollment_window.end_for(window_extension)]
        chosen = (in_window or running)[:1]
        if not chosen:
            years = self.years(region_code)
            if not years:
                raise PolicyNotFound({"region_code": region_code})
            raise CoverageYearRequired({"region_code": region_code, "coverage_years": years})
        return chosen[0]

    def newborn_years(self, region_code: str, birth_date: date, today: date) -> list[int]:
        """The coverage years a child born on `birth_date` may still be enrolled for as a newborn today, where
        a policy lets parents choose (Hefei: 当年度及下一年度)."""
        years = []
        for year in (birth_date.year, birth_date.year + 1):
            policy = self._by_region_year.get((region_code, year))
            if (
                policy is not None
                and policy.newborns.allows(birth_date.year, year)
                and policy.late_case(LateCaseKind.NEWBORN) is not None
                and policy.enrollment_window.start <= today <= policy.coverage.end
            ):
                years.append(year)
        return years

    def all(self) -> list[Policy]:
        """The policy files loaded (not the 当年度 terms derived from them for newborns)."""
        return list(self._by_id.values())

    def by_id(self, policy_id: str) -> Policy:
        """The policy an existing enrollment was made under (its files never leave the book)."""
        return self._by_id[policy_id] if policy_id in self._by_id else self._derived[policy_id]
