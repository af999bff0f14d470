from typing import Annotated

from fastapi import APIRouter, Query

from collection.ledger import service
from collection.ledger.schemas import BalanceList
from shared.auth import Role, allow
from shared.db import DbSession

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], dependencies=[allow(Role.TAX_OFFICER)])


@router.get(
    "/balances",
    summary="Account balances (debits minus credits)",
    description="Accounts: `resident_receivable`, `department_receivable:<funder>`, "
    "`channel_clearing:<channel>`, `resident_insurance_fiscal` (城乡居民医保财政专户). `prefix` narrows "
    "the list, e.g. `department_receivable:`.",
)
async def balances(
    session: DbSession, prefix: Annotated[str | None, Query(max_length=96)] = None
) -> BalanceList:
    return BalanceList(items=await service.balances(session, prefix=prefix))
