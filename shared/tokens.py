"""Bearer tokens without the web stack: the roles, the claims a token carries, and issuing one (JWT, HS256).

`canbao token` needs nothing more, and must start fast: shared.auth (which verifies tokens inside the
services) imports FastAPI and the database layer, which take over half a second to load. These definitions
are the same as shared.auth's — tests/test_cli_startup.py fails if the two ever differ — so a token issued
here is one the services accept.
"""

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from shared.regions import REGION_CODE_PATTERN

ALGORITHM = "HS256"
# The development signing key: `make run` and `canbao token` work out of the box; production refuses it.
DEV_KEY_ID = "dev"
DEV_KEY_PREFIX = "dev-only-"
DEV_KEY = f"{DEV_KEY_PREFIX}canbao-token-signing-key-not-for-production"
# How far ahead a token's `exp` may lie unless settings say otherwise; `canbao token --hours` stays within it.
DEFAULT_MAX_TOKEN_LIFETIME = timedelta(hours=24)


class Role(enum.StrEnum):
    RESIDENT = "resident"  # 参保人: their own records and their household's
    STAFF = "staff"  # 社区/乡镇经办人员: people in their region codes
    DEPARTMENT = "department"  # 民政、残联、退役军人… : rosters of their own subsidy categories
    TAX_OFFICER = "tax_officer"  # 税务: the collection side
    AUDITOR = "auditor"  # 审计: reads everything, every read audited
    ADMIN = "admin"


class TokenClaims(BaseModel):
    """What a token says about its bearer, beyond the registered claims (iss, aud, exp, iat)."""

    sub: str = Field(min_length=1, max_length=128)
    role: Role
    regions: list[Annotated[str, Field(pattern=REGION_CODE_PATTERN)]] = Field(default_factory=list)
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    id_number: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=32)] | None
    ) = Field(
        default=None, description="A resident's own ID number (a lowercase check character x is the same X)"
    )
    name: str | None = Field(default=None, max_length=64)
    sid: str | None = Field(
        default=None,
        max_length=64,
        description="The sign-in session the token belongs to (tokens the registry issues at sign-in): the "
        "registry refuses it once the session ends or the account is disabled",
    )


def issue_token(
    claims: TokenClaims,
    *,
    secret: str,
    key_id: str = DEV_KEY_ID,
    issuer: str = "canbao",
    audience: str = "canbao",
    ttl: timedelta = timedelta(hours=8),
) -> str:
    import jwt  # here, not at the top: `canbao --help` needs no JWT library

    now = datetime.now(UTC)
    payload: dict[str, Any] = claims.model_dump(mode="json", exclude_none=True) | {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"kid": key_id})


def dev_token(role: Role | str, **claims: Any) -> str:
    """A token signed with the development key (make run, tests); production services refuse that key."""
    role = Role(role)
    return issue_token(
        TokenClaims(sub=claims.pop("sub", f"dev-{role.value}"), role=role, **claims), secret=DEV_KEY
    )
