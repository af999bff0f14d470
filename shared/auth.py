"""Who is calling and what they may do: bearer tokens, sign-in sessions, roles, areas.

A caller is identified (`identify`) by a bearer token — HS256 with the keys from settings (the development
key, `canbao token`, the front-ends' resident tokens, the registry's sign-in tokens), or RS256/ES256 from an
external OpenID Connect provider (shared.oidc) — or, where the service keeps sign-in sessions (the registry),
by the browser's session cookie. A token that names a sign-in session (`sid`), and every cookie, are good at
the registry only while the session is live and its account enabled; a request signed in by the cookie that
changes something must carry the page's CSRF token in `X-CSRF-Token`.

Every endpoint except health, readiness and the OpenAPI pages declares the roles it serves with `allow()`;
admins may do everything and auditors may read everything. The caller and the role are checked before anything
of the request's body is read (`shared.middleware.RequestStack`, with `identify` and `authorise`
below, the one implementation the dependencies use too). Area rules (a staff member's region codes, a
department's subsidy categories, a resident's own and household's records) are checked by the endpoint
through the request's `Access`, which also collects the people whose records were read or changed for the
audit trail (see shared.audit).
"""

import hmac
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import cookie_parser

from shared.db import DbSession
from shared.errors import DomainError

# The roles, claims and issuing of tokens live in shared.tokens, which the command line imports alone.
from shared.tokens import ALGORITHM as ALGORITHM
from shared.tokens import DEFAULT_MAX_TOKEN_LIFETIME as DEFAULT_MAX_TOKEN_LIFETIME
from shared.tokens import DEV_KEY as DEV_KEY
from shared.tokens import DEV_KEY_ID as DEV_KEY_ID
from shared.tokens import DEV_KEY_PREFIX as DEV_KEY_PREFIX
from shared.tokens import Role as Role
from shared.tokens import TokenClaims as TokenClaims
from shared.tokens import dev_token as dev_token
from shared.tokens import issue_token as issue_token

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

MIN_KEY_LENGTH = 32
# An Authorization header longer than this is refused unread: our tokens are a few hundred bytes.
MAX_AUTHORIZATION_BYTES = 8 * 1024
# Clock skew allowed between the issuer and the services.
CLOCK_SKEW = timedelta(seconds=60)


# Roles whose work needs ID and phone numbers in full; everyone else sees them masked.
FULL_PII_ROLES = frozenset({Role.STAFF, Role.DEPARTMENT, Role.TAX_OFFICER, Role.ADMIN})
_READ_METHODS = frozenset({"GET", "HEAD"})


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"
    message_zh = "请先登录：缺少或无效的访问令牌"
    message_en = "A valid bearer token is required"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class RoleNotAllowed(DomainError):
    status_code = 403
    code = "role_not_allowed"
    message_zh = "当前角色无权执行该操作"
    message_en = "Your role may not do this"


class CsrfRefused(DomainError):
    status_code = 403
    code = "csrf_token_invalid"
    message_zh = "页面已过期或请求来源不明：以登录会话提交的请求须带本页的防跨站令牌，请刷新页面后重试"
    message_en = (
        "A request signed in by the session cookie that changes something must carry the page's X-CSRF-Token"
    )


class OutsideArea(DomainError):
    status_code = 403
    code = "outside_area"
    message_zh = "该记录不在您负责的地区或类别范围内"
    message_en = "This record is outside your regions or categories"


class NotYourRecord(DomainError):
    status_code = 403
    code = "not_your_record"
    message_zh = "只能查看或办理本人及家庭成员的记录"
    message_en = "Residents may only see or act on their own and their household's records"


ACCESS_ERRORS: tuple[type[DomainError], ...] = (Unauthenticated, RoleNotAllowed, CsrfRefused)
AREA_ERRORS: tuple[type[DomainError], ...] = (OutsideArea, NotYourRecord)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    regions: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    id_number: str | None = None
    name: str | None = None
    # The sign-in session the caller came through (a session cookie, or a token the registry issued).
    session_id: str | None = None

    @property
    def sees_full_pii(self) -> bool:
        return self.role in FULL_PII_ROLES

    @property
    def is_area_bound(self) -> bool:
        """Staff and departments act only within their region codes."""
        return self.role in (Role.STAFF, Role.DEPARTMENT)


