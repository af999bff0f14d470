"""参保进度: this year's enrollees per district or township (and city-wide university students) against the
reference figures of the documents' tables, as of a chosen day; the same for each subsidy category."""

import asyncio
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.policy.models import Policy
from registry.progress import reading, repository
from registry.progress.errors import ProgressBaselineInvalid, ProgressBaselineTooLarge
from registry.progress.models import ProgressBaseline, UnitKind
from registry.progress.reading import FIGURES, BaselineRow
from registry.progress.schemas import (
    BaselineOut,
    BaselineRowOut,
    CategoryProgress,
    DailyPayments,
    ProgressReport,
    ProgressRow,
)
from registry.subsidy.service import UNNAMED_TOWNSHIP
from shared import tabular
from shared.clock import business_day_bounds
from shared.money import format_fen

SHIPPED_BASELINES = Path(__file__).parent / "data"
BASELINE_MAX_BYTES = 1024 * 1024
HUNDRED = Decimal(100)
CENTS = Decimal("0.01")
_SHIPPED_ROWS: dict[str, list[BaselineRow]] = {}

Key = tuple[str, ...]


@dataclass
class _Tally:
    enrolled: int = 0
    holders: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    holders_enrolled: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def percent(part: int, whole: int | None) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(CENTS, ROUND_HALF_UP)


async def baseline(session: AsyncSession, policy: Policy) -> tuple[list[BaselineRow], BaselineOut]:
    """The reference figures: the last upload for the policy, else the table shipped with the service."""
    stored = await repository.baseline(session, policy.policy_id)
    if stored:
        rows = [
            BaselineRow(s.unit, s.kind, s.region_code, {f: getattr(s, f) for f in FIGURES}) for s in stored
        ]
        described = BaselineOut(
            policy_id=policy.policy_id,
            source=stored[0].source,
            loaded_by=stored[0].loaded_by,
            loaded_at=stored[0].loaded_at,
            rows=[],
        )
    else:
        shipped = SHIPPED_BASELINES / f"{policy.policy_id}.csv"
        rows = _shipped(policy)
        described = BaselineOut(
            policy_id=policy.policy_id,
            source=f"shipped:{shipped.name}" if rows else "none",
            loaded_by=None,
            loaded_at=None,
            rows=[],
        )
    described.rows = [
        BaselineRowOut(unit=r.unit, kind=r.kind, region_code=r.region_code, **r.figures) for r in rows
    ]
    return rows, described


def _shipped(policy: Policy) -> list[BaselineRow]:
    """The table shipped for the policy, read once per process (the files never change while it runs)."""
    if policy.policy_id not in _SHIPPED_ROWS:
        path = SHIPPED_BASELINES / f"{policy.policy_id}.csv"
        _SHIPPED_ROWS[policy.policy_id] = reading.read(path, path.name, policy) if path.exists() else []
    return _SHIPPED_ROWS[policy.policy_id]


async def replace_baseline(
    session: AsyncSession,
    registry: Registry,
    policy: Policy,
    filename: str,
    source: IO[bytes],
    loaded_by: str,
) -> BaselineOut:
    """Take a department's updated table whole, or refuse it with every bad row and change nothing."""
    with tempfile.TemporaryDirectory() as directory:
        _, path = await asyncio.to_thread(
            tabular.spool,
            source,
            Path(directory),
            tabular.upload_suffix(filename, ProgressBaselineInvalid),
            BASELINE_MAX_BYTES,
            ProgressBaselineTooLarge,
        )
        rows = await asyncio.to_thread(reading.read, path, filename, policy)
    now = registry.clock.now()
    await repository.replace_baseline(
        session,
        policy.policy_id,
        [
            ProgressBaseline(
                policy_id=policy.policy_id,
                position=i,
                unit=r.unit,
                kind=r.kind,
                region_code=r.region_code,
                source=filename,
                loaded_by=loaded_by,
                loaded_at=now,
                **r.figures,
            )
            for i, r in enumerate(rows)
        ],
    )
    _, described = await baseline(session, policy)
    return described


async def progress(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int, *, as_of: date | None
) -> ProgressReport:
    policy = registry.policies.find(region_code, coverage_year)
    day = as_of or registry.clock.today()
    until = business_day_bounds(day)[1]
    table, described = await baseline(session, policy)
    regions = [r.code for r in policy.regions]
    by_township = _by_township(policy, table)
    with_university_row = any(r.kind is UnitKind.UNIVERSITY for r in table)

    def key(region: str, township: str | None, *, university: bool = False) -> Key:
        if university and with_university_row:
            return (UnitKind.UNIVERSITY,)
        if by_township:
            return (UnitKind.TOWNSHIP, region, township or "")
        return (UnitKind.REGION, region)

    tallies: dict[Key, _Tally] = defaultdict(_Tally)
    for region, township, university, n in await repository.enrolled_counts(
        session, regions, policy.coverage_year, until
    ):
        tallies[key(region, township, university=university)].enrolled += n
    for region, township, category, holders, enrolled in await repository.category_counts(
        session, regions, policy.coverage_year, day, until
    ):
        tally = tallies[key(region, township)]
        tally.holders[category] += holders
        tally.holders_enrolled[category] += enrolled

    basis: Literal["target", "enrolled_last_year"] = (
        "target" if any(r.figures["target"] is not None for r in table) else "enrolled_last_year"
    )
    layout = _layout(policy, table, by_township=by_township)
    extra = sorted(set(tallies) - {k for k, _ in layout})
    layout += [(k, None) for k in extra]
    rows = [_row(policy, k, row, tallies.get(k, _Tally()), basis=basis) for k, row in layout]
    total = _total(policy, rows, by_township=by_township, basis=basis)
    return ProgressReport(
        policy_id=policy.policy_id,
        policy_name=policy.name,
        coverage_year=policy.coverage_year,
        campaign_year=policy.enrollment_window.start.year,
        as_of=day,
        coverage_target_percent=policy.targets.coverage_percent,
        subsidised_target_percent=policy.targets.subsidised_percent,
        target_basis=basis,
        baseline_source=described.source,
        rows=rows,
        total=total,
        categories=total.categories,
    )


