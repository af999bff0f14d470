"""The whole-books audit (账实核对): every ledger transaction balances, and each account agrees with the
records it summarises (bills, subsidy transfers, agents' cash and remittances, payments and their settlement,
refunds). It reads every domain's records, so it sits above them all; the ledger below knows none of them."""

from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents import repository as agents
from collection.billing import repository as bills
from collection.books.schemas import BillRefundProblem, LedgerCheck, Mismatch
from collection.ledger import accounts
from collection.ledger import repository as ledger
from collection.ledger.accounts import Channel
from collection.payments import repository as payments
from collection.refunds import repository as refunds
from collection.transfers import repository as transfers


async def check(session: AsyncSession) -> LedgerCheck:
    """Every transaction balances, each account agrees with the records it summarises, each payment is what
    its items put on bills, and each paid bill was settled by exactly one payment."""
    ledger_balances = dict(await ledger.balances(session))
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
        Mismatch(account=account, ledger=ledger_balances.get(account, 0), books=books.get(account, 0))
        for account in sorted(set(ledger_balances) | set(books))
        if ledger_balances.get(account, 0) != books.get(account, 0)
    ]
    unbalanced = [tid for tid, _ in await ledger.unbalanced(session)]
    transactions, entries = await ledger.counts(session)
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
