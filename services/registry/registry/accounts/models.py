import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.auth import Role
from shared.db import UTCDateTime, enum_column


class Account(Base):
    """A staff member's, department's, tax officer's, auditor's or administrator's account (账号): who they
    are, what they may do where, and their password's Argon2id hash. Disabled, never deleted: the audit trail
    names accounts."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, doc="Lower case; what they sign in with")
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    regions: Mapped[list[str]] = mapped_column(JSON, default=list, doc="Region codes (staff, departments)")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list, doc="Subsidy categories (departments)")
    password_hash: Mapped[str] = mapped_column(String(256))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    disabled_by: Mapped[str | None] = mapped_column(String(128), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(256), default=None)

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


class SessionKind(enum.StrEnum):
    BROWSER = "browser"  # the /sign-in page: an HttpOnly cookie holds the session's secret
    API = "api"  # POST /v1/sessions: short-lived bearer tokens name the session (sid)


class SessionEnd(enum.StrEnum):
    SIGNED_OUT = "signed_out"
    ACCOUNT_DISABLED = "account_disabled"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105  (a reason, not a password)


class AccountSession(Base):
    """One sign-in (登录会话). Requests through it are accepted while it has not ended, is younger than the
    maximum age and was used within the idle timeout, and its account is enabled."""

    __tablename__ = "account_sessions"
    __table_args__ = (Index("ix_account_sessions_account_id_ended_at", "account_id", "ended_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="The `sid` its tokens carry")
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[SessionKind] = mapped_column(enum_column(SessionKind))
    secret_hash: Mapped[str | None] = mapped_column(
        String(64), unique=True, default=None, doc="SHA-256 of the browser cookie's secret (never the secret)"
    )
    address: Mapped[str | None] = mapped_column(String(64), doc="The client address that signed in")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_reason: Mapped[SessionEnd | None] = mapped_column(enum_column(SessionEnd), default=None)


class SignInFailure(Base):
    """A sign-in refused for a wrong name or password, counted per account name and per client address
    (`key`: `account:<name>` or `address:<ip>`): kept in the database so that every replica counts alike."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(160))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
