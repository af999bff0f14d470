from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.accounts.models import Account, AccountSession, SessionEnd, SignInFailure
from shared.auth import Role


async def get(session: AsyncSession, account_id: str, *, lock: bool = False) -> Account | None:
    query = select(Account).where(Account.id == account_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def by_username(session: AsyncSession, username: str, *, lock: bool = False) -> Account | None:
    query = select(Account).where(Account.username == username)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def listing(session: AsyncSession, *, role: Role | None, enabled: bool | None) -> list[Account]:
    query = select(Account).order_by(Account.username)
    if role is not None:
        query = query.where(Account.role == role)
    if enabled is not None:
        query = query.where(Account.disabled_at.is_(None) if enabled else Account.disabled_at.is_not(None))
    return list((await session.scalars(query)).all())


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Account)) or 0)


async def lock_enabled_admins(session: AsyncSession) -> list[Account]:
    """Every enabled administrator, locked in id order: two administrators disabling each other at once
    cannot both succeed and leave nobody."""
    query = (
        select(Account)
        .where(Account.role == Role.ADMIN, Account.disabled_at.is_(None))
        .order_by(Account.id)
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


def add(session: AsyncSession, row: Account | AccountSession) -> None:
    session.add(row)


async def session_with_account(
    session: AsyncSession, *, session_id: str | None = None, secret_hash: str | None = None
) -> tuple[AccountSession, Account] | None:
    query = select(AccountSession, Account).join(Account, Account.id == AccountSession.account_id)
    if session_id is not None:
        query = query.where(AccountSession.id == session_id)
    else:
        query = query.where(AccountSession.secret_hash == secret_hash)
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, session_id: str, seen_at: datetime) -> None:
    await session.execute(
        update(AccountSession).where(AccountSession.id == session_id).values(last_seen_at=seen_at)
    )


async def end_session(session: AsyncSession, session_id: str, at: datetime, reason: SessionEnd) -> None:
    await session.execute(
        update(AccountSession)
        .where(AccountSession.id == session_id, AccountSession.ended_at.is_(None))
        .values(ended_at=at, ended_reason=reason)
    )


async def end_sessions_of(session: AsyncSession, account_id: str, at: datetime, reason: SessionEnd) -> int:
    result = await session.execute(
        update(AccountSession)
        .where(AccountSession.account_id == account_id, AccountSession.ended_at.is_(None))
        .values(ended_at=at, ended_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def failures_since(
    session: AsyncSession, keys: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    query = select(SignInFailure.key, SignInFailure.at).where(
        SignInFailure.key.in_(keys), SignInFailure.at >= since
    )
    found: dict[str, list[datetime]] = {key: [] for key in keys}
    for key, at in (await session.execute(query)).all():
        found[key].append(at)
    return found


def add_failures(session: AsyncSession, keys: Sequence[str], at: datetime) -> None:
    session.add_all([SignInFailure(key=key, at=at) for key in keys])


async def delete_failures(
    session: AsyncSession, keys: Sequence[str], *, before: datetime | None = None
) -> None:
    """Forget the keys' failures (older than `before`, when given: those no longer count)."""
    query = delete(SignInFailure).where(SignInFailure.key.in_(keys))
    if before is not None:
        query = query.where(SignInFailure.at < before)
    await session.execute(query)
