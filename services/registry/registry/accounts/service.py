"""Accounts (账号) and sign-in (登录).

- An account is a staff member's, department's, tax officer's, auditor's or administrator's — never a
  resident's (they sign in through the front-ends). Staff work in region codes; departments in region codes
  for subsidy categories; the other roles in neither.
- Passwords are kept as Argon2id hashes, at least MIN_PASSWORD_LENGTH characters, never containing the
  account name.
- A sign-in is refused alike for an unknown name, a wrong password and a disabled account, after checking a
  password hash in every case (an unknown name costs what a known one does). Failures are counted per account
  name and per client address (an IPv6 client by its /64, which one subscriber holds whole) in the database
  (every replica counts alike); past either limit within the window, sign-in is refused with the time to
  wait, before any password is checked. Attempts on one name or from one address are judged one at a time,
  so that parallel guesses cannot all pass the count before any failure is recorded. Every attempt is on the
  audit trail.
- A sign-in opens a session: a browser's (its secret in an HttpOnly cookie, only its hash stored) or an API
  client's (short-lived tokens naming it). Requests through it are accepted while it has not ended, is
  younger than the maximum age, was used within the idle timeout, and its account is enabled: disabling an
  account or setting its password ends its sessions at once.
- The last enabled administrator can be neither disabled nor given another role.
"""

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.accounts import repository
from registry.accounts.errors import (
    AccountAlreadyDisabled,
    AccountAreaInvalid,
    AccountExists,
    AccountNotDisabled,
    AccountNotFound,
    AccountRoleNotAllowed,
    LastAdministrator,
    NotASignInSession,
    PasswordTooWeak,
    SignInFailed,
    TooManySignInFailures,
)
from registry.accounts.models import Account, AccountSession, SessionEnd, SessionKind
from registry.accounts.schemas import AccountChange, AccountCreate
from registry.database import AuditEvent
from registry.settings import RegistrySettings
from shared.audit import AuditTrail
from shared.auth import Principal, Role, TokenClaims, Unauthenticated, issue_token
from shared.clock import Clock
from shared.db import lock_keys, unavailable_now
from shared.errors import DomainError

# How often a session's last use is written down: its idle timeout is judged to within this.
TOUCH_EVERY = timedelta(seconds=60)
FIRST_ADMIN_NAME = "系统管理员"


class Passwords:
    """Argon2id hashing (argon2-cffi), off the event loop: a hash takes tens of milliseconds by design."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` is the one `stored` was made from. Without a stored hash (no such account) a
        dummy hash is checked all the same, so that the answer takes as long."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        try:
            matches = await asyncio.to_thread(self._hasher.verify, stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(matches) and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def secret_hash(secret: str) -> str:
    """What the database keeps of a browser session's secret: a copy of the table signs nobody in."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Sessions:
    """The registry's sign-in sessions: shared.auth's SessionStore (every request through a session cookie
    or a token naming a session is checked here), and what signing in needs (passwords, tokens, the audit
    trail). Checks run in their own short transaction: they come before the request's."""

    def __init__(
        self,
        settings: RegistrySettings,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        clock: Callable[[], Clock],
    ):
        self.settings = settings
        self.passwords = Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )
        self.audit = AuditTrail(AuditEvent)
        self._sessionmaker = sessionmaker
        self._clock = clock
        # Page tokens are derived from the session id with a key of their own, derived from the signing key.
        self._csrf_key = hmac.new(settings.signing_key()[1].encode(), b"canbao-csrf", hashlib.sha256).digest()

    def now(self) -> datetime:
        return self._clock().now()

    async def principal_of_session(self, session_id: str) -> Principal:
        return await self._principal(session_id=session_id)

    async def principal_of_cookie(self, secret: str) -> Principal:
        return await self._principal(secret_hash=secret_hash(secret))

    def csrf_token(self, session_id: str) -> str:
        digest = hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token_for(self, account: Account, record: AccountSession) -> tuple[str, datetime]:
        """A bearer token for both services naming the session; its `exp` (real time) comes with it."""
        key_id, key = self.settings.signing_key()
        ttl = timedelta(seconds=self.settings.session_token_ttl_s)
        claims = TokenClaims(
            sub=account.username,
            role=account.role,
            regions=list(account.regions),
            categories=list(account.categories),
            name=account.display_name,
            sid=record.id,
        )
        issued_at = datetime.now(UTC)
        token = issue_token(
            claims,
            secret=key,
            key_id=key_id,
            issuer=self.settings.auth_issuer,
            audience=self.settings.auth_audience,
            ttl=ttl,
        )
        return token, issued_at.replace(microsecond=0) + ttl

    async def _principal(self, **where: str) -> Principal:
        now = self.now()
        idle = timedelta(seconds=self.settings.session_idle_timeout_s)
        try:
            async with self._sessionmaker()() as session:
                found = await repository.session_with_account(session, **where)
                reason = "unknown_session" if found is None else session_refusal(*found, now, idle)
                if found is None or reason is not None:
                    raise Unauthenticated({"reason": reason})
                record, account = found
                if now - record.last_seen_at >= TOUCH_EVERY:
                    await repository.touch_session(session, record.id, now)
                    await session.commit()
        except DomainError:
            raise
        except Exception as exc:
            if (unavailable := unavailable_now(exc)) is not None:
                raise unavailable from exc
            raise
        return principal_for(account, record.id)


