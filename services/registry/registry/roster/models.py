import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime, enum_column


class RosterKind(enum.StrEnum):
    """花名册 kinds departments send."""

    SUBSIDY = "subsidy"  # 资助参保人员花名册 (Jing 附件4)
    SUBSIDY_ADDITION = "subsidy_addition"  # 新增资助参保人员花名册 (附件6)
    SUBSIDY_REDUCTION = "subsidy_reduction"  # 资助参保人员减少花名册 (附件7)
    EMPLOYEE_INSURANCE = "employee_insurance"  # 职工医保参保名单: people who may not enroll
    STUDENT = "student"  # 学生(幼儿)花名册 from education: pupils of schools and kindergartens
    UNIVERSITY = "university"  # 高校学生批量参保: a university enrolls its students where they study
    HOUSEHOLD_REGISTRATION = "household_registration"  # 户籍人口数据 from public security, for screening


class UploadStatus(enum.StrEnum):
    PENDING = "pending"  # received, being validated
    VALIDATED = "validated"  # every row judged; waiting for the bureau's review
    APPLYING = "applying"  # approved; accepted rows being applied
    APPLIED = "applied"
    REJECTED = "rejected"  # the bureau refused the whole upload; nothing applied


class RowStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    HELD = "held"  # a suspected duplicate across sources: staff decide before the upload can be approved
    APPLIED = "applied"


class RosterUpload(Base):
    __tablename__ = "roster_uploads"
    __table_args__ = (Index("ix_roster_uploads_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The same file for the same purpose is the same upload: sending it twice changes nothing.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[RosterKind] = mapped_column(enum_column(RosterKind))
    region_code: Mapped[str] = mapped_column(String(6))
    coverage_year: Mapped[int] = mapped_column(Integer)
    policy_id: Mapped[str] = mapped_column(String(64))
    category_code: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(256))
    stored_path: Mapped[str] = mapped_column(String(512))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[UploadStatus] = mapped_column(enum_column(UploadStatus))
    position: Mapped[int] = mapped_column(
        BigInteger, default=0, doc="Last file line validated; resume after it"
    )
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_held: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[str | None] = mapped_column(Text, doc="Why the file as a whole could not be read")
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(256))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker holds an upload while it works on it; an expired lease lets another (or a restart) go on.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


ROWS_FILLFACTOR = 50


class RosterRow(Base):
    """One line of an upload, as read, with what validation found and what applying it did."""

    __tablename__ = "roster_rows"
    # Applying a row sets its status and outcome, neither indexed, and pages half filled keep room for the
    # row's new version beside the old: the update stays on its page and writes no index entry (a HOT update).
    # Rows by status are read in file order along the primary key.
    __table_args__ = (
        Index("ix_roster_rows_upload_id_number", "upload_id", "id_number"),
        {"postgresql_with": {"fillfactor": ROWS_FILLFACTOR}},
    )

    upload_id: Mapped[str] = mapped_column(ForeignKey("roster_uploads.id"), primary_key=True)
    row_no: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, doc="Line number in the file (header = 1)"
    )
    status: Mapped[RowStatus] = mapped_column(enum_column(RowStatus))
    id_number: Mapped[str | None] = mapped_column(String(32), doc="Normalised, when it was valid")
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    problems: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(64), doc="What applying the row did")
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="Why a held row looks like a duplicate")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(String(256))
