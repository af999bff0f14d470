"""Subsidy transfers (资助资金拨付): a department pays its share for many people at once. Collection
matches the money against what the department owes on the bills that stand, and says whether it was exact,
short or over. The people were confirmed when their bills were issued (the roster guarantees the money); the
transfer settles the department's receivable in the ledger."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from collection.idempotency import service as idempotency
from collection.ledger import accounts
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.transfers import repository
from collection.transfers.errors import NothingOwedByFunder, TransferReferenceUsed
from collection.transfers.models import SubsidyTransfer
from collection.transfers.schemas import CategoryOwed, FunderStatement, TransferCreate, TransferOut
from shared.clock import Clock


async def record(
    session: AsyncSession, clock: Clock, body: TransferCreate, key: str
) -> tuple[TransferOut, bool]:
    request = idempotency.Request.of("subsidy-transfers", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return TransferOut.model_validate(stored), True
    if await repository.by_reference(session, body.funder, body.reference) is not None:
        raise TransferReferenceUsed({"funder": body.funder, "reference": body.reference})
    current = await statement(session, body.funder, body.region_code, body.coverage_year)
    if current.owed == 0 and current.transferred == 0:
        # Money from a funder the books know nothing of is a mistake to send back, not income to keep.
        raise NothingOwedByFunder({"funder": body.funder, "region_code": body.region_code})
    transfer = SubsidyTransfer(
        id=str(uuid.uuid4()),
        funder=body.funder,
        region_code=body.region_code,
        coverage_year=body.coverage_year,
        amount_fen=body.amount,
        reference=body.reference,
        owed_before_fen=current.outstanding,
        recorded_by=body.recorded_by,
        received_at=clock.now(),
    )
    repository.add(session, transfer)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same reference recorded concurrently
        raise TransferReferenceUsed({"funder": body.funder, "reference": body.reference}) from exc
    ledger.post(
        session,
        TransactionKind.SUBSIDY_TRANSFER,
        transfer.id,
        transfer.received_at,
        {
            accounts.TREASURY: transfer.amount_fen,
            accounts.department_receivable(body.funder): -transfer.amount_fen,
        },
    )
    result = TransferOut.of(transfer)
    idempotency.remember(session, request, 201, result)
    return result, False


async def statement(
    session: AsyncSession, funder: str, region_code: str, coverage_year: int
) -> FunderStatement:
    categories = await repository.owed_by_category(session, funder, region_code, coverage_year)
    transfers = await repository.for_funder(session, funder, region_code, coverage_year)
    owed = sum(fen for *_, fen in categories)
    transferred = sum(t.amount_fen for t in transfers)
    return FunderStatement(
        funder=funder,
        region_code=region_code,
        coverage_year=coverage_year,
        owed=owed,
        transferred=transferred,
        outstanding=owed - transferred,
        by_category=[CategoryOwed(category=c, people=n, owed=fen) for c, n, fen in categories],
        transfers=[TransferOut.of(t) for t in transfers],
    )
