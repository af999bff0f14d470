"""Receipts (缴费单据): one per payment, looked up by its number, as JSON or a printable page in Chinese."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents import repository as agents
from collection.billing import repository as bills
from collection.billing.models import Bill
from collection.ledger.accounts import Channel
from collection.payments import repository as payments
from collection.payments.errors import PaymentNotFound
from collection.receipts.schemas import ReceiptLine, ReceiptOut
from collection.receipts.words import in_words
from shared.clock import BUSINESS_TZ, business_date
from shared.logging import mask_id_number
from shared.money import format_fen

CHANNEL_NAMES = {
    Channel.WECHAT: "微信",
    Channel.ALIPAY: "支付宝",
    Channel.PROVINCIAL_APP: "省级政务服务平台",
    Channel.TAX_HALL: "办税服务厅",
    Channel.CASH: "现金",
    Channel.BANK: "银行",
    Channel.AGENT: "代收代缴",
    Channel.SUBSIDY: "资助参保（个人无需缴费）",
}

_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


async def receipt(session: AsyncSession, receipt_no: str) -> ReceiptOut:
    payment = await payments.by_receipt_no(session, receipt_no)
    if payment is None:
        raise PaymentNotFound({"receipt_no": receipt_no})
    settled = await bills.get_many(session, [item.bill_id for item in payment.items])
    agent = await agents.get(session, payment.agent_id) if payment.agent_id else None
    return ReceiptOut(
        receipt_no=payment.receipt_no,
        payment_id=payment.id,
        paid_at=payment.paid_at,
        paid_on=business_date(payment.paid_at),
        channel=payment.channel,
        channel_name=CHANNEL_NAMES[payment.channel],
        agent_name=agent.name if agent else None,
        amount=payment.amount_fen,
        amount_in_words=in_words(payment.amount_fen),
        lines=[_line(settled[item.bill_id], item.amount_fen) for item in payment.items],
    )


def _line(bill: Bill, amount_fen: int) -> ReceiptLine:
    return ReceiptLine(
        payer_name=bill.payer_name,
        id_number_masked=mask_id_number(bill.id_number),
        region_code=bill.region_code,
        coverage_year=bill.coverage_year,
        coverage_end=bill.coverage_end,
        amount=amount_fen,
    )


def page(receipt: ReceiptOut) -> str:
    return _pages.get_template("receipt.html").render(
        receipt=receipt,
        paid_at=receipt.paid_at.astimezone(BUSINESS_TZ).strftime("%Y年%m月%d日 %H:%M:%S"),
        yuan=format_fen,
    )
