from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from collection.payments.errors import PaymentNotFound
from collection.receipts import service
from collection.receipts.schemas import ReceiptOut
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])


@router.get(
    "/{receipt_no}",
    summary="A payment's receipt (缴费单据), by its number",
    responses=error_responses(PaymentNotFound),
)
async def get_receipt(receipt_no: str, session: DbSession) -> ReceiptOut:
    return await service.receipt(session, receipt_no)


@router.get(
    "/{receipt_no}/print",
    summary="The receipt as a printable page in Chinese",
    response_class=HTMLResponse,
    responses=error_responses(PaymentNotFound, extra={200: {"content": {"text/html": {}}}}),
)
async def print_receipt(receipt_no: str, session: DbSession) -> HTMLResponse:
    return HTMLResponse(service.page(await service.receipt(session, receipt_no)))
