"""Rosters (花名册): intake, validation and application, in committed chunks that survive restarts.

Intake stores the file and checks its header at once (a file that cannot be read is refused and nothing is
kept). A worker then judges every row (pending -> validated). The bureau reviews the report and approves
or rejects the upload; approval lets the worker apply the accepted rows through the same paths single
requests use (subsidy assignment, enrollment, exclusion). Progress is in the database, so a killed process
resumes where its last committed chunk ended, and a lease keeps two workers off one upload.
"""

import asyncio
import contextlib
import hashlib
import shutil
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.enrollment import service as enrollments
from registry.enrollment.errors import AlreadyEnrolled
from registry.enrollment.schemas import EnrollmentCreate
from registry.exclusion import service as exclusions
from registry.exclusion.errors import ExclusionAlreadyRecorded
from registry.exclusion.models import ExclusionKind
from registry.metrics import ROSTER_ROWS_APPLIED, ROSTER_ROWS_JUDGED
from registry.people import service as people
from registry.people.models import DocumentType
from registry.people.schemas import PersonIn
from registry.policy.errors import UnknownSubsidyCategory
from registry.policy.models import EligibilityKind, Payer, Policy, SubsidyCategory
from registry.population import service as population
from registry.roster import repository
from registry.roster.errors import (
    RosterCategoryRequired,
    RosterFileInvalid,
    RosterHasHeldRows,
    RosterNotReviewable,
    RosterRowNotFound,
    RosterRowNotHeld,
    RosterTooLarge,
    RosterUploadNotFound,
)
from registry.roster.models import RosterKind, RosterRow, RosterUpload, RowStatus, UploadStatus
from registry.roster.reading import open_sheet, open_whole
from registry.roster.validation import (
    REQUIRED,
    REVIEWABLE,
    STUDENT_KINDS,
    SUBSIDY_KINDS,
    RowRules,
    duplicate_row,
    find_category,
    name_mismatch,
    not_held,
    on_employee_insurance,
    same_name_and_birth,
)
from registry.subsidy import repository as subsidies
from registry.subsidy import service as subsidy_service
from registry.subsidy.errors import SubsidyAlreadyAssigned
from registry.subsidy.schemas import AssignmentCreate
from shared import tabular
from shared.auth import OutsideArea
from shared.clock import utc_now
from shared.db import statistics_stale_after
from shared.errors import DomainError
from shared.logging import mask_id_number

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class UploadRequest:
    kind: RosterKind
    region_code: str
    coverage_year: int
    category: str | None
    department: str
    uploaded_by: str
    filename: str
    # A department's own categories: the file's categories must be among them. None: staff (any category).
    sender_categories: frozenset[str] | None = None


