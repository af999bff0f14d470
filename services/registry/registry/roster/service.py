"""Rosters (花名册): intake and review.

Intake stores the file and checks its header at once (a file that cannot be read is refused and nothing is
kept). The worker (`roster.worker`) then judges every row (pending -> validated). The bureau reviews the
report, decides on rows held as suspected duplicates, and approves or rejects the upload; approval lets the
worker apply the accepted rows (`roster.apply`).
"""

import asyncio
import hashlib
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.policy.errors import UnknownSubsidyCategory
from registry.policy.models import Policy, SubsidyCategory
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
from registry.roster.reading import open_whole
from registry.roster.validation import REQUIRED, SUBSIDY_KINDS, find_category
from shared import tabular
from shared.auth import OutsideArea


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
    registry: Registry,
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
    registry: Registry,
    upload_id: str,
    *,
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
    session: AsyncSession, upload_id: str, row_no: int, *, accept: bool, by: str, note: str | None
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
