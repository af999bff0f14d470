from fastapi import APIRouter

from collection.books import service
from collection.books.schemas import LedgerCheck
from shared.auth import Role, allow
from shared.db import DbSession

# Under the ledger's path: the audit proves the ledger, though it reads every domain's records to do so.
router = APIRouter(prefix="/v1/ledger", tags=["ledger"], dependencies=[allow(Role.TAX_OFFICER)])


@router.get(
    "/check",
    summary="Prove the books: every transaction balances and the accounts agree with bills and payments",
)
async def check(session: DbSession) -> LedgerCheck:
    return await service.check(session)