async def receive(
    session: AsyncSession,
    registry: enrollments.Registry,
    roster_dir: Path,
    request: UploadRequest,
    stream: IO[bytes],
    max_bytes: int,
) -> tuple[RosterUpload, bool]:
    """Store an uploaded file and register it; returns the upload and whether it is new. The same file for
    the same purpose returns the first upload: sending it twice changes nothing."""
    policy = registry.policies.find(request.region_code, request.coverage_year)
    category = None
    if request.category is not None:
        category = find_category(policy, request.category)
        if category is None:
            raise UnknownSubsidyCategory(
                {"category": request.category, "known": [c.code for c in policy.subsidy_categories]}
            )
    # A department sends its own categories, or its own kinds of roster (e.g. `student`); what a subsidy
    # roster holds without the field is known once the file is read.
    if category is not None or request.kind not in SUBSIDY_KINDS:
        _may_send(request, {category.code if category else request.kind.value})
    suffix = tabular.upload_suffix(request.filename, RosterFileInvalid)
    # File work runs in a thread: a large upload must not stall the event loop.
    digest, temp_path = await asyncio.to_thread(
        tabular.spool, stream, roster_dir, suffix, max_bytes, RosterTooLarge
    )
    fingerprint = hashlib.sha256(
        f"{digest}|{request.kind}|{request.region_code}|{request.coverage_year}|"
        f"{category.code if category else ''}".encode()
    ).hexdigest()
    try:
        existing = await repository.by_fingerprint(session, fingerprint)
        if existing is not None:
            _may_send(request, {existing.category_code or existing.kind.value})
            return existing, False
        sheet = await asyncio.to_thread(open_whole, temp_path, request.filename, REQUIRED[request.kind])
        if request.kind in SUBSIDY_KINDS and category is None and "category" not in sheet.columns:
            category = find_category(policy, sheet.sheet_category) if sheet.sheet_category else None
            if category is None:
                raise RosterCategoryRequired({"sheet_category": sheet.sheet_category})
        if request.kind in SUBSIDY_KINDS and request.sender_categories is not None:
            named = sheet.named_categories | ({sheet.sheet_category} if sheet.sheet_category else set())
            category = _department_category(policy, request, category, named)
        upload_id = str(uuid.uuid4())
        stored = roster_dir / f"{upload_id}{suffix}"
        upload = RosterUpload(
            id=upload_id,
            fingerprint=fingerprint,
            kind=request.kind,
            region_code=request.region_code,
            coverage_year=policy.coverage_year,
            policy_id=policy.policy_id,
            category_code=category.code if category else None,
            department=request.department,
            filename=request.filename,
            stored_path=str(stored),
            uploaded_by=request.uploaded_by,
            uploaded_at=registry.clock.now(),
            status=UploadStatus.PENDING,
            position=0,
            rows_read=0,
            rows_accepted=0,
            rows_rejected=0,
            rows_held=0,
            rows_applied=0,
        )
        repository.add(session, upload)
        await session.flush()
        await asyncio.to_thread(shutil.move, temp_path, stored)
        return upload, True
    finally:
        await asyncio.to_thread(temp_path.unlink, missing_ok=True)


def _may_send(request: UploadRequest, codes: set[str]) -> None:
    """A department sends rosters of its own categories (or kinds, e.g. `student`) only."""
    if request.sender_categories is None:
        return
    outside = sorted(codes - request.sender_categories)
    if outside:
        raise OutsideArea(
            {"category_codes": outside, "your_categories": sorted(request.sender_categories)},
            zh=f"花名册的人员类别（{'、'.join(outside)}）不在本部门负责的类别内（见 your_categories）；"
            "请只报送本部门负责的类别，其他类别由负责部门报送",
            en=f"The roster's categories ({', '.join(outside)}) are not among your department's "
            "(`your_categories`); send only your own, others are sent by the departments responsible",
        )


def _department_category(
    policy: Policy, request: UploadRequest, given: SubsidyCategory | None, named: set[str]
) -> SubsidyCategory:
    """A department's subsidy roster is judged by the categories in the file: the one given with the upload
    or in a 人员类别 title line, and every one its 人员类别 column names; all must be the department's. As the
    attachments lay rosters out (人员类别 per roster), one upload holds one category."""
    found = {c.code: c for c in (policy.find_category(text) for text in named) if c is not None}
    if given is not None:
        found[given.code] = given
    _may_send(request, set(found))
    if len(found) == 1:
        return next(iter(found.values()))
    raise RosterCategoryRequired(
        {"field": "category", "categories_in_file": sorted(found)},
        zh="部门报送的资助花名册每份一个人员类别（附件4-7 的“人员类别：”）：请填写 category 字段，"
        "或在表头上方写明“人员类别：…”，或在“人员类别”列中只填一个类别；多个类别请分别上传",
        en="A department's subsidy roster holds one category, as the attachments lay it out: give the "
        "`category` field, a 人员类别：… line above the header, or one category in the 人员类别 column; send "
        "several categories as several uploads",
    )


async def get(session: AsyncSession, upload_id: str) -> RosterUpload:
    upload = await repository.get(session, upload_id)
    if upload is None:
        raise RosterUploadNotFound({"upload_id": upload_id})
    return upload


async def review(
    session: AsyncSession,
    registry: enrollments.Registry,
    upload_id: str,
    by: str,
    approve: bool,
    note: str | None,
) -> RosterUpload:
    """The bureau's decision: approved uploads are applied, rejected ones never are."""
    upload = await get(session, upload_id)
    if upload.status is not UploadStatus.VALIDATED:
        raise RosterNotReviewable({"status": upload.status.value})
    if approve and upload.rows_held:
        raise RosterHasHeldRows({"rows_held": upload.rows_held})
    upload.status = UploadStatus.APPLYING if approve else UploadStatus.REJECTED
    upload.reviewed_by, upload.reviewed_at, upload.review_note = by, registry.clock.now(), note
    return upload


