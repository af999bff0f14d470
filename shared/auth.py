"""Who is calling and what they may do: bearer tokens (JWT, HS256, keys from settings), roles, areas.

Every endpoint except health, readiness and the OpenAPI pages declares the roles it serves with `allow()`;
admins may do everything and auditors may read everything. Area rules (a staff member's region codes, a
department's subsidy categories, a resident's own and household's records) are checked by the endpoint
through the request's `Access`, which also collects the people whose records were read or changed for the
audit trail (see shared.audit).
"""

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

import jwt
import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from shared.db import DbSession
from shared.errors import DomainError
from shared.regions import REGION_CODE_PATTERN

log = structlog.get_logger(__name__)

ALGORITHM = "HS256"
# The development signing key: `make run` and `canbao token` work out of the box; production refuses it.
DEV_KEY_ID = "dev"
DEV_KEY_PREFIX = "dev-only-"
DEV_KEY = f"{DEV_KEY_PREFIX}canbao-token-signing-key-not-for-production"
MIN_KEY_LENGTH = 32


class Role(enum.StrEnum):
    RESIDENT = "resident"  # 参保人: their own records and their household's
    STAFF = "staff"  # 社区/乡镇经办人员: people in their region codes
    DEPARTMENT = "department"  # 民政、残联、退役军人… : rosters of their own subsidy categories
    TAX_OFFICER = "tax_officer"  # 税务: the collection side
    AUDITOR = "auditor"  # 审计: reads everything, every read audited
    ADMIN = "admin"


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


class TokenClaims(BaseModel):
    """What a token says about its bearer, beyond the registered claims (iss, aud, exp, iat)."""

    sub: str = Field(min_length=1, max_length=128)
    role: Role
    regions: list[Annotated[str, Field(pattern=REGION_CODE_PATTERN)]] = Field(default_factory=list)
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    id_number: str | None = Field(default=None, max_length=32, description="A resident's own ID number")
    name: str | None = Field(default=None, max_length=64)


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


def _claims_of(token: str, keys: dict[str, str], issuer: str, audience: str) -> TokenClaims:
    try:
        key_id = jwt.get_unverified_header(token).get("kid", DEV_KEY_ID)
        secret = keys.get(key_id)
        if secret is None:
            raise Unauthenticated({"reason": "unknown_key"})
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        return TokenClaims.model_validate(payload)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated({"reason": "expired"}) from exc
    except (jwt.PyJWTError, ValidationError) as exc:
        raise Unauthenticated({"reason": "invalid_token"}) from exc


def issue_token(
    claims: TokenClaims,
    *,
    secret: str,
    key_id: str = DEV_KEY_ID,
    issuer: str = "canbao",
    audience: str = "canbao",
    ttl: timedelta = timedelta(hours=8),
) -> str:
    now = datetime.now(UTC)
    payload: dict[str, Any] = claims.model_dump(exclude_none=True) | {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"kid": key_id})


def dev_token(role: Role, **claims: Any) -> str:
    """A token signed with the development key (make run, tests); production services refuse that key."""
    return issue_token(
        TokenClaims(sub=claims.pop("sub", f"dev-{role.value}"), role=role, **claims), secret=DEV_KEY
    )


_bearer = HTTPBearer(auto_error=False, description="A JWT from `canbao token` (development) or the issuer")


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Access:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated({"reason": "missing_token"})
    settings = request.app.state.settings
    keys = {kid: secret.get_secret_value() for kid, secret in settings.auth_keys.items()}
    claims = _claims_of(credentials.credentials, keys, settings.auth_issuer, settings.auth_audience)
    principal = Principal(
        subject=claims.sub,
        role=claims.role,
        regions=frozenset(claims.regions),
        categories=frozenset(claims.categories),
        id_number=claims.id_number,
        name=claims.name,
    )
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


def allow(*roles: Role) -> Any:
    """Dependency: the caller's role is one of `roles` (admins always; auditors for reads). What the
    request touched is written to the audit trail in the request's own transaction, so a change and its
    audit record commit together or not at all."""
    allowed = frozenset(roles)

    async def check_role(
        request: Request, access: CurrentAccess, session: DbSession
    ) -> AsyncIterator[Access]:
        if not role_allowed(access.role, access.method, allowed):
            log.warning("access_denied", route=access.route, method=access.method)
            raise RoleNotAllowed({"role": access.role.value, "allowed": sorted(r.value for r in allowed)})
        yield access
        request.app.state.audit_trail.record(session, access)

    return Depends(check_role, scope="function")
