"""A double-entry ledger: every money movement is one transaction whose entries sum to zero.

Contributions become due when a bill is issued (the person's share on the resident receivable, each subsidy on
its funder's receivable, against the fiscal account they are due to); payments move money from a receivable
into a channel's clearing account, and reconciliation with the tax side's files settles it into the treasury.
`check` proves every transaction balances and that the balances agree with the records they come from."""

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents import repository as agents
from collection.billing import repository as bills
from collection.ledger import accounts, repository
from collection.ledger.models import LedgerEntry, LedgerTransaction, TransactionKind
from collection.ledger.schemas import AccountBalance, BillRefundProblem, LedgerCheck, Mismatch
from collection.payments import repository as payments
from collection.payments.models import Channel
from collection.refunds import repository as refunds
from collection.transfers import repository as transfers


class UnbalancedTransaction(ValueError):
    """A programming error: a money movement whose entries do not sum to zero is never written."""


def post(
    session: AsyncSession, kind: TransactionKind, reference: str, at: datetime, amounts: Mapping[str, int]
) -> LedgerTransaction | None:
    """Record one balanced movement (account -> fen, debit positive); nothing when every amount is zero."""
    entries = [
        LedgerEntry(account=account, amount_fen=fen) for account, fen in sorted(amounts.items()) if fen
    ]
    if not entries:
        return None
    if sum(e.amount_fen for e in entries) != 0:
        raise UnbalancedTransaction(f"{kind} {reference}: {dict(amounts)}")
    transaction = LedgerTransaction(
        id=str(uuid.uuid4()), kind=kind, reference=reference, occurred_at=at, entries=entries
    )
    repository.add(session, transaction)
    return transaction


def due(resident_fen: int, by_funder: Mapping[str, int]) -> dict[str, int]:
    """Contributions becoming due (negated: no longer due): receivables up, the fiscal account credited."""
    amounts = {accounts.RESIDENT_RECEIVABLE: resident_fen}
    for funder, fen in by_funder.items():
        amounts[accounts.department_receivable(funder)] = (
            amounts.get(accounts.department_receivable(funder), 0) + fen
        )
    amounts[accounts.FISCAL_ACCOUNT] = -sum(amounts.values())
    return amounts


def change(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The movement that takes the books from one set of amounts to another (a new price, say)."""
    return {a: after.get(a, 0) - before.get(a, 0) for a in set(before) | set(after)}


def paid(channel: Channel, fen: int, agent_id: str | None = None) -> dict[str, int]:
    """Money in: into the agent's cash when an agent collected it, else into the channel's clearing."""
    return {accounts.money_in(channel, agent_id): fen, accounts.RESIDENT_RECEIVABLE: -fen}


def settled(channel: Channel, fen: int) -> dict[str, int]:
    """A channel's money confirmed by the tax side's payment file reaches the treasury."""
    return {accounts.TREASURY: fen, accounts.channel_clearing(channel): -fen}


async def balances(session: AsyncSession, prefix: str | None = None) -> list[AccountBalance]:
    return [AccountBalance(account=a, balance=fen) for a, fen in await repository.balances(session, prefix)]


async def check(session: AsyncSession) -> LedgerCheck:
    """Every transaction balances, each account agrees with the records it summarises, each payment is what
    its items put on bills, and each paid bill was settled by exactly one payment."""
    ledger = dict(await repository.balances(session, None))
    books: dict[str, int] = {accounts.RESIDENT_RECEIVABLE: await bills.open_due_total(session)}
    for funder, fen in (await bills.subsidy_totals(session)).items():
        books[accounts.department_receivable(funder)] = fen
    transferred = await transfers.totals_by_funder(session)
    for funder, fen in transferred.items():
        account = accounts.department_receivable(funder)
        books[account] = books.get(account, 0) - fen
    remitted = await agents.remitted(session)
    for agent_id, fen in (await agents.collected(session)).items():
        books[accounts.agent_cash(agent_id)] = fen - remitted.get(agent_id, 0)
    settled = await payments.settled_by_channel(session)
    books[accounts.TREASURY] = sum(transferred.values()) + sum(remitted.values()) + sum(settled.values())
    for channel, fen in (await payments.totals_by_channel(session)).items():
        if channel not in (Channel.SUBSIDY, Channel.AGENT):
            books[accounts.channel_clearing(channel)] = fen - settled.get(channel, 0)
    for account, fen in (await refunds.totals_by_account(session)).items():
        books[account] = books.get(account, 0) - fen
    books[accounts.FISCAL_ACCOUNT] = -sum(books.values())
    mismatches = [
        Mismatch(account=account, ledger=ledger.get(account, 0), books=books.get(account, 0))
        for account in sorted(set(ledger) | set(books))
        if ledger.get(account, 0) != books.get(account, 0)
    ]
    unbalanced = [tid for tid, _ in await repository.unbalanced(session)]
    transactions, entries = await repository.counts(session)
    payments_off = await payments.payments_not_matching_items(session)
    bills_off = await payments.bills_not_settled_once(session)
    refunds_off = [
        BillRefundProblem(bill_id=bill_id, problem=problem, paid=paid, refunded=refunded)
        for bill_id, problem, paid, refunded in await refunds.bills_with_refund_problems(session)
    ]
    return LedgerCheck(
        ok=not (mismatches or unbalanced or payments_off or bills_off or refunds_off),
        transactions=transactions,
        entries=entries,
        unbalanced_transactions=unbalanced,
        mismatches=mismatches,
        payments_not_matching_items=payments_off,
        bills_not_settled_once=bills_off,
        bill_refund_problems=refunds_off,
    )
