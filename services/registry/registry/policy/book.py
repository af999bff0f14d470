"""Loads and validates policy files; finds the policy for a region and coverage year."""

import tomllib
from pathlib import Path

from pydantic import ValidationError

from registry.policy.errors import PolicyFileInvalid, PolicyNotFound
from registry.policy.models import Policy

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

    @classmethod
    def load(cls, *directories: Path) -> "PolicyBook":
        files = sorted(p for d in directories for p in d.glob("*.toml"))
        return cls([load_policy_file(p) for p in files])

    def find(self, region_code: str, coverage_year: int) -> Policy:
        policy = self._by_region_year.get((region_code, coverage_year))
        if policy is None:
            raise PolicyNotFound({"region_code": region_code, "coverage_year": coverage_year})
        return policy

    def all(self) -> list[Policy]:
        return list(self._by_id.values())

    def by_id(self, policy_id: str) -> Policy:
        """The policy an existing enrollment was made under (its files never leave the book)."""
        return self._by_id[policy_id]
