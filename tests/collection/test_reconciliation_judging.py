"""The rules a file line is judged by (collection.reconciliation.judging), without a database: what it is
against the payment it names, which payment it finds by its bills, and why a payment could not be recorded
from it. The HTTP tests in test_reconciliation.py run the same rules end to end."""

from datetime import UTC, date, datetime

import pytest

from collection.billing.models import Bill, BillStatus
from collection.reconciliation.judging import Listed, Recorded, compare, paid_for_bills, refusal
from collection.reconciliation.models import LineState

DAY = date(2023, 10, 8)
TEN_AM = datetime(2023, 10, 8, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


def listed(amount_fen: int = 38000, paid_on: date = DAY, bills: tuple[str, ...] = ("b1",)) -> Listed:
    return Listed("WX1", amount_fen, paid_on, bills)


def recorded(
    *,
    settled: bool = False,
    amount_fen: int = 38000,
    paid_at: datetime = TEN_AM,
    bills: tuple[str, ...] = ("b1",),
    reference: str | None = "WX1",
    payment_id: str = "p1",
) -> Recorded:
    return Recorded(payment_id, amount_fen, paid_at, settled, reference, bills)


@pytest.mark.parametrize(
    ("line", "payment", "verdict"),
    [
        (listed(), recorded(), (LineState.MATCHED, "matched")),
        (listed(), recorded(settled=True), (LineState.DUPLICATE, "reconciled_by_other_line")),
        (listed(amount_fen=39000), recorded(), (LineState.AMOUNT_MISMATCH, "amount_differs")),
        (listed(bills=("b2",)), recorded(), (LineState.BILLS_MISMATCH, "bills_differ")),
        (listed(bills=()), recorded(), (LineState.MATCHED, "matched")),  # a file naming no bills
        (listed(paid_on=date(2023, 10, 9)), recorded(), (LineState.DATE_MISMATCH, "date_differs")),
        # 23:30 on the 8th in Beijing is the 8th, though it is the 8th's afternoon in UTC.
        (
            listed(),
            recorded(paid_at=datetime(2023, 10, 8, 15, 30, tzinfo=UTC)),
            (LineState.MATCHED, "matched"),
        ),
        # Settled first: a settled payment is a duplicate whatever else differs.
        (listed(amount_fen=1), recorded(settled=True), (LineState.DUPLICATE, "reconciled_by_other_line")),
    ],
)
def test_a_line_against_the_payment_it_names(
    line: Listed, payment: Recorded, verdict: tuple[LineState, str]
) -> None:
    assert compare(line, payment) == verdict


def test_a_payment_without_a_number_is_the_line_s_when_it_paid_exactly_its_bills() -> None:
    counter = recorded(reference=None, bills=("b1", "b2"))
    line = listed(bills=("b2", "b1"))
    assert paid_for_bills(line, {"b1": [counter], "b2": [counter]}, set()) == counter
    assert paid_for_bills(line, {"b1": [counter], "b2": [counter]}, {"p1"}) is None  # took another number
    assert paid_for_bills(listed(bills=("b1",)), {"b1": [counter]}, set()) is None  # paid more bills
    numbered = recorded(reference="TH9")
    assert paid_for_bills(listed(), {"b1": [numbered]}, set()) is None
    other = recorded(reference=None, payment_id="p2", bills=("b2",))
    line = listed(bills=("b1", "b2"))
    assert paid_for_bills(line, {"b1": [recorded(reference=None)], "b2": [other]}, set()) is None
    assert paid_for_bills(listed(), {}, set()) is None


def bill(bill_id: str, status: BillStatus = BillStatus.OPEN, *, due: int = 38000) -> Bill:
    return Bill(id=bill_id, status=status, amount_due_fen=due, payable_until=date(2023, 12, 31))


@pytest.mark.parametrize(
    ("line", "bills", "claimed", "refused"),
    [
        (listed(), {"b1": bill("b1")}, set(), None),
        (listed(bills=("b1", "b2")), {"b1": bill("b1")}, set(), "bill_not_found"),
        (listed(), {"b1": bill("b1")}, {"b1"}, "bill_already_paid"),  # an earlier line of the run pays it
        (listed(), {"b1": bill("b1", BillStatus.PAID)}, set(), "bill_already_paid"),
        (listed(), {"b1": bill("b1", BillStatus.CANCELLED)}, set(), "bill_cancelled"),
        (listed(paid_on=date(2024, 1, 1)), {"b1": bill("b1")}, set(), "payment_window_closed"),
        (listed(amount_fen=38001), {"b1": bill("b1")}, set(), "amount_mismatch"),
        (
            listed(amount_fen=56000, bills=("b1", "b2")),
            {"b1": bill("b1"), "b2": bill("b2", due=18000)},
            set(),
            None,
        ),
    ],
)
def test_why_a_payment_could_not_be_recorded_from_a_line(
    line: Listed, bills: dict[str, Bill], claimed: set[str], refused: str | None
) -> None:
    assert refusal(line, bills, claimed) == refused