async def decide_held_row(
    session: AsyncSession, upload_id: str, row_no: int, accept: bool, by: str, note: str | None
) -> RosterRow:
    """A staff decision on a suspected duplicate: apply the row with the rest, or leave it out."""
    upload = await get(session, upload_id)
    row = await repository.row(session, upload_id, row_no)
    if row is None:
        raise RosterRowNotFound({"upload_id": upload_id, "row_no": row_no})
    if upload.status is not UploadStatus.VALIDATED or row.status is not RowStatus.HELD:
        raise RosterRowNotHeld({"status": row.status.value, "upload_status": upload.status.value})
    row.status = RowStatus.ACCEPTED if accept else RowStatus.REJECTED
    row.decided_by, row.decision_note = by, note
    upload.rows_held -= 1
    if accept:
        upload.rows_accepted += 1
    else:
        upload.rows_rejected += 1
    return row


def _status_of(problems: list[dict[str, str]]) -> RowStatus:
    if not problems:
        return RowStatus.ACCEPTED
    if all(p["code"] in REVIEWABLE for p in problems):
        return RowStatus.HELD
    return RowStatus.REJECTED


def _birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


class RosterWorker:
    """Validates and applies uploads in the background; `run_until_idle` does the same on demand."""

    def __init__(
        self,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        registry: Callable[[], enrollments.Registry],
        chunk_rows: int,
        owner: str | None = None,
    ):
        self._sessionmaker = sessionmaker
        self._registry = registry
        self._chunk_rows = chunk_rows
        # A dead worker's lease lapses after LEASE; a worker under the same owner name takes it at once.
        self._owner = owner or f"worker-{uuid.uuid4()}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database outage: try again later, progress is kept
                log.warning("roster_worker_failed", error=repr(exc))
                worked = False
            if not worked:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 2.0)

    async def run_until_idle(self, progress: Callable[[RosterUpload], None] | None = None) -> None:
        while await self.run_once(progress):
            pass

    async def run_once(self, progress: Callable[[RosterUpload], None] | None = None) -> bool:
        upload_id = await self._claim()
        if upload_id is None:
            return False
        async with self._sessionmaker()() as session:
            status = (await get(session, upload_id)).status
        if status is UploadStatus.PENDING:
            await self._validate(upload_id, progress)
        else:
            await self._apply(upload_id, progress)
        return True

    async def _claim(self) -> str | None:
        now = utc_now()
        async with self._sessionmaker()() as session, session.begin():
            for upload_id in await repository.claimable(session, self._owner, now):
                if await repository.take_lease(session, upload_id, self._owner, now, now + LEASE):
                    return upload_id
        return None

    async def _renew(self, session: AsyncSession, upload_id: str) -> None:
        now = utc_now()
        if not await repository.take_lease(session, upload_id, self._owner, now, now + LEASE):
            raise RuntimeError(f"lost the lease on roster upload {upload_id}")

    async def _validate(self, upload_id: str, progress: Callable[[RosterUpload], None] | None) -> None:
        registry = self._registry()
        async with self._sessionmaker()() as session:
            upload = await get(session, upload_id)
        policy = registry.policies.by_id(upload.policy_id)
        try:
            sheet = open_sheet(Path(upload.stored_path), upload.filename, REQUIRED[upload.kind])
        except (RosterFileInvalid, OSError) as exc:
            await self._fail(upload_id, str(getattr(exc, "details", None) or exc))
            return
        category = policy.category(upload.category_code) if upload.category_code else None
        if category is None and sheet.sheet_category:
            category = find_category(policy, sheet.sheet_category)
        row_rules = RowRules(
            upload.kind, policy, upload.region_code, category, sheet.headers, registry.clock.today()
        )
        batch: list[tuple[int, dict[str, str]]] = []
        chunks = 0
        try:
            for row_no, cells in sheet.rows:
                if row_no <= upload.position or not any(c.strip() for c in cells):
                    continue
                batch.append((row_no, sheet.values(cells)))
                if len(batch) >= self._chunk_rows:
                    upload = await self._judge_chunk(
                        upload_id, row_rules, batch, statistics_stale_after(chunks)
                    )
                    batch, chunks = [], chunks + 1
                    if progress:
                        progress(upload)
        except RosterFileInvalid as exc:
            await self._fail(upload_id, str(exc.details))
            return
        upload = await self._judge_chunk(upload_id, row_rules, batch, False, last=True)
        if progress:
            progress(upload)

    async def _judge_chunk(
        self,
        upload_id: str,
        row_rules: RowRules,
        batch: list[tuple[int, dict[str, str]]],
        refresh_statistics: bool,
        last: bool = False,
    ) -> RosterUpload:
        judged = [(row_no, row_rules.judge(values)) for row_no, values in batch]
        ids = sorted({j.id_number for _, j in judged if j.id_number})
        async with self._sessionmaker()() as session, session.begin():
            await self._renew(session, upload_id)
            if refresh_statistics:
                await repository.refresh_statistics(session)
            upload = await get(session, upload_id)
            earlier = await repository.earlier_rows(session, upload_id, ids)
            known = await repository.known_people(session, ids)
            held = await repository.held_categories(
                session, [p.id for p in known.values()], upload.coverage_year
            )
            namesakes = await repository.namesakes(
                session,
                [(j.values.get("name", ""), _birth_date(j.id_number)) for _, j in judged if j.id_number],
            )
            insured = (
                await repository.employee_insured(session, ids, upload.coverage_year)
                if upload.kind in SUBSIDY_KINDS
                else {}
            )
            records = []
            for row_no, row in judged:
                evidence: dict[str, Any] = {}
                if row.id_number:
                    person = known.get(row.id_number)
                    if person is not None and person.name != row.values.get("name"):
                        row.problems.append(name_mismatch(row_rules.column("name")))
                        evidence["registered_name"] = person.name
                    others = [
                        n
                        for n in namesakes.get((row.values.get("name", ""), _birth_date(row.id_number)), [])
                        if n != row.id_number
                    ]
                    if others:
                        row.problems.append(same_name_and_birth(row_rules.column("name")))
                        evidence["same_name_and_birth_date"] = [mask_id_number(n) for n in others]
                    if row.id_number in insured:
                        row.problems.append(on_employee_insurance(row_rules.column("id_number")))
                        evidence["employee_insurance"] = insured[row.id_number]
                    if row.id_number in earlier:
                        row.problems.append(
                            duplicate_row(row_rules.column("id_number"), earlier[row.id_number])
                        )
                    else:
                        earlier[row.id_number] = row_no
                    if (
                        upload.kind is RosterKind.SUBSIDY_REDUCTION
                        and "category_code" in row.values
                        and (person is None or (person.id, row.values["category_code"]) not in held)
                    ):
                        row.problems.append(not_held(row_rules.column("name")))
                status = _status_of(row.problems)
                records.append(
                    {
                        "upload_id": upload_id,
                        "row_no": row_no,
                        "status": status,
                        "id_number": row.id_number,
                        "values": row.values,
                        "problems": row.problems,
                        "outcome": None,
                        "evidence": evidence or None,
                        "decided_by": None,
                        "decision_note": None,
                    }
                )
            await repository.insert_rows(session, records)
            upload.rows_read += len(records)
            upload.rows_rejected += sum(1 for r in records if r["status"] is RowStatus.REJECTED)
            upload.rows_held += sum(1 for r in records if r["status"] is RowStatus.HELD)
            upload.rows_accepted += sum(1 for r in records if r["status"] is RowStatus.ACCEPTED)
            if batch:
                upload.position = batch[-1][0]
            if last:
                upload.status = UploadStatus.VALIDATED
                upload.validated_at = self._registry().clock.now()
                upload.lease_owner, upload.lease_until = None, None
        for verdict, count in Counter(str(r["status"]) for r in records).items():
            ROSTER_ROWS_JUDGED.labels(upload.kind.value, verdict).inc(count)
        return upload

    async def _fail(self, upload_id: str, reason: str) -> None:
        async with self._sessionmaker()() as session, session.begin():
            upload = await get(session, upload_id)
            upload.status, upload.failure = UploadStatus.REJECTED, reason
            upload.lease_owner, upload.lease_until = None, None

    async def _apply(self, upload_id: str, progress: Callable[[RosterUpload], None] | None) -> None:
        registry = self._registry()
        chunks = 0
        while True:
            async with self._sessionmaker()() as session, session.begin():
                await self._renew(session, upload_id)
                upload = await get(session, upload_id)
                if statistics_stale_after(chunks):
                    await repository.refresh_statistics(session)
                chunks += 1
                chunk = await repository.rows(session, upload_id, RowStatus.ACCEPTED, 0, self._chunk_rows)
                try:
                    async with session.begin_nested():
                        outcomes = await apply_rows(session, registry, upload, chunk)
                except AlreadyEnrolled:
                    # Someone enrolled one of these people while the chunk was applied: go row by row, so
                    # only that row says so.
                    outcomes = [await _apply_alone(session, registry, upload, row) for row in chunk]
                for row, outcome in zip(chunk, outcomes, strict=True):
                    row.outcome, row.status = outcome, RowStatus.APPLIED
                upload.rows_applied += len(chunk)
                if len(chunk) < self._chunk_rows:
                    upload.status = UploadStatus.APPLIED
                    upload.applied_at = registry.clock.now()
                    upload.lease_owner, upload.lease_until = None, None
            ROSTER_ROWS_APPLIED.labels(upload.kind.value).inc(len(chunk))
            if progress:
                progress(upload)
            if upload.status is UploadStatus.APPLIED:
                return


