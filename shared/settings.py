"""Settings base: each service subclasses it with its own env prefix (REGISTRY_, COLLECTION_)."""

from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal, Self

from pydantic import AnyHttpUrl, Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings

from shared.auth import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    DEV_KEY,
    DEV_KEY_ID,
    DEV_KEY_PREFIX,
    MAX_AUTHORIZATION_BYTES,
    MIN_KEY_LENGTH,
)
from shared.db import LOCK_TIMEOUT_S, POOL_MAX_OVERFLOW, POOL_RECYCLE_S, POOL_SIZE, STATEMENT_TIMEOUT_S
from shared.file_limits import FileLimits
from shared.oidc import OidcClaimMapping

Environment = Literal["development", "test", "production"]
OidcAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


# Who is served GET /metrics unless configured otherwise: this host only.
LOOPBACK: tuple[IPv4Network | IPv6Network, ...] = (IPv4Network("127.0.0.1/32"), IPv6Network("::1/128"))


class ServiceSettings(BaseSettings):
    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str
    # The connection pool (shared.db, docs/performance.md); SQLite ignores it. No pre-ping by default: a
    # connection the server closed fails the one request that drew it (503) and the pool is renewed.
    database_pool_size: int = Field(default=POOL_SIZE, ge=1)
    database_max_overflow: int = Field(default=POOL_MAX_OVERFLOW, ge=0)
    database_pool_pre_ping: bool = False
    database_pool_recycle_s: int = Field(default=POOL_RECYCLE_S, ge=-1, description="-1: never")
    # How long a request's statement may wait for a lock, and run at most, before it is refused with 503
    # (PostgreSQL; the event path and the command-line tools are not limited; 0: no limit).
    database_lock_timeout_s: float = Field(default=LOCK_TIMEOUT_S, ge=0)
    database_statement_timeout_s: float = Field(default=STATEMENT_TIMEOUT_S, ge=0)
    # Server processes (uvicorn workers) on one port, each with its own pool, relay and consumer; more than
    # one needs PostgreSQL (docs/performance.md).
    workers: int = Field(default=1, ge=1, le=64)
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "canbao"
    kafka_consumer_group: str
    # Created at start-up; the embedded broker would otherwise auto-create topics with its own default.
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_request_timeout_s: float = Field(default=10.0, gt=0)
    # How long the broker may hold a consumer's fetch when nothing is there. Kafka answers as soon as a record
    # arrives; the embedded broker (Tansu) answers late: ~0.1 s per event hop at Kafka's default 0.5 s.
    kafka_fetch_max_wait_s: float = Field(default=0.1, gt=0)
    # How long the producer holds a record for others to join its batch. The relay hands the broker a round's
    # events at once, so they are batched anyway; the embedded broker acknowledged ~5 ms later per round at 5.
    kafka_linger_s: float = Field(default=0.0, ge=0)
    # Broker authentication: production brokers authenticate clients (SASL) and authorise topics (ACLs), so
    # that only registry writes registry.enrollments.v1 and only collection writes collection.payments.v1.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle that signed the broker's cert")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = None
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    outbox_batch_size: int = Field(default=200, ge=1)
    # Rounds of the relay start at least this far apart unless the last one found a full batch (a backlog): a
    # busy service's commits then share a round instead of waking one each, while a commit after a quiet
    # spell is published at once. 0 gives every wake its own round.
    outbox_round_spacing_s: float = Field(default=0.02, ge=0, le=1)
    consumer_max_attempts: int = Field(default=5, ge=1)
    # Records the consumer applies in one transaction (shared.inbox): one commit for up to this many.
    consumer_batch_size: int = Field(default=100, ge=1)
    # Outside production only: the business clock starts at this moment (with zone) and runs on from there.
    clock_start: datetime | None = None
    log_level: str = "INFO"
    log_json: bool = False
    auth_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {DEV_KEY_ID: SecretStr(DEV_KEY)},
        description='Keys that verify bearer tokens (HS256), by key id, as JSON: {"2026-11": "…"}; '
        "several at once while keys rotate",
    )
    auth_issuer: str = "canbao"
    auth_audience: str = "canbao"
    auth_max_token_lifetime_s: int = Field(
        default=int(DEFAULT_MAX_TOKEN_LIFETIME.total_seconds()),
        ge=60,
        description="A token whose exp lies further ahead than this is refused (401 lifetime_too_long)",
    )
    # An external OpenID Connect provider (统一身份认证) whose tokens are accepted besides the HS256 ones
    # (shared/oidc.py, docs/operations.md); off unless an issuer is set.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = Field(default=None, description="Where the provider publishes its keys")
    oidc_algorithms: list[OidcAlgorithm] = Field(default=["RS256", "ES256"], min_length=1)
    oidc_claims: OidcClaimMapping = Field(
        default_factory=OidcClaimMapping,
        description="Which claims carry the subject, role, regions and categories, as JSON",
    )
    oidc_jwks_ttl_s: int = Field(default=3600, ge=60, description="How long fetched keys are used")
    oidc_jwks_refetch_min_interval_s: float = Field(
        default=30.0, ge=0, description="Fetches for a token naming an unknown key are at most this often"
    )
    # JSON bodies are small; file uploads have their own, larger limits.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # The request line and all headers together; beyond it the server answers 400 and closes the connection
    # before anything is parsed (a bearer token alone may take MAX_AUTHORIZATION_BYTES).
    max_header_bytes: int = Field(default=32 * 1024, ge=2 * MAX_AUTHORIZATION_BYTES)
    lookup_failures_allowed: int = Field(
        default=5, ge=1, description="Failed ID-number lookups a caller may make within the window"
    )
    lookup_failure_window_s: int = Field(default=900, ge=1)
    # Uploaded spreadsheets are read within these bounds whatever they hold (shared/file_limits.py); the
    # defaults let a real roster of a million rows through.
    upload_max_unzipped_bytes: int = Field(
        default=FileLimits.max_unzipped_bytes, ge=1024 * 1024, description="An .xlsx's parts, inflated"
    )
    upload_max_zip_ratio: int = Field(default=FileLimits.max_zip_ratio, ge=10)
    upload_max_shared_strings_bytes: int = Field(default=FileLimits.max_shared_strings_bytes, ge=1024 * 1024)
    upload_max_cells_per_row: int = Field(default=FileLimits.max_cells_per_row, ge=16)
    upload_max_row_bytes: int = Field(default=FileLimits.max_row_bytes, ge=4096)
    # Operations (shared/metrics.py, shared/tracing.py, docs/operations.md). GET /metrics answers without a
    # token, to these networks only; what it reads from the database is read at most once per metrics_cache_s.
    metrics_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [*LOOPBACK],
        description='Client networks served GET /metrics, as JSON: ["127.0.0.1/32", "10.0.0.0/24"]',
    )
    metrics_cache_s: float = Field(default=10.0, ge=0)
    # Traces go by OTLP/HTTP to this URL (e.g. http://collector:4318/v1/traces); unset: no tracing at all.
    tracing_otlp_endpoint: AnyHttpUrl | None = None
    tracing_sample_ratio: float = Field(default=1.0, ge=0, le=1, description="Share of traces begun here")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def file_limits(self) -> FileLimits:
        return FileLimits(
            max_unzipped_bytes=self.upload_max_unzipped_bytes,
            max_zip_ratio=self.upload_max_zip_ratio,
            max_shared_strings_bytes=self.upload_max_shared_strings_bytes,
            max_cells_per_row=self.upload_max_cells_per_row,
            max_row_bytes=self.upload_max_row_bytes,
        )

    @model_validator(mode="after")
    def _settings_agree(self) -> Self:
        if not self.auth_keys:
            raise ValueError("auth_keys: at least one token key is needed")
        oidc = (self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url)
        if any(oidc) and not all(oidc):
            raise ValueError("oidc_issuer, oidc_audience and oidc_jwks_url go together")
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError("kafka_sasl_username and kafka_sasl_password go with a SASL security protocol")
        if self.clock_start is not None and self.clock_start.tzinfo is None:
            raise ValueError("clock_start needs a time zone, e.g. 2023-10-08T09:00:00+08:00")
        if self.workers > 1 and self.is_sqlite:
            # One SQLite file serialises its writers, and its outbox has no lock to keep one relay at a time.
            raise ValueError("workers > 1 needs PostgreSQL; SQLite runs one server process")
        return self

    @model_validator(mode="after")
    def _refuse_embedded_defaults_in_production(self) -> Self:
        if self.environment != "production":
            return self
        if self.is_sqlite:
            raise ValueError("production needs a PostgreSQL database_url, not the embedded SQLite default")
        if self.clock_start is not None:
            raise ValueError("clock_start is for development and tests; production runs on real time")
        weak = sorted(
            kid
            for kid, secret in ((k, v.get_secret_value()) for k, v in self.auth_keys.items())
            if secret.startswith(DEV_KEY_PREFIX) or len(secret) < MIN_KEY_LENGTH
        )
        if weak:
            raise ValueError(f"production needs real token keys of {MIN_KEY_LENGTH}+ characters: {weak}")
        if self.oidc_jwks_url and not self.oidc_jwks_url.startswith("https://"):
            raise ValueError("production fetches the identity provider's keys over https")
        if self.oidc_jwks_url and not self.oidc_claims.role_values:
            # Without it any provider role spelled like one of ours (`admin`) would be ours.
            raise ValueError("production maps the provider's roles explicitly: oidc_claims.role_values")
        if not self.kafka_security_protocol.startswith("SASL"):
            raise ValueError(
                "production brokers authenticate their clients: kafka_security_protocol SASL_SSL or "
                "SASL_PLAINTEXT with a SCRAM user per service"
            )
        return self