def _by_township(policy: Policy, table: list[BaselineRow]) -> bool:
    kinds = {r.kind for r in table} - {UnitKind.UNIVERSITY}
    if kinds:
        return kinds == {UnitKind.TOWNSHIP}
    return bool(policy.townships)  # no table: count where the policy names places


def _layout(
    policy: Policy, table: list[BaselineRow], *, by_township: bool
) -> list[tuple[Key, BaselineRow | None]]:
    """The table's rows in its order; without a table, every township (or region) the policy lists."""
    if table:
        layout: list[tuple[Key, BaselineRow | None]] = []
        for r in table:
            if r.kind is UnitKind.UNIVERSITY:
                layout.append(((UnitKind.UNIVERSITY,), r))
            elif r.kind is UnitKind.TOWNSHIP:
                layout.append(((UnitKind.TOWNSHIP, r.region_code or "", r.unit), r))
            else:
                layout.append(((UnitKind.REGION, r.region_code or ""), r))
        return layout
    if by_township:
        return [((UnitKind.TOWNSHIP, t.region_code, t.name), None) for t in policy.townships]
    return [((UnitKind.REGION, r.code), None) for r in policy.regions]


def _row(
    policy: Policy,
    key: Key,
    row: BaselineRow | None,
    tally: _Tally,
    *,
    basis: Literal["target", "enrolled_last_year"],
) -> ProgressRow:
    kind = UnitKind(key[0])
    if row is not None:
        unit = row.unit
    elif kind is UnitKind.TOWNSHIP:
        unit = key[2] or UNNAMED_TOWNSHIP
    elif kind is UnitKind.REGION:
        unit = next((r.name for r in policy.regions if r.code == key[1]), key[1])
    else:
        unit = "大学生"
    figures: dict[str, int | None] = row.figures if row else dict.fromkeys(FIGURES)
    return _figures(
        policy,
        unit=unit,
        kind=kind,
        region_code=key[1] if kind is not UnitKind.UNIVERSITY else None,
        in_baseline=row is not None,
        figures=figures,
        enrolled=tally.enrolled,
        categories=_categories(policy, tally.holders, tally.holders_enrolled),
        basis=basis,
    )


def _figures(
    policy: Policy,
    *,
    unit: str,
    kind: UnitKind,
    region_code: str | None,
    in_baseline: bool,
    figures: dict[str, int | None],
    enrolled: int,
    categories: list[CategoryProgress],
    basis: Literal["target", "enrolled_last_year"],
) -> ProgressRow:
    rate = percent(enrolled, figures[basis])
    return ProgressRow(
        unit=unit,
        kind=kind,
        region_code=region_code,
        in_baseline=in_baseline,
        resident_population=figures["resident_population"],
        registered_population=figures["registered_population"],
        enrolled_last_year=figures["enrolled_last_year"],
        target=figures["target"],
        enrolled=enrolled,
        rate_of_registered=percent(enrolled, figures["registered_population"]),
        rate_of_target=rate,
        meets_target=None if rate is None else rate >= policy.targets.coverage_percent,
        categories=categories,
    )


def _categories(policy: Policy, holders: dict[str, int], enrolled: dict[str, int]) -> list[CategoryProgress]:
    result = []
    for category in policy.subsidy_categories:
        held, done = holders.get(category.code, 0), enrolled.get(category.code, 0)
        rate = percent(done, held)
        result.append(
            CategoryProgress(
                category=category.code,
                category_name=category.name,
                category_label=category.label,
                includes=category.includes,
                holders=held,
                enrolled=done,
                rate=rate,
                meets_target=None if rate is None else rate >= policy.targets.subsidised_percent,
            )
        )
    return result


def _total(
    policy: Policy,
    rows: list[ProgressRow],
    *,
    by_township: bool,
    basis: Literal["target", "enrolled_last_year"],
) -> ProgressRow:
    """The total row: each figure summed over the rows that give it (the printed totals are not sums)."""

    def summed(name: str) -> int | None:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return sum(values) if values else None

    holders: dict[str, int] = defaultdict(int)
    enrolled: dict[str, int] = defaultdict(int)
    for r in rows:
        for c in r.categories:
            holders[c.category] += c.holders
            enrolled[c.category] += c.enrolled
    return _figures(
        policy,
        unit="合计",
        kind=UnitKind.TOWNSHIP if by_township else UnitKind.REGION,
        region_code=None,
        in_baseline=True,
        figures={name: summed(name) for name in FIGURES},
        enrolled=sum(r.enrolled for r in rows),
        categories=_categories(policy, holders, enrolled),
        basis=basis,
    )


async def daily_payments(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int, *, as_of: date | None
) -> list[DailyPayments]:
    """Enrollments paid per business day from the window's opening to the day, every day listed."""
    policy = registry.policies.find(region_code, coverage_year)
    last = as_of or registry.clock.today()
    first = policy.enrollment_window.start
    paid = {
        day: (n, fen)
        for day, n, fen in await repository.daily_payments(
            session,
            [r.code for r in policy.regions],
            policy.coverage_year,
            business_day_bounds(first)[0],
            business_day_bounds(last)[1],
        )
    }
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [
        DailyPayments(day=d, enrolled=paid.get(d, (0, 0))[0], amount=format_fen(paid.get(d, (0, 0))[1]))
        for d in days
    ]
