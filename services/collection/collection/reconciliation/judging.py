"""How a file line is judged, in one place and without the database: against the payment its transaction
number names, else against the one payment that settled exactly its bills, else as a payment to record from
the file (or the refusal recording it would get). The service gathers the facts for thousands of lines at a
time and writes the outcomes in bulk."""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime

from collection.billing.errors import BillNotFound
from collection.billing.models import Bill
from collection.payments import service as payments
from collection.payments.errors import AmountMismatch, BillAlreadyPaid
from collection.reconciliation.models import LineState
from shared.clock import business_date
from shared.errors import DomainError


@dataclass(frozen=True, slots=True)
class Listed:
    """What a file line says: the channel's transaction, its money, its day and the bills it names."""

    reference: str
    amount_fen: int
    paid_on: date
    bill_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One of collection's payments, as a file line is judged against it."""

    id: str
    amount_fen: int
    paid_at: datetime
    settled: bool
    channel_reference: str | None
    bill_ids: tuple[str, ...]  # in the payment's order


Verdict = tuple[LineState, str]
RECORDED: Verdict = (LineState.RECORDED, "recorded_from_file")
SETTLED_BY_OTHER: Verdict = (LineState.DUPLICATE, "reconciled_by_other_line")
BILLS_NOT_NAMED: Verdict = (LineState.UNRECORDABLE, "bills_not_named")


def compare(line: Listed, payment: Recorded) -> Verdict:
    """A file line against the payment it reports."""
    if payment.settled:
        return SETTLED_BY_OTHER
    if payment.amount_fen != line.amount_fen:
        return LineState.AMOUNT_MISMATCH, "amount_differs"
    if line.bill_ids and set(line.bill_ids) != set(payment.bill_ids):
        return LineState.BILLS_MISMATCH, "bills_differ"
    if business_date(payment.paid_at) != line.paid_on:
        return LineState.DATE_MISMATCH, "date_differs"
    return LineState.MATCHED, "matched"


def paid_for_bills(
    line: Listed, by_bill: Mapping[str, Iterable[Recorded]], taken: Set[str]
) -> Recorded | None:
    """A payment recorded without the channel's transaction number (at a counter, say) is the line's when it
    settled exactly the line's bills on the line's channel; it takes the number then. `taken`: payments that
    took another line's number in this run."""
    candidates = {p.id: p for bill_id in line.bill_ids for p in by_bill.get(bill_id, ())}
    if len(candidates) != 1:
        return None
    [payment] = candidates.values()
    if payment.channel_reference is not None or payment.id in taken:
        return None
    return payment if set(payment.bill_ids) == set(line.bill_ids) else None


def refusal(line: Listed, bills: Mapping[str, Bill], claimed: Set[str]) -> str | None:
    """Why a payment of the line's bills could not be recorded (None: it can), as the payment API would
    refuse it: an unknown bill, then each bill's state and window, then the amount. `bills`: the line's bills
    as locked; `claimed`: bills an earlier line of this run records."""
    missing = [bill_id for bill_id in line.bill_ids if bill_id not in bills]
    if missing:
        return BillNotFound.code
    try:
        for bill_id in line.bill_ids:
            if bill_id in claimed:
                raise BillAlreadyPaid({"bill_id": bill_id})
            payments.check_payable(bills[bill_id], line.paid_on)
    except DomainError as refused:
        return refused.code
    if sum(bills[bill_id].amount_due_fen for bill_id in line.bill_ids) != line.amount_fen:
        return AmountMismatch.code
    return None
