"""A double-entry ledger: every money movement is one transaction whose entries sum to zero.

Contributions become due when a bill is issued (the person's share on the resident receivable, each subsidy on
its funder's receivable, against the fiscal account they are due to); payments move money from a receivable
into a channel's clearing account, and reconciliation with the tax side's files settles it into the treasury.
The ledger is the ground floor: every domain posts to it and it knows none of them (the whole-books audit,
which reads them all, is `collection.books`)."""

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from collection.ledger import accounts, repository
from collection.ledger.accounts import Channel
from collection.ledger.models import LedgerEntry, LedgerTransaction, TransactionKind
from collection.ledger.schemas import AccountBalance


class UnbalancedTransaction(ValueError):
    """A programming error: a money movement whose entries do not sum to zero is never written."""


def post(
    session: AsyncSession, kind: TransactionKind, reference: str, at: datetime, amounts: Mapping[str, int]
) -> LedgerTransaction | None:
    """Record one balanced movement (account -> fen, debit positive); nothing when every amount is zero."""
    lines = entries(kind, reference, amounts)
    if not lines:
        return None
    transaction = LedgerTransaction(
        id=str(uuid.uuid4()),
        kind=kind,
        reference=reference,
        occurred_at=at,
        entries=[LedgerEntry(account=account, amount_fen=fen) for account, fen in lines],
    )
    repository.add(session, transaction)
    return transaction


def entries(kind: TransactionKind, reference: str, amounts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The entries of one balanced movement as (account, fen), by account, without zero amounts; none when
    every amount is zero. Refuses an unbalanced one."""
    lines = [(account, fen) for account, fen in sorted(amounts.items()) if fen]
    if sum(fen for _, fen in lines) != 0:
        raise UnbalancedTransaction(f"{kind} {reference}: {dict(amounts)}")
    return lines


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


def paid(channel: Channel, fen: int, *, agent_id: str | None = None) -> dict[str, int]:
    """Money in: into the agent's cash when an agent collected it, else into the channel's clearing."""
    return {accounts.money_in(channel, agent_id): fen, accounts.RESIDENT_RECEIVABLE: -fen}


def settled(channel: Channel, fen: int) -> dict[str, int]:
    """A channel's money confirmed by the tax side's payment file reaches the treasury."""
    return {accounts.TREASURY: fen, accounts.channel_clearing(channel): -fen}


async def balances(session: AsyncSession, *, prefix: str | None = None) -> list[AccountBalance]:
    found = await repository.balances(session, prefix=prefix)
    return [AccountBalance(account=a, balance=fen) for a, fen in found]
