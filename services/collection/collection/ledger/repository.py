from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.ledger.models import LedgerEntry, LedgerTransaction
from shared import bulk


def add(session: AsyncSession, transaction: LedgerTransaction) -> None:
    session.add(transaction)


async def balances(session: AsyncSession, *, prefix: str | None = None) -> list[tuple[str, int]]:
    query = select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen)).group_by(LedgerEntry.account)
    if prefix:
        query = query.where(LedgerEntry.account.startswith(prefix, autoescape=True))
    return [
        (account, int(total))
        for account, total in (await session.execute(query.order_by(LedgerEntry.account))).all()
    ]


async def unbalanced(session: AsyncSession) -> list[tuple[str, int]]:
    query = (
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_fen))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount_fen) != 0)
    )
    return [(tid, int(total)) for tid, total in (await session.execute(query)).all()]


async def counts(session: AsyncSession) -> tuple[int, int]:
    transactions = await session.scalar(select(func.count()).select_from(LedgerTransaction))
    entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    return int(transactions or 0), int(entries or 0)


# Bulk writes (a reconciliation's payments and settlements): rows in the order of these columns.
TRANSACTION_COLUMNS = ("id", "kind", "reference", "occurred_at")
ENTRY_COLUMNS = ("transaction_id", "account", "amount_fen")


async def insert_many(
    session: AsyncSession, transactions: Sequence[tuple[Any, ...]], entries: Sequence[tuple[Any, ...]]
) -> None:
    """Transactions and their entries, balanced by the caller (`service.post` checks one at a time)."""
    await bulk.insert_rows(session, LedgerTransaction, TRANSACTION_COLUMNS, transactions)
    await bulk.insert_rows(session, LedgerEntry, ENTRY_COLUMNS, entries)
