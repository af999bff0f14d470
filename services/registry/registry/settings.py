"""Registry settings, read from REGISTRY_* environment variables."""

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.auth import DEV_KEY_PREFIX
from shared.settings import ServiceSettings

# `make run` and development: the first administrator's password when none is set (production refuses it).
DEV_ADMIN_PASSWORD = f"{DEV_KEY_PREFIX}password"
MIN_PASSWORD_LENGTH = 12
# OWASP's floor for Argon2id (19 MiB, two passes, one lane): production refuses cheaper hashing.
MIN_PASSWORD_HASH_MEMORY_KIB = 19 * 1024
MIN_PASSWORD_HASH_TIME_COST = 2
# Chunks of a roster applied at once on PostgreSQL (registry.roster.worker): with two, the applying process
# sat idle waiting on the database for a fifth to a quarter of a run (its rules had run ahead while both
# chunks were in the database's hands); with three, about a tenth (docs/performance.md, "Rosters: three
# chunks applied at once").
ROSTER_CHUNKS_APPLIED_AT_ONCE = 3


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_")

    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/registry.db"
    kafka_client_id: str = "canbao-registry"
    kafka_consumer_group: str = "registry"
    # Extra policy files (one per region and coverage year) besides the ones shipped with the service.
    policy_dir: Path | None = None
    # Uploaded rosters are kept here until applied (and after, as the record of what was sent).
    roster_dir: Path = Path("var/rosters")
    roster_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    roster_chunk_rows: int = Field(default=500, ge=1, description="Rows judged or applied per transaction")
    roster_chunks_applied_at_once: int = Field(
        default=ROSTER_CHUNKS_APPLIED_AT_ONCE,
        ge=1,
        le=8,
        description="Chunks of a roster applied at once on PostgreSQL, each on a connection of the pool",
    )
    # 参保提醒: who delivers them ("log", or a gateway as module:factory); how often one person may get one.
    reminder_sender: str = Field(default="log", pattern=r"^(log|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
    reminder_log: Path = Path("var/reminders.log")
    reminder_min_interval_hours: int = Field(default=72, ge=1, le=24 * 365)
    reminder_batch: int = Field(default=100, ge=1, le=10_000)
    # Requests waiting for an enrollment to change (GET /v1/enrollments/{id}?wait_s=, enrollment/watch.py): at
    # most this many per process (beyond: 429), and how often changes made by other processes are looked for.
    enrollment_waiters_max: int = Field(default=1000, ge=0)
    enrollment_wait_recheck_s: float = Field(default=1.0, gt=0, le=30)

    # Accounts and sign-in (registry/accounts, docs/operations.md).
    bootstrap_admin_username: str = Field(default="admin", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
    bootstrap_admin_password: SecretStr | None = Field(
        default=None,
        description="The first administrator's password, used once by `migrate` while the registry has no "
        "account; unset: the development password outside production, no account in production",
    )
    session_max_age_s: int = Field(default=12 * 3600, ge=300, description="A sign-in lasts at most this long")
    session_idle_timeout_s: int = Field(
        default=30 * 60, ge=60, description="…and ends after this long unused"
    )
    session_token_ttl_s: int = Field(
        default=300,
        ge=60,
        le=3600,
        description="Life of a token issued at sign-in: collection, which keeps no sessions, accepts it this "
        "long after its account is disabled (the registry refuses it at once)",
    )
    session_cookie_secure: bool | None = Field(
        default=None, description="The cookie's Secure flag; unset: on in production (which refuses it off)"
    )
    auth_signing_key_id: str | None = Field(
        default=None, description="Which of auth_keys signs the tokens issued at sign-in (default: the first)"
    )
    sign_in_failures_allowed: int = Field(default=5, ge=1, description="Per account name, within the window")
    sign_in_address_failures_allowed: int = Field(default=20, ge=1, description="Per client address")
    sign_in_failure_window_s: int = Field(default=900, ge=10)
    password_hash_time_cost: int = Field(default=MIN_PASSWORD_HASH_TIME_COST, ge=1)
    password_hash_memory_kib: int = Field(default=MIN_PASSWORD_HASH_MEMORY_KIB, ge=64)
    password_hash_parallelism: int = Field(default=1, ge=1, le=16)

    @property
    def reminder_min_interval(self) -> timedelta:
        return timedelta(hours=self.reminder_min_interval_hours)

    @property
    def cookie_secure(self) -> bool:
        return (
            self.environment == "production"
            if self.session_cookie_secure is None
            else self.session_cookie_secure
        )

    def signing_key(self) -> tuple[str, str]:
        """The key id and secret that sign the tokens issued at sign-in."""
        key_id = self.auth_signing_key_id or next(iter(self.auth_keys))
        return key_id, self.auth_keys[key_id].get_secret_value()

    def first_admin_password(self) -> str | None:
        """The first administrator's password; an empty variable is an unset one (as compose passes it)."""
        if self.bootstrap_admin_password is not None and self.bootstrap_admin_password.get_secret_value():
            return self.bootstrap_admin_password.get_secret_value()
        return None if self.environment == "production" else DEV_ADMIN_PASSWORD

    @model_validator(mode="after")
    def _refuse_weak_sign_in_in_production(self) -> Self:
        if self.auth_signing_key_id is not None and self.auth_signing_key_id not in self.auth_keys:
            raise ValueError("auth_signing_key_id names none of auth_keys")
        if self.session_token_ttl_s > self.auth_max_token_lifetime_s:
            raise ValueError(
                "session_token_ttl_s is longer than the services accept (auth_max_token_lifetime_s)"
            )
        if self.environment != "production":
            return self
        password = self.first_admin_password()
        if password is not None and (
            password.startswith(DEV_KEY_PREFIX) or len(password) < MIN_PASSWORD_LENGTH
        ):
            raise ValueError(
                f"production refuses the development administrator password and any under "
                f"{MIN_PASSWORD_LENGTH} characters (bootstrap_admin_password)"
            )
        if self.session_cookie_secure is False:
            raise ValueError("production sends the session cookie over https only (session_cookie_secure)")
        if (
            self.password_hash_memory_kib < MIN_PASSWORD_HASH_MEMORY_KIB
            or self.password_hash_time_cost < MIN_PASSWORD_HASH_TIME_COST
        ):
            raise ValueError("production hashes passwords with at least 19 MiB and two passes of Argon2id")
        return self
