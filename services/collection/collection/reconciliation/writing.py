"""A run's outcomes, gathered a chunk of lines at a time and written in bulk: the lines and their history,
payments settled into the treasury (a conditional update: one settled meanwhile by another run is a
duplicate here), payments recorded from the file with their bills, ledger transactions and confirmations,
each as a few statements rather than an object flushed per line."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from collection import metrics
from collection.billing import repository as bills
from collection.billing.models import Bill
from collection.database import OutboxMessage
from collection.ledger import repository as ledger_rows
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.payments import repository as payment_rows
from collection.payments import service as payments
from collection.payments.models import PaymentOrigin
from collection.reconciliation import repository
from collection.reconciliation.errors import TransitionNotAllowed
from collection.reconciliation.judging import RECORDED, SETTLED_BY_OTHER, Listed, Recorded, Verdict
from collection.reconciliation.models import TRANSITIONS, LineSource, LineState, ReconciliationRun, moment
from shared import bulk
from shared.clock import business_date
from shared.events import COLLECTION_PAYMENTS, Envelope, PaymentConfirmed, new_envelope
from shared.outbox import enqueue_many

SETTLING = frozenset({LineState.MATCHED, LineState.RECORDED, LineState.ACCEPTED})


@dataclass(frozen=True, slots=True)
class Line:
    """A file line to judge: what its file says, and the stored line it is (None: a new one)."""

    listed: Listed
    run_id: str
    line_no: int | None
    paid_at: datetime | None  # when the file gives the time of day
    stored: tuple[int, LineState, str] | None  # id, state, reason


class Writer:
    """One run's changes: `judged`, `record`, `missing` and `moved` gather a chunk's; `write` writes them."""

    def __init__(self, session: AsyncSession, now: datetime, run: ReconciliationRun):
        self.session, self.now, self.run = session, now, run
        self.channel, self.day = run.channel, run.business_day
        self.changes: Counter[str] = Counter()
        self.taken: set[str] = set()  # payments that took a line's transaction number in this run
        self._ids = bulk.new_ids()
        self._reset()

    def _reset(self) -> None:
        self._judged: list[tuple[Line, Verdict, Recorded | None]] = []
        self._references: list[tuple[str, str]] = []
        self._payments: list[tuple[Any, ...]] = []
        self._items: list[tuple[Any, ...]] = []
        self._paid_bills: list[str] = []
        self._new_payments: set[str] = set()
        self._events: list[Envelope] = []
        self._transactions: list[tuple[Any, ...]] = []
        self._entries: list[tuple[Any, ...]] = []
        self._new: dict[LineSource, list[tuple[Any, ...]]] = {LineSource.FILE: [], LineSource.RECORDS: []}
        self._new_moves: dict[LineSource, list[tuple[str, LineState, str]]] = {
            LineSource.FILE: [],
            LineSource.RECORDS: [],
        }
        self._updates: list[dict[str, Any]] = []
        self._moves: dict[tuple[LineState, str], list[int]] = {}
        self._transitions: list[tuple[Any, ...]] = []

    def kept(self) -> None:
        """A closed line the file lists again: left as it is."""
        self.changes["kept"] += 1

    def judged(self, line: Line, verdict: Verdict, payment: Recorded | None) -> None:
        self._judged.append((line, verdict, payment))

    def take_reference(self, payment: Recorded, reference: str) -> None:
        self.taken.add(payment.id)
        self._references.append((payment.id, reference))

    def record(self, line: Line, to_pay: Sequence[Bill]) -> None:
        """The line's payment, never recorded, recorded as the channel took it (its time and number) and
        confirmed to the registry: the same rows `payments.record_found` writes."""
        at, payment_id = moment(line.paid_at, line.listed.paid_on), next(self._ids)
        amount = sum(bill.amount_due_fen for bill in to_pay)
        receipt_no = payments.receipt_no(at)
        reference, channel = line.listed.reference, self.channel
        self._payments.append(
            (payment_id, amount, channel, receipt_no, at, reference, PaymentOrigin.RECONCILIATION, self.now)
        )
        for position, bill in enumerate(to_pay):
            self._items.append((payment_id, bill.id, bill.enrollment_id, bill.amount_due_fen, position))
            self._paid_bills.append(bill.id)
            confirmed = PaymentConfirmed(
                payment_id=payment_id,
                bill_id=bill.id,
                enrollment_id=bill.enrollment_id,
                amount_fen=bill.amount_due_fen,
                price_version=bill.price_version,
                channel=channel.value,
                receipt_no=receipt_no,
                paid_at=at,
            )
            self._events.append(new_envelope(payments.SOURCE, bill.enrollment_id, confirmed, time=at))
        self._post(TransactionKind.PAYMENT, payment_id, at, ledger.paid(channel, amount))
        metrics.payment_recorded(self.session, channel, amount)
        self._new_payments.add(payment_id)
        bill_ids = tuple(bill.id for bill in to_pay)
        self.judged(line, RECORDED, Recorded(payment_id, amount, at, False, reference, bill_ids))

    def missing(self, payment: Recorded) -> None:
        """A payment of the day the file does not list becomes a line of its own."""
        self._new[LineSource.RECORDS].append(
            (
                self.channel,
                self.day,
                LineSource.RECORDS,
                payment.id,
                self.run.id,
                None,
                None,
                None,
                None,
                list(payment.bill_ids),
                payment.id,
                payment.amount_fen,
                business_date(payment.paid_at),
                LineState.MISSING_FROM_FILE,
                "not_in_file",
                self.now,
            )
        )
        self._new_moves[LineSource.RECORDS].append((payment.id, LineState.MISSING_FROM_FILE, "not_in_file"))
        self.changes[LineState.MISSING_FROM_FILE.value] += 1

    def moved(self, line_id: int, state: LineState, to: LineState, reason: str) -> None:
        """A stored line moves on without being judged against the file (withdrawn, found)."""
        _allowed(line_id, state, to)
        self._moves.setdefault((to, reason), []).append(line_id)
        self._transitions.append(self._transition(line_id, state, to, reason))
        self.changes[to.value] += 1

    async def write(self) -> None:
        """Write what was gathered, each kind of row in one statement, rows referred to before those referring
        to them; a line whose payment another transaction settled first becomes a duplicate here."""
        session = self.session
        settling = {
            p.id for _, (to, _), p in self._judged if p and to in SETTLING and p.id not in self._new_payments
        }
        won = await payment_rows.settle_many(session, sorted(settling), self.now)
        await payment_rows.take_references(session, self._references)
        await payment_rows.insert_many(session, self._payments, self._items)
        # The bills were locked when they were found payable: each is still open.
        if await bills.settle_many_by_items(session, self._paid_bills) != len(self._paid_bills):
            raise RuntimeError("a locked bill changed under its lock")
        for line, verdict, payment in self._judged:
            lost = payment is not None and payment.id in settling and payment.id not in won
            self._apply(line, SETTLED_BY_OTHER if lost else verdict, payment)
        for source, rows in self._new.items():
            ids = await repository.insert_lines(session, self.channel, self.day, source, rows)
            for reference, to, reason in self._new_moves[source]:
                self._transitions.append(self._transition(ids[reference], None, to, reason))
        await repository.update_file_lines(session, self._updates)
        for (to, reason), line_ids in self._moves.items():
            await repository.move_lines(session, line_ids, to, reason, self.now)
        await repository.insert_transitions(session, self._transitions)
        await ledger_rows.insert_many(session, self._transactions, self._entries)
        await enqueue_many(session, OutboxMessage, COLLECTION_PAYMENTS, self._events)
        self._reset()

    def _apply(self, line: Line, verdict: Verdict, payment: Recorded | None) -> None:
        """A judged file line's new row (or its stored row's update) and its move, if it moved."""
        to, reason = verdict
        stored = line.stored
        unchanged = stored is not None and stored[1] is to and stored[2] == reason
        if unchanged:
            self.changes["unchanged"] += 1
        else:
            _allowed(stored[0] if stored else None, stored[1] if stored else None, to)
            self.changes[to.value] += 1
            if stored is None:
                self._new_moves[LineSource.FILE].append((line.listed.reference, to, reason))
            else:
                self._transitions.append(self._transition(stored[0], stored[1], to, reason))
            if to in SETTLING:
                assert payment is not None
                self._post(
                    TransactionKind.CHANNEL_SETTLEMENT,
                    payment.id,
                    self.now,
                    ledger.settled(self.channel, payment.amount_fen),
                )
        recorded = (
            (payment.id, payment.amount_fen, business_date(payment.paid_at))
            if payment
            else (None, None, None)
        )
        listed = line.listed
        file_data = (
            line.run_id,
            line.line_no,
            listed.amount_fen,
            listed.paid_on,
            line.paid_at,
            list(listed.bill_ids),
        )
        if stored is None:
            self._new[LineSource.FILE].append(
                (
                    self.channel,
                    self.day,
                    LineSource.FILE,
                    listed.reference,
                    *file_data,
                    *recorded,
                    to,
                    reason,
                    self.now,
                )
            )
            return
        names = ("run_id", "line_no", "file_amount_fen", "file_paid_on", "file_paid_at", "bill_ids")
        self._updates.append(
            {f"b_{name}": value for name, value in zip(names, file_data, strict=True)}
            | {
                "b_id": stored[0],
                "b_payment_id": recorded[0],
                "b_recorded_amount_fen": recorded[1],
                "b_recorded_on": recorded[2],
                "b_state": to,
                "b_reason": reason,
                "b_updated_at": None if unchanged else self.now,
            }
        )

    def _transition(
        self, line_id: int, from_state: LineState | None, to: LineState, reason: str
    ) -> tuple[Any, ...]:
        return (line_id, self.run.id, from_state, to, reason, self.run.started_by, self.now)

    def _post(self, kind: TransactionKind, reference: str, at: datetime, amounts: dict[str, int]) -> None:
        """One balanced ledger transaction, as `ledger.post` makes it."""
        entries = [(account, fen) for account, fen in sorted(amounts.items()) if fen]
        if not entries:
            return
        if sum(fen for _, fen in entries) != 0:
            raise ledger.UnbalancedTransaction(f"{kind} {reference}: {amounts}")
        transaction_id = next(self._ids)
        self._transactions.append((transaction_id, kind, reference, at))
        self._entries.extend((transaction_id, account, fen) for account, fen in entries)


def _allowed(line_id: int | None, state: LineState | None, to: LineState) -> None:
    if to not in TRANSITIONS.get(state, frozenset()):
        raise TransitionNotAllowed({"line_id": line_id, "state": state, "to": to.value})