def principal_for(account: Account, session_id: str) -> Principal:
    """The caller of a session, as its account stands now (a changed role or area applies at once)."""
    return Principal(
        subject=account.username,
        role=account.role,
        regions=frozenset(account.regions),
        categories=frozenset(account.categories),
        name=account.display_name,
        session_id=session_id,
    )


def session_refusal(record: AccountSession, account: Account, now: datetime, idle: timedelta) -> str | None:
    """Why a session no longer signs anyone in, if it does not."""
    if record.ended_at is not None:
        return "session_ended"
    if not account.enabled:
        return "account_disabled"
    if now >= record.expires_at:
        return "session_expired"
    if now - record.last_seen_at >= idle:
        return "session_idle"
    return None


def area_problem(role: Role, regions: list[str], categories: list[str]) -> dict[str, Any] | None:
    """Whether the regions and categories fit the role (see the module's doc)."""
    needs_regions = role in (Role.STAFF, Role.DEPARTMENT)
    needs_categories = role is Role.DEPARTMENT
    if bool(regions) != needs_regions or bool(categories) != needs_categories:
        return {"role": role.value, "regions_needed": needs_regions, "categories_needed": needs_categories}
    return None


def _check(
    username: str, role: Role, regions: list[str], categories: list[str], password: str | None
) -> None:
    if role is Role.RESIDENT:
        raise AccountRoleNotAllowed({"role": role.value})
    problem = area_problem(role, regions, categories)
    if problem is not None:
        raise AccountAreaInvalid(problem)
    if password is not None and username.lower() in password.lower():
        raise PasswordTooWeak()


async def create(session: AsyncSession, sessions: Sessions, body: AccountCreate, *, by: str) -> Account:
    regions, categories = sorted(set(body.regions)), sorted(set(body.categories))
    _check(body.username, body.role, regions, categories, body.password)
    if await repository.by_username(session, body.username) is not None:
        raise AccountExists({"username": body.username})
    now = sessions.now()
    account = Account(
        id=str(uuid.uuid4()),
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        regions=regions,
        categories=categories,
        password_hash=await sessions.passwords.hash(body.password),
        password_changed_at=now,
        created_at=now,
        created_by=by,
        updated_at=now,
        updated_by=by,
    )
    repository.add(session, account)
    return account