@dataclass
class Access:
    """The request's caller, its area checks, and the records it touched (for the audit trail)."""

    principal: Principal
    method: str
    route: str
    touched: list[tuple[str | None, str]] = field(default_factory=list)
    # Its audit rows were handed to the endpoint to write with its change (shared.audit.AuditTrail.claim).
    audited: bool = False

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def is_resident(self) -> bool:
        return self.principal.role is Role.RESIDENT

    def regions_filter(self) -> frozenset[str] | None:
        """The region codes a listing must stay within; None when the caller is not area-bound."""
        return self.principal.regions if self.principal.is_area_bound else None

    def require_region(self, region_code: str) -> None:
        if self.is_resident:
            raise NotYourRecord({"region_code": region_code})
        if self.principal.is_area_bound and region_code not in self.principal.regions:
            raise OutsideArea({"region_code": region_code})

    def require_category(self, category_code: str | None) -> None:
        """A department acts only for its own subsidy categories (资助类别)."""
        if self.principal.role is Role.DEPARTMENT and category_code not in self.principal.categories:
            raise OutsideArea({"category_code": category_code})

    def require_own(self, *id_numbers: str) -> None:
        """A resident's record (or one of their household's, when the caller passes the members)."""
        if self.is_resident and self.principal.id_number not in id_numbers:
            raise NotYourRecord()

    def touch(self, person: str | None, record: str) -> None:
        """Note that this request read or changed `record`, about `person` (an ID number) if one."""
        self.touched.append((person, record))


def _claims_of(
    token: str, keys: dict[str, str], issuer: str, audience: str, max_lifetime: timedelta
) -> tuple[TokenClaims, int]:
    """The token's claims and its `exp`."""
    try:
        key_id = jwt.get_unverified_header(token).get("kid")
        if key_id is None and len(keys) > 1:
            # Several keys while one rotates: a token must say which one signed it.
            raise Unauthenticated({"reason": "missing_key_id"})
        secret = next(iter(keys.values())) if key_id is None else keys.get(str(key_id))
        if secret is None:
            raise Unauthenticated({"reason": "unknown_key"})
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        # jwt.decode has checked that exp is an integer in the future.
        if int(payload["exp"]) > time.time() + (max_lifetime + CLOCK_SKEW).total_seconds():
            raise Unauthenticated({"reason": "lifetime_too_long"})
        return TokenClaims.model_validate(payload), int(payload["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated({"reason": "expired"}) from exc
    except (jwt.PyJWTError, ValidationError) as exc:
        raise Unauthenticated({"reason": "invalid_token"}) from exc


def principal_of(claims: TokenClaims) -> Principal:
    return Principal(
        subject=claims.sub,
        role=claims.role,
        regions=frozenset(claims.regions),
        categories=frozenset(claims.categories),
        id_number=claims.id_number,
        name=claims.name,
        session_id=claims.sid,
    )


_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT: from `canbao token` (development), the registry's sign-in (`POST /v1/sessions`), "
    "the residents' front-ends, or the bureau's OpenID Connect provider",
)
# Where the request's verified principal is kept (its state), so that it is verified once.
PRINCIPAL_STATE_KEY = "canbao_principal"
# The browser's sign-in session (the registry's /sign-in sets it), and the header that carries the page's
# CSRF token on a request signed in by it that changes something.
SESSION_COOKIE = "canbao_session"
CSRF_HEADER = "X-CSRF-Token"


class SessionStore(Protocol):
    """Where a service keeps sign-in sessions (the registry's accounts). Each method raises Unauthenticated
    when the session has ended, expired or idled out, or its account is disabled."""

    async def principal_of_session(self, session_id: str) -> Principal:
        """The caller of a live session named by a token's `sid`, as its account stands now."""
        ...

    async def principal_of_cookie(self, secret: str) -> Principal:
        """The caller of a browser's session cookie."""
        ...

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of a session: the pages carry it in their forms."""
        ...


class ExternalTokens(Protocol):
    """Tokens of an external identity provider (shared.oidc), verified with its own keys."""

    async def verify(self, token: str) -> Principal: ...


class VerifiedTokens:
    """HS256 tokens verified already, by the token itself, each until it expires: a client sends the same
    token with every request, and checking its signature and claims again each time cost more than the rest of
    reading the caller. Bounded: past `size` tokens the oldest held is dropped (it is verified again when it
    comes back). A token verified once stays good until its `exp`, so holding it changes nothing; one naming a
    sign-in session is still checked against the live session each time (`identify`)."""

    def __init__(self, size: int = 10_000):
        self._size = size
        self._held: dict[str, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        found = self._held.get(token)
        if found is None:
            return None
        if time.time() >= found[1]:
            del self._held[token]
            return None
        return found[0]

    def put(self, token: str, principal: Principal, expires: float) -> None:
        if len(self._held) >= self._size:
            del self._held[next(iter(self._held))]
        self._held[token] = (principal, expires)


async def verify_bearer(
    authorization: str,
    settings: "ServiceSettings",
    external: ExternalTokens | None = None,
    verified: VerifiedTokens | None = None,
) -> Principal:
    """The caller of an `Authorization: Bearer <JWT>` header, or Unauthenticated. A header over
    MAX_AUTHORIZATION_BYTES is refused without being parsed. HS256 tokens are verified with the configured
    keys; any other algorithm only by the external provider, when one is configured (each path names the
    algorithms it accepts, so a token cannot pass one path as the other)."""
    if len(authorization) > MAX_AUTHORIZATION_BYTES:
        raise Unauthenticated({"reason": "token_too_large", "limit_bytes": MAX_AUTHORIZATION_BYTES})
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated({"reason": "missing_token"})
    if verified is not None and (known := verified.get(token)) is not None:
        return known
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise Unauthenticated({"reason": "invalid_token"}) from exc
    if algorithm != ALGORITHM and external is not None:
        return await external.verify(token)
    keys = {kid: secret.get_secret_value() for kid, secret in settings.auth_keys.items()}
    claims, expires = _claims_of(
        token,
        keys,
        settings.auth_issuer,
        settings.auth_audience,
        timedelta(seconds=settings.auth_max_token_lifetime_s),
    )
    principal = principal_of(claims)
    if verified is not None:
        verified.put(token, principal, expires)
    return principal


async def identify(headers: Mapping[str, str], method: str, state: Any) -> Principal:
    """The request's caller: its bearer token, else (where the service keeps sessions) its session cookie.
    `state` is the application's state: its settings, `session_store` and `oidc`, where set."""
    store: SessionStore | None = getattr(state, "session_store", None)
    authorization = headers.get("authorization", "")
    if authorization.strip():
        principal = await verify_bearer(
            authorization,
            state.settings,
            getattr(state, "oidc", None),
            getattr(state, "verified_tokens", None),
        )
        if principal.session_id is None or store is None:
            # A service without the session store (collection) relies on the sign-in token's short life.
            return principal
        return await store.principal_of_session(principal.session_id)
    secret = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE) if store is not None else None
    if store is None or not secret:
        raise Unauthenticated({"reason": "missing_token"})
    principal = await store.principal_of_cookie(secret)
    # A browser sends the cookie with whatever page asks: a change must also show the page's token.
    if method not in _READ_METHODS and principal.session_id is not None:
        expected = store.csrf_token(principal.session_id)
        if not hmac.compare_digest(headers.get(CSRF_HEADER.lower(), "").encode(), expected.encode()):
            raise CsrfRefused()
    return principal


