"""Who may see which of collection's records: residents their own bills and the payments they made or that
paid their bills; tax officers everything on this side. Each check notes the person for the audit trail."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository as bills
from collection.billing.models import Bill
from collection.orders.models import PaymentOrder
from collection.payments.models import Payment
from shared.auth import Access, NotYourRecord


def bill(access: Access, record: Bill) -> None:
    access.require_own(record.id_number)
    access.touch(record.id_number, f"bill:{record.id}")


async def payment(session: AsyncSession, access: Access, record: Payment) -> None:
    numbers = list((await bills.id_numbers(session, [item.bill_id for item in record.items])).values())
    if access.is_resident and record.payer != access.principal.subject:
        access.require_own(*numbers)
    for number in numbers:
        access.touch(number, f"payment:{record.id}")


async def order_bills(
    session: AsyncSession, access: Access, bill_ids: list[str], *, read: Sequence[Bill] = ()
) -> None:
    """Notes whose bills a payment order is for (a resident may pay anyone's bill: 代缴); `read`: those
    bills as the request read them, not asked for again."""
    numbers = {bill.id: bill.id_number for bill in read}
    missing = [bill_id for bill_id in bill_ids if bill_id not in numbers]
    if missing:
        numbers |= await bills.id_numbers(session, missing)
    for bill_id, id_number in numbers.items():
        access.touch(id_number, f"bill:{bill_id}")


def order(access: Access, record: PaymentOrder) -> None:
    """A resident sees and acts on the payment orders they started; tax officers on every order."""
    if access.is_resident and record.created_by != access.principal.subject:
        raise NotYourRecord({"order_id": record.id})
    access.touch(None, f"payment_order:{record.id}")