async def _apply_alone(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, row: RosterRow
) -> str:
    try:
        async with session.begin_nested():
            (outcome,) = await apply_rows(session, registry, upload, [row])
    except DomainError as exc:
        return f"refused:{exc.code}"
    return outcome


async def apply_rows(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, rows: list[RosterRow]
) -> list[str]:
    """What applying each row did. Rows go through the same rules single requests use, in bulk: a refusal
    is found before anything of that row is written, so one bad row leaves the others alone."""
    if upload.kind is RosterKind.EMPLOYEE_INSURANCE:
        return [await _refused_or(_exclude(session, registry, upload, row)) for row in rows]
    if upload.kind is RosterKind.SUBSIDY_REDUCTION:
        return [await _refused_or(_reduce(session, registry, upload, row)) for row in rows]
    if upload.kind in STUDENT_KINDS:
        return await _enroll_students(session, registry, upload, rows)
    if upload.kind is RosterKind.HOUSEHOLD_REGISTRATION:
        return await _record_residents(session, registry, upload, rows)
    by = upload.reviewed_by or upload.uploaded_by
    policy = registry.policies.by_id(upload.policy_id)
    # The main roster speaks for the status on its cut-off day; an addition without a date, for today.
    undated = policy.subsidy_rosters.cut_off if upload.kind is RosterKind.SUBSIDY else None
    assigned = await subsidy_service.assign_many(
        session,
        registry,
        within=frozenset({upload.region_code}),
        requests=[
            AssignmentCreate(
                person=_person_in(row),
                region_code=upload.region_code,
                coverage_year=upload.coverage_year,
                category=row.values["category_code"],
                evidence_ref=f"{upload.department} 花名册 {upload.id} 第{row.row_no}行",
                effective_date=date.fromisoformat(row.values["event_date"])
                if row.values.get("event_date")
                else undated,
                assigned_by=by,
                township=row.values.get("township") or None,
                village=row.values.get("village") or None,
                village_group=row.values.get("group") or None,
                note=row.values.get("note") or None,
                reason=row.values.get("reason") or None,
            )
            for row in rows
        ],
    )
    outcomes: list[str | None] = [
        f"refused:{r.code}"
        if isinstance(r, DomainError) and not isinstance(r, SubsidyAlreadyAssigned)
        else None
        for r in assigned
    ]
    waiting = [i for i, outcome in enumerate(outcomes) if outcome is None]
    holders = [
        subsidy_service.Holder(_person_in(rows[i]), rows[i].values.get("township") or None) for i in waiting
    ]
    enrolled = await subsidy_service.enroll_holders(session, registry, policy, upload.region_code, holders)
    for i, outcome in zip(waiting, enrolled, strict=True):
        outcomes[i] = outcome
    return [o or "" for o in outcomes]