async def get(session: AsyncSession, account_id: str) -> Account:
    account = await repository.get(session, account_id)
    if account is None:
        raise AccountNotFound({"account_id": account_id})
    return account


async def _locked(
    session: AsyncSession, account_id: str, *, admins_first: bool
) -> tuple[Account, list[Account]]:
    """The account, locked; with every enabled administrator locked first (always in that order, so that
    two such changes cannot deadlock) when the change may leave no administrator."""
    admins = await repository.lock_enabled_admins(session) if admins_first else []
    account = await repository.get(session, account_id, lock=True)
    if account is None:
        raise AccountNotFound({"account_id": account_id})
    return account, admins


def _keeps_an_admin(account: Account, admins: list[Account]) -> None:
    if account.enabled and account.role is Role.ADMIN and not [a for a in admins if a.id != account.id]:
        raise LastAdministrator({"account_id": account.id})


async def change(
    session: AsyncSession, sessions: Sessions, account_id: str, body: AccountChange, *, by: str
) -> Account:
    account, admins = await _locked(session, account_id, admins_first=body.role is not None)
    role = body.role or account.role
    regions = sorted(set(account.regions if body.regions is None else body.regions))
    categories = sorted(set(account.categories if body.categories is None else body.categories))
    _check(account.username, role, regions, categories, body.password)
    if role is not account.role:
        _keeps_an_admin(account, admins)
    now = sessions.now()
    if body.password is not None:
        account.password_hash = await sessions.passwords.hash(body.password)
        account.password_changed_at = now
        await repository.end_sessions_of(session, account.id, now, SessionEnd.PASSWORD_CHANGED)
    account.display_name = body.display_name or account.display_name
    account.role, account.regions, account.categories = role, regions, categories
    account.updated_at, account.updated_by = now, by
    return account


async def deactivate(
    session: AsyncSession, sessions: Sessions, account_id: str, reason: str, *, by: str
) -> Account:
    account, admins = await _locked(session, account_id, admins_first=True)
    if not account.enabled:
        raise AccountAlreadyDisabled({"account_id": account_id})
    _keeps_an_admin(account, admins)
    now = sessions.now()
    account.disabled_at, account.disabled_by, account.disabled_reason = now, by, reason
    account.updated_at, account.updated_by = now, by
    await repository.end_sessions_of(session, account.id, now, SessionEnd.ACCOUNT_DISABLED)
    return account


async def reactivate(session: AsyncSession, sessions: Sessions, account_id: str, *, by: str) -> Account:
    account, _ = await _locked(session, account_id, admins_first=False)
    if account.enabled:
        raise AccountNotDisabled({"account_id": account_id})
    now = sessions.now()
    account.disabled_at = account.disabled_by = account.disabled_reason = None
    account.updated_at, account.updated_by = now, by
    return account


async def ensure_first_admin(
    session: AsyncSession, sessions: Sessions, username: str, password: str
) -> Account | None:
    """At first start (no account at all): the first administrator, to create every other account with."""
    if await repository.count(session) > 0:
        return None
    body = AccountCreate(username=username, display_name=FIRST_ADMIN_NAME, role=Role.ADMIN, password=password)
    return await create(session, sessions, body, by="bootstrap")


@dataclass(frozen=True)
class SignedIn:
    account: Account
    record: AccountSession
    secret: str | None  # a browser session's cookie value; shown once, never stored


def throttled_address(address: str) -> str:
    """What failures from `address` count under: an IPv4 address (IPv4-mapped IPv6 too) itself, an IPv6
    address its /64 — a subscriber gets the whole prefix and may use any address in it, so counting single
    addresses would let one client try without end."""
    try:
        found = ip_address(address)
    except ValueError:
        return address  # not an address (a proxy's odd header): counted as it is
    if found.version == 6 and found.ipv4_mapped is not None:
        return str(found.ipv4_mapped)
    if found.version == 6:
        return str(ip_network((found.packed, 64), strict=False))
    return str(found)


