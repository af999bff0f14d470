from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from registry.accounts.models import Account
from registry.settings import MIN_PASSWORD_LENGTH
from shared.auth import Role
from shared.fields import PersonName
from shared.regions import REGION_CODE_PATTERN

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"
# An account name is the same whatever its case: stored and compared in lower case.
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=USERNAME_PATTERN), AfterValidator(str.lower)
]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=128)]
Region = Annotated[str, Field(pattern=REGION_CODE_PATTERN)]
# A subsidy category code or a roster kind, as tokens carry them.
Category = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Regions = Annotated[list[Region], Field(max_length=500)]
Categories = Annotated[list[Category], Field(max_length=100)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username = Field(description="What they sign in with: 3–64 letters, digits, `.`, `_`, `@`, `-`")
    display_name: PersonName
    role: Role = Field(description="staff, department, tax_officer, auditor or admin")
    regions: Regions = Field(default_factory=list, description="Region codes (staff and departments)")
    categories: Categories = Field(default_factory=list, description="Subsidy categories (departments)")
    password: Password = Field(description=f"At least {MIN_PASSWORD_LENGTH} characters, not the account name")


class AccountChange(BaseModel):
    """Only the fields given change; a new password ends the account's sessions."""

    model_config = ConfigDict(extra="forbid")

    display_name: PersonName | None = None
    role: Role | None = None
    regions: Regions | None = None
    categories: Categories | None = None
    password: Password | None = None


class AccountDeactivation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class AccountOut(BaseModel):
    account_id: str
    username: str
    display_name: str
    role: Role
    regions: list[str]
    categories: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_by: str | None
    disabled_reason: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    password_changed_at: datetime

    @classmethod
    def of(cls, a: Account) -> "AccountOut":
        return cls(
            account_id=a.id,
            username=a.username,
            display_name=a.display_name,
            role=a.role,
            regions=list(a.regions),
            categories=list(a.categories),
            enabled=a.enabled,
            disabled_at=a.disabled_at,
            disabled_by=a.disabled_by,
            disabled_reason=a.disabled_reason,
            created_at=a.created_at,
            created_by=a.created_by,
            updated_at=a.updated_at,
            updated_by=a.updated_by,
            password_changed_at=a.password_changed_at,
        )


class AccountList(BaseModel):
    items: list[AccountOut]


class SignInRequest(BaseModel):
    """Any name and password within the limits: a name that fits no account is refused as a wrong password."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class SessionToken(BaseModel):
    session_id: str
    access_token: str = Field(description="Send as `Authorization: Bearer …` to both services")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the scheme's name)
    expires_at: datetime = Field(
        description="When the token expires: get another from /v1/sessions/current/token"
    )
    session_expires_at: datetime = Field(description="When the sign-in itself ends, unused or not")
    account: AccountOut
