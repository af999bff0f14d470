"""The registry's business figures for GET /metrics (shared/metrics.py): enrollments by status, region and
year and roster uploads by kind and status, read from the database; roster rows judged and applied, counted
as each chunk commits."""

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import Enrollment
from registry.roster.models import RosterUpload
from shared.metrics import PROCESS, Probe

ROSTER_ROWS_JUDGED = Counter(
    "canbao_roster_rows_judged",
    "Roster rows validated, by roster kind and verdict (accepted, rejected, held)",
    ["kind", "status"],
    registry=PROCESS,
)
ROSTER_ROWS_APPLIED = Counter(
    "canbao_roster_rows_applied", "Accepted roster rows applied, by roster kind", ["kind"], registry=PROCESS
)
ENROLLMENT_WAITERS = Gauge(
    "canbao_enrollment_waiters",
    "Requests of this process waiting for an enrollment to change (GET /v1/enrollments/{id}?wait_s=)",
    registry=PROCESS,
)


async def enrollments_probe(session: AsyncSession) -> list[Metric]:
    """参保进度 at a glance: enrollments by status (pending_payment, active, lapsed, cancelled), region
    code and coverage year. One grouped scan of the enrollments, at most once per metrics cache period."""
    rows = (
        await session.execute(
            select(
                Enrollment.status, Enrollment.region_code, Enrollment.coverage_year, func.count()
            ).group_by(Enrollment.status, Enrollment.region_code, Enrollment.coverage_year)
        )
    ).all()
    family = GaugeMetricFamily(
        "canbao_enrollments",
        "Enrollments by status, region code and coverage year",
        labels=["status", "region", "coverage_year"],
    )
    for status, region, year, count in sorted(rows):
        family.add_metric([str(status), region, str(year)], count)
    return [family]


async def rosters_probe(session: AsyncSession) -> list[Metric]:
    """Roster uploads (jobs) by kind and status, with their rows as counted on the uploads."""
    rows = (
        await session.execute(
            select(
                RosterUpload.kind,
                RosterUpload.status,
                func.count(),
                func.coalesce(func.sum(RosterUpload.rows_read), 0),
            ).group_by(RosterUpload.kind, RosterUpload.status)
        )
    ).all()
    uploads = GaugeMetricFamily(
        "canbao_roster_uploads", "Roster uploads by kind and status", labels=["kind", "status"]
    )
    rows_read = GaugeMetricFamily(
        "canbao_roster_upload_rows",
        "Rows read from the roster uploads, by kind and status",
        labels=["kind", "status"],
    )
    for kind, status, count, read in sorted(rows):
        uploads.add_metric([str(kind), str(status)], count)
        rows_read.add_metric([str(kind), str(status)], int(read))
    return [uploads, rows_read]


PROBES: list[Probe] = [enrollments_probe, rosters_probe]