async def _refused_or(work: Awaitable[str]) -> str:
    try:
        return await work
    except DomainError as exc:
        return f"refused:{exc.code}"


async def _enroll_students(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, rows: list[RosterRow]
) -> list[str]:
    """Students are enrolled on the roster's word; the policy says whether their school pays for them as one
    payer (a university for its batch) or each family pays."""
    policy = registry.policies.by_id(upload.policy_id)
    rosters = policy.student_rosters
    payer = rosters.university_payer if upload.kind is RosterKind.UNIVERSITY else rosters.school_payer
    by_school: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_school.setdefault(row.values.get("school") or upload.department, []).append(i)
    outcomes = [""] * len(rows)
    for school, indexes in by_school.items():
        requests = [
            EnrollmentCreate(
                **_person_in(rows[i]).model_dump(),
                region_code=upload.region_code,
                township=rows[i].values.get("township") or None,
                coverage_year=upload.coverage_year,
                basis=EligibilityKind.STUDENT,
            )
            for i in indexes
        ]
        results = await enrollments.enroll_many(
            session, registry, requests, payer_organisation=school if payer is Payer.ORGANISATION else None
        )
        for i, result in zip(indexes, results, strict=True):
            if isinstance(result, AlreadyEnrolled):
                outcomes[i] = "already_enrolled"
            elif isinstance(result, DomainError):
                outcomes[i] = f"refused:{result.code}"
            else:
                if upload.kind is RosterKind.UNIVERSITY:
                    result.university = school  # progress reports count them city-wide (大学生)
                outcomes[i] = "enrolled"
    return outcomes


