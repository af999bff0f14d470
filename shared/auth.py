"""Who is calling and what they may do: bearer tokens (JWT, HS256, keys from settings), roles, areas.

Every endpoint except health, readiness and the OpenAPI pages declares the roles it serves with `allow()`;
admins may do everything and auditors may read everything. The token and the role are checked before anything
of the request's body is read (`shared.middleware.AuthenticateFirst`, with `verify_bearer` and `authorise`
below, the one implementation the dependencies use too). Area rules (a staff member's region codes, a
department's subsidy categories, a resident's own and household's records) are checked by the endpoint
through the request's `Access`, which also collects the people whose records were read or changed for the
audit trail (see shared.audit).
"""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

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


ACCESS_ERRORS: tuple[type[DomainError], ...] = (Unauthenticated, RoleNotAllowed)
AREA_ERRORS: tuple[type[DomainError], ...] = (OutsideArea, NotYourRecord)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    regions: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    id_number: str | None = None
    name: str | None = None

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
) -> TokenClaims:
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
        return TokenClaims.model_validate(payload)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated({"reason": "expired"}) from exc
    except (jwt.PyJWTError, ValidationError) as exc:
        raise Unauthenticated({"reason": "invalid_token"}) from exc


_bearer = HTTPBearer(auto_error=False, description="A JWT from `canbao token` (development) or the issuer")
# Where the request's verified principal is kept (its state), so that it is verified once.
PRINCIPAL_STATE_KEY = "canbao_principal"


def verify_bearer(authorization: str | None, settings: "ServiceSettings") -> Principal:
    """The caller of an `Authorization: Bearer <JWT>` header, or Unauthenticated. A header over
    MAX_AUTHORIZATION_BYTES is refused without being parsed."""
    if authorization is not None and len(authorization) > MAX_AUTHORIZATION_BYTES:
        raise Unauthenticated({"reason": "token_too_large", "limit_bytes": MAX_AUTHORIZATION_BYTES})
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated({"reason": "missing_token"})
    keys = {kid: secret.get_secret_value() for kid, secret in settings.auth_keys.items()}
    claims = _claims_of(
        token.strip(),
        keys,
        settings.auth_issuer,
        settings.auth_audience,
        timedelta(seconds=settings.auth_max_token_lifetime_s),
    )
    return Principal(
        subject=claims.sub,
        role=claims.role,
        regions=frozenset(claims.regions),
        categories=frozenset(claims.categories),
        id_number=claims.id_number,
        name=claims.name,
    )


async def authenticate(
    request: Request,
    # Declares the bearer scheme in OpenAPI; the header itself is read by verify_bearer.
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Access:
    principal = request.scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    if not isinstance(principal, Principal):  # no body was read before the dependencies ran
        principal = verify_bearer(request.headers.get("authorization"), request.app.state.settings)
        request.scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
    route = getattr(request.scope.get("route"), "path", request.url.path)
    access = Access(principal, request.method, route)
    # Read by the PII-masking middleware once the response is on its way.
    request.state.mask_pii = not principal.sees_full_pii
    structlog.contextvars.bind_contextvars(actor=principal.subject, role=principal.role.value)
    return access


CurrentAccess = Annotated[Access, Depends(authenticate)]


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


# The roles each `allow()` dependency admits: AuthenticateFirst checks them before the body is read.
ROLE_CHECKS: dict[Callable[..., Any], frozenset[Role]] = {}


def allow(*roles: Role) -> Any:
    """Dependency: the caller's role is one of `roles` (admins always; auditors for reads). What the
    request touched is written to the audit trail in the request's own transaction, so a change and its
    audit record commit together or not at all."""
    allowed = frozenset(roles)

    async def check_role(
        request: Request, access: CurrentAccess, session: DbSession
    ) -> AsyncIterator[Access]:
        authorise(access.principal, access.method, access.route, allowed)
        yield access
        request.app.state.audit_trail.record(session, access)

    ROLE_CHECKS[check_role] = allowed
    return Depends(check_role, scope="function")
