"""Administrator accounts made straight in the registry's database, where no administrator can sign in yet:
at first start (`python -m registry migrate`, which `canbao run` and compose's migration step run, creates
the first administrator while the registry has no account at all) and by hand (`canbao accounts
create-admin`, e.g. when every administrator's password is lost). Every other account is made through the API.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from registry.accounts import service
from registry.accounts.models import Account
from registry.accounts.schemas import AccountCreate
from registry.accounts.service import Sessions
from registry.settings import RegistrySettings
from shared.auth import Role
from shared.clock import Clock
from shared.db import create_engine, create_sessionmaker

T = TypeVar("T")


async def _in_transaction(
    settings: RegistrySettings, work: Callable[[AsyncSession, Sessions], Awaitable[T]]
) -> T:
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    clock = Clock(settings.clock_start)
    try:
        async with sessionmaker() as session, session.begin():
            return await work(session, Sessions(settings, lambda: sessionmaker, lambda: clock))
    finally:
        await engine.dispose()


def first_admin(settings: RegistrySettings) -> Account | None:
    """The first administrator, with REGISTRY_BOOTSTRAP_ADMIN_PASSWORD (outside production: the development
    password), when the registry has no account yet; None when it has, or in production without a password."""
    password = settings.first_admin_password()
    if password is None:
        return None
    username = settings.bootstrap_admin_username.lower()
    return asyncio.run(
        _in_transaction(
            settings, lambda s, sessions: service.ensure_first_admin(s, sessions, username, password)
        )
    )


def create_admin(settings: RegistrySettings, username: str, display_name: str, password: str) -> Account:
    """Another administrator account (AccountCreate's rules; DomainError when refused)."""
    body = AccountCreate(username=username, display_name=display_name, role=Role.ADMIN, password=password)
    return asyncio.run(
        _in_transaction(
            settings, lambda s, sessions: service.create(s, sessions, body, by="canbao accounts create-admin")
        )
    )