async def _record_residents(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, rows: list[RosterRow]
) -> list[str]:
    today = registry.clock.today()
    found = await people.find_or_register_many(
        session, [(people.identify(_person_in(row), today), row.values["name"], None) for row in rows]
    )
    outcomes = [f"refused:{p.code}" if isinstance(p, DomainError) else "" for p in found]
    residences = [
        population.Residence(
            person,
            row.values.get("township") or None,
            row.values.get("village") or None,
            row.values.get("group") or None,
            f"{upload.department} {upload.id} 第{row.row_no}行",
            row.values.get("household_no") or None,
        )
        for row, person in zip(rows, found, strict=True)
        if not isinstance(person, DomainError)
    ]
    recorded = iter(
        await population.record_many(session, registry, upload.region_code, upload.coverage_year, residences)
    )
    return [outcome or next(recorded) for outcome in outcomes]


def _person_in(row: RosterRow) -> PersonIn:
    return PersonIn(id_number=row.values["id_number"], name=row.values["name"])


async def _exclude(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, row: RosterRow
) -> str:
    identity = people.identify(_person_in(row), registry.clock.today())
    try:
        await exclusions.record(
            session,
            registry.clock,
            identity,
            upload.coverage_year,
            ExclusionKind.EMPLOYEE_INSURANCE,
            f"{upload.department} 花名册 {upload.filename} 第{row.row_no}行",
            upload.reviewed_by or upload.uploaded_by,
        )
    except ExclusionAlreadyRecorded:
        return "already_excluded"
    return "excluded"


async def _reduce(
    session: AsyncSession, registry: enrollments.Registry, upload: RosterUpload, row: RosterRow
) -> str:
    values = row.values
    person = await people.find_known(session, DocumentType.RESIDENT_ID, values["id_number"], values["name"])
    assignment = await subsidies.find_active(
        session, person.id, upload.coverage_year, values["category_code"]
    )
    if assignment is None:
        return "not_held"
    _, outcome = await subsidy_service.remove(
        session,
        registry,
        assignment.id,
        upload.reviewed_by or upload.uploaded_by,
        values["reason"],
        within=frozenset({upload.region_code}),
    )
    return f"removed:{outcome}"
