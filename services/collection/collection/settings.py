"""Collection settings, read from COLLECTION_* environment variables."""

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from collection.payments.models import NOTIFYING_CHANNELS as PAYMENT_NOTIFYING_CHANNELS
from shared.settings import ServiceSettings

# Channels that tell collection of a payment themselves, by a signed notification (webhook).
NOTIFYING_CHANNELS = tuple(c.value for c in PAYMENT_NOTIFYING_CHANNELS)
_DEV_SECRET_PREFIX = "dev-only-"  # noqa: S105  (marks the development defaults production refuses)
_MIN_SECRET_LENGTH = 32


class CollectionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECTION_")

    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/collection.db"
    kafka_client_id: str = "canbao-collection"
    kafka_consumer_group: str = "collection"
    channel_secrets: dict[str, SecretStr] = Field(
        default_factory=lambda: {
            c: SecretStr(f"{_DEV_SECRET_PREFIX}{c}-notification-secret") for c in NOTIFYING_CHANNELS
        },
        description='HMAC-SHA256 key per notifying channel, as JSON: {"wechat": "…", …}',
    )
    reconciliation_dir: Path = Field(
        default=Path("var/reconciliation"), description="Where reconciliation files are kept, as evidence"
    )
    reconciliation_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    notification_tolerance_s: int = Field(
        default=300, ge=1, description="How old a notification's timestamp may be; older ones are refused"
    )
    payment_order_ttl_s: int = Field(
        default=7200,
        ge=60,
        description="How long a payment order waits for its channel (WeChat Pay's default)",
    )
    # Requests waiting for an enrollment's bill (GET /v1/bills?wait_s=, billing/watch.py): at most this many
    # per process (each holds a socket and a little memory, no database connection), beyond them 429; bills
    # issued by another process are noticed within the re-check period.
    bill_waiters_max: int = Field(default=1000, ge=0)
    bill_wait_recheck_s: float = Field(default=1.0, gt=0, le=30)
    payment_sandbox: bool | None = Field(
        default=None,
        description="A sandbox that plays the channels (POST /v1/sandbox/payment-orders/{id}/payment, "
        "`canbao pay`), signing notifications with channel_secrets: on by default outside production, "
        "refused in production.",
    )

    @property
    def payment_order_ttl(self) -> timedelta:
        return timedelta(seconds=self.payment_order_ttl_s)

    @model_validator(mode="after")
    def _channel_secrets_fit(self) -> Self:
        unknown = sorted(set(self.channel_secrets) - set(NOTIFYING_CHANNELS))
        if unknown:
            raise ValueError(
                f"channel_secrets: {unknown} are not notifying channels {list(NOTIFYING_CHANNELS)}"
            )
        if self.payment_sandbox is None:
            self.payment_sandbox = self.environment != "production"
        elif self.environment == "production" and self.payment_sandbox:
            raise ValueError(
                "payment_sandbox plays the channels for development and tests, not in production"
            )
        if self.environment == "production":
            weak = sorted(
                channel
                for channel, secret in self.channel_secrets.items()
                if secret.get_secret_value().startswith(_DEV_SECRET_PREFIX)
                or len(secret.get_secret_value()) < _MIN_SECRET_LENGTH
            )
            if weak:
                raise ValueError(
                    f"production needs real channel secrets of {_MIN_SECRET_LENGTH}+ characters: {weak}"
                )
        return self
