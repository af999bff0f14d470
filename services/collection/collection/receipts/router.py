from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from collection import access as area
from collection.payments import repository as payments
from collection.payments.errors import PaymentNotFound
from collection.receipts import service
from collection.receipts.schemas import ReceiptOut
from shared.auth import AREA_ERRORS, Access, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])


@router.get(
    "/{receipt_no}",
    summary="A payment's receipt (缴费单据), by its number",
    responses=error_responses(PaymentNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def get_receipt(receipt_no: str, session: DbSession, access: CurrentAccess) -> ReceiptOut:
    return await _receipt(session, access, receipt_no)


@router.get(
    "/{receipt_no}/print",
    summary="The receipt as a printable page in Chinese",
    response_class=HTMLResponse,
    responses=error_responses(PaymentNotFound, *AREA_ERRORS, extra={200: {"content": {"text/html": {}}}}),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def print_receipt(receipt_no: str, session: DbSession, access: CurrentAccess) -> HTMLResponse:
    return HTMLResponse(service.page(await _receipt(session, access, receipt_no)))


async def _receipt(session: DbSession, access: Access, receipt_no: str) -> ReceiptOut:
    payment = await payments.by_receipt_no(session, receipt_no)
    if payment is not None:
        await area.payment(session, access, payment)
    return await service.receipt(session, receipt_no)