def throttle_wait(
    failures: Mapping[str, list[datetime]], limits: Mapping[str, int], now: datetime, window: timedelta
) -> timedelta | None:
    """How long until sign-in may be tried again, when a key has used up its failures within the window."""
    waits = []
    for key, limit in limits.items():
        recent = sorted(failures.get(key, []), reverse=True)
        if len(recent) >= limit:
            waits.append(recent[limit - 1] + window - now)
    return max(waits) if waits else None


async def sign_in(
    session: AsyncSession,
    sessions: Sessions,
    *,
    username: str,
    password: str,
    address: str,
    kind: SessionKind,
    route: str,
) -> SignedIn | DomainError:
    """The session opened, or the refusal to answer with. A refusal is returned, not raised: the failure it
    counts and its audit record must be committed with the request."""
    settings = sessions.settings
    now = sessions.now()
    name = username.strip().lower()
    account_key = f"account:{name}"[:160]
    address_key = f"address:{throttled_address(address)}"[:160]
    limits = {
        account_key: settings.sign_in_failures_allowed,
        address_key: settings.sign_in_address_failures_allowed,
    }
    window = timedelta(seconds=settings.sign_in_failure_window_s)
    # One attempt at a time per name and per address until this one's failure (if any) is committed, else
    # parallel guesses all read the count before any adds to it; and the account locked, so that a password
    # changed or an account disabled meanwhile cannot leave behind a session opened with what it was.
    await lock_keys(session, list(limits))
    account = await repository.by_username(session, name, lock=True) if name else None
    failures = await repository.failures_since(session, list(limits), now - window)
    wait = throttle_wait(failures, limits, now, window)

    def audit(outcome: str, account: Account | None) -> None:
        sessions.audit.note(
            session,
            actor=name or "-",
            role=account.role.value if account is not None else "none",
            action="sign_in",
            route=route,
            record=f"sign-in:{outcome} from {address}"[:128],
        )

    if wait is not None:
        audit("throttled", None)
        seconds = max(1, int(wait.total_seconds()) + 1)
        return TooManySignInFailures({"retry_after_s": seconds}, headers={"Retry-After": str(seconds)})
    matches = await sessions.passwords.verify(account.password_hash if account else None, password)
    if account is None or not matches or not account.enabled:
        outcome = (
            "unknown_account" if account is None else "account_disabled" if matches else "wrong_password"
        )
        await repository.delete_failures(session, list(limits), before=now - window)
        repository.add_failures(session, list(limits), now)
        audit(outcome, account)
        return SignInFailed()
    await repository.delete_failures(session, [account_key])
    if sessions.passwords.needs_rehash(account.password_hash):
        account.password_hash = await sessions.passwords.hash(password)
    secret = secrets.token_urlsafe(32) if kind is SessionKind.BROWSER else None
    record = AccountSession(
        id=str(uuid.uuid4()),
        account_id=account.id,
        kind=kind,
        secret_hash=secret_hash(secret) if secret is not None else None,
        address=address[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.session_max_age_s),
    )
    repository.add(session, record)
    audit("ok", account)
    return SignedIn(account, record, secret)


async def current(session: AsyncSession, principal: Principal) -> tuple[Account, AccountSession]:
    """The caller's account and session (checked live by authentication), or NotASignInSession."""
    found = None
    if principal.session_id is not None:
        found = await repository.session_with_account(session, session_id=principal.session_id)
    if found is None:
        raise NotASignInSession()
    record, account = found
    return account, record


async def sign_out(session: AsyncSession, sessions: Sessions, principal: Principal, *, route: str) -> None:
    account, record = await current(session, principal)
    await repository.end_session(session, record.id, sessions.now(), SessionEnd.SIGNED_OUT)
    sessions.audit.note(
        session,
        actor=account.username,
        role=account.role.value,
        action="sign_out",
        route=route,
        record="sign-out",
    )
