"""The operators' dashboard (参保工作看板): progress against the coverage target, subsidised groups against
应保尽保, payments per day, and screening follow-up per township, drawn server-side (no script, no CDN)."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.policy.models import Policy
from registry.progress import service as progress
from registry.progress.schemas import DailyPayments, ProgressReport
from registry.screening import service as screening
from registry.screening.models import FollowUpState
from registry.screening.report import STATE_NAMES

DAYS_SHOWN = 60


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal | None  # percent
    detail: str
    meets: bool | None


@dataclass(frozen=True)
class Column:
    day: date
    count: int
    amount: str
    height: float  # share of the tallest day, 0..1


@dataclass(frozen=True)
class FollowUpRow:
    place: str
    counts: list[int]
    open: int
    open_aged_60_plus: int
    open_students: int
    total: int


@dataclass(frozen=True)
class Dashboard:
    policy: Policy
    region_code: str
    report: ProgressReport
    units: list[Bar]
    groups: list[Bar]
    days: list[Column]
    paid_in_window: int
    state_names: list[str]
    follow_up: list[FollowUpRow]
    follow_up_total: FollowUpRow


async def build(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int, *, as_of: date | None
) -> Dashboard:
    report = await progress.progress(session, registry, region_code, coverage_year, as_of=as_of)
    policy = registry.policies.find(region_code, coverage_year)
    units = [
        Bar(r.unit, r.rate_of_target, f"{r.enrolled:,} 人", r.meets_target)
        for r in report.rows
        if r.in_baseline
    ]
    units += [
        Bar(r.unit, None, f"{r.enrolled:,} 人（不在基础数据表中）", None)
        for r in report.rows
        if not r.in_baseline
    ]
    groups = [
        Bar(c.category_label, c.rate, f"{c.enrolled:,} / {c.holders:,} 人", c.meets_target)
        for c in report.categories
    ]
    follow_up, follow_up_total = await _follow_up(session, registry, policy)
    daily = await progress.daily_payments(session, registry, region_code, coverage_year, as_of=report.as_of)
    return Dashboard(
        policy=policy,
        region_code=region_code,
        report=report,
        units=units,
        groups=groups,
        days=_columns(daily[-DAYS_SHOWN:]),
        paid_in_window=sum(d.enrolled for d in daily),
        state_names=[STATE_NAMES[s] for s in FollowUpState],
        follow_up=follow_up,
        follow_up_total=follow_up_total,
    )


def _columns(daily: list[DailyPayments]) -> list[Column]:
    tallest = max((d.enrolled for d in daily), default=0) or 1
    return [Column(d.day, d.enrolled, d.amount, d.enrolled / tallest) for d in daily]


async def _follow_up(
    session: AsyncSession, registry: Registry, policy: Policy
) -> tuple[list[FollowUpRow], FollowUpRow]:
    """Every township with cases (and every one the policy lists), in every region of the policy."""
    rows: list[FollowUpRow] = []
    totals = [0] * (len(FollowUpState) + 4)
    several = len(policy.regions) > 1
    for region in policy.regions:
        summary = await screening.summary(session, registry, region.code, policy.coverage_year)
        listed = {t.name for t in policy.townships if t.region_code == region.code}
        for r in summary.rows:
            if r.total == 0 and r.township not in listed:
                continue
            counts = [r.states[s] for s in FollowUpState]
            row = FollowUpRow(
                f"{region.name} · {r.township}" if several else r.township,
                counts,
                r.open,
                r.open_aged_60_plus,
                r.open_students,
                r.total,
            )
            rows.append(row)
            for i, n in enumerate([*counts, r.open, r.open_aged_60_plus, r.open_students, r.total]):
                totals[i] += n
    states = len(FollowUpState)
    open_, elderly, students, total = totals[states:]
    return rows, FollowUpRow("合计", totals[:states], open_, elderly, students, total)
