from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.exclusion.models import Exclusion, ExclusionKind
from registry.people.models import DocumentType
from shared import bulk


async def active_for(
    session: AsyncSession, document_type: DocumentType, number: str, coverage_year: int
) -> list[Exclusion]:
    query = select(Exclusion).where(
        Exclusion.document_type == document_type,
        Exclusion.document_number == number,
        Exclusion.coverage_year == coverage_year,
        Exclusion.removed_at.is_(None),
    )
    return list((await session.scalars(query.order_by(Exclusion.recorded_at))).all())


async def active_kinds(
    session: AsyncSession, documents: Sequence[tuple[DocumentType, str]], coverage_year: int
) -> dict[tuple[DocumentType, str], set[ExclusionKind]]:
    found: dict[tuple[DocumentType, str], set[ExclusionKind]] = {}
    numbers = sorted({number for _, number in documents})
    if not numbers:
        return found
    listed = Exclusion.__table__.c  # table columns: plain rows, without the ORM's loading
    query = select(listed.document_type, listed.document_number, listed.kind).where(
        bulk.among(session, listed.document_number, numbers),
        listed.coverage_year == coverage_year,
        listed.removed_at.is_(None),
    )
    for document_type, number, kind in (await session.execute(query)).all():
        found.setdefault((document_type, number), set()).add(kind)
    return found


async def find_active(
    session: AsyncSession, document_type: DocumentType, number: str, coverage_year: int, kind: ExclusionKind
) -> Exclusion | None:
    return next(
        (e for e in await active_for(session, document_type, number, coverage_year) if e.kind == kind), None
    )


async def get(session: AsyncSession, exclusion_id: str) -> Exclusion | None:
    return await session.get(Exclusion, exclusion_id)


def add(session: AsyncSession, exclusion: Exclusion) -> None:
    session.add(exclusion)