async def authenticate(
    request: Request,
    # Declares the bearer scheme in OpenAPI; the header (or the session cookie) is read by identify.
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Access:
    principal = request.scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    if not isinstance(principal, Principal):  # no body was read before the dependencies ran
        principal = await identify(request.headers, request.method, request.app.state)
        request.scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    access = Access(principal, request.method, route)
    # Read by the PII-masking middleware once the response is on its way.
    request.state.mask_pii = not principal.sees_full_pii
    structlog.contextvars.bind_contextvars(actor=principal.subject, role=principal.role.value)
    return access


CurrentAccess = Annotated[Access, Depends(authenticate)]


async def authenticate_again(request: Request, access: Access) -> Access:
    """The request's caller, checked again after a wait (a long-poll): a token expired, a sign-in session
    ended or an account disabled meanwhile is refused as a new request would be, and a caller whose account
    changed meanwhile (role, regions, categories) is refused too, to ask again as they are now. The same
    Access is returned: what it reads is the request's audit trail."""
    principal = await identify(request.headers, request.method, request.app.state)
    if principal != access.principal:
        raise Unauthenticated({"reason": "changed_while_waiting"})
    return access


def role_allowed(role: Role, method: str, roles: frozenset[Role]) -> bool:
    if role is Role.ADMIN:
        return True
    if role is Role.AUDITOR:
        return method in _READ_METHODS
    return role in roles


def authorise(principal: Principal, method: str, route: str, roles: frozenset[Role]) -> None:
    """RoleNotAllowed unless the caller's role may make this request."""
    if not role_allowed(principal.role, method, roles):
        log.warning(
            "access_denied", route=route, method=method, actor=principal.subject, role=principal.role.value
        )
        raise RoleNotAllowed({"role": principal.role.value, "allowed": sorted(r.value for r in roles)})


# The roles each `allow()` dependency admits: RequestStack checks them before the body is read.
ROLE_CHECKS: dict[Callable[..., Any], frozenset[Role]] = {}


@dataclass(frozen=True)
class Call:
    """What `allow()` gives an endpoint that takes it as a parameter: the caller's access and the request's
    one transaction (`shared.db.DbSession`), with the role checked. FastAPI solves every dependency a route
    declares anew on each request, the cached ones too: a route taking `session`, `access` and `allow()` each
    on its own costs nine of those walks, one taking `Annotated[Call, allow(...)]` five."""

    access: Access
    session: AsyncSession


def allow(*roles: Role) -> Any:
    """Dependency: the caller's role is one of `roles` (admins always; auditors for reads); its value is the
    request's `Call`. What the request touched is written to the audit trail in the request's own
    transaction, so a change and its audit record commit together or not at all."""
    allowed = frozenset(roles)

    async def check_role(request: Request, access: CurrentAccess, session: DbSession) -> AsyncIterator[Call]:
        authorise(access.principal, access.method, access.route, allowed)
        yield Call(access, session)
        await request.app.state.audit_trail.record(session, access)

    ROLE_CHECKS[check_role] = allowed
    return Depends(check_role, scope="function")
