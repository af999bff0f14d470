"""Collection settings, read from COLLECTION_* environment variables."""

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

# Channels that tell collection of a payment themselves, by a signed notification (webhook).
NOTIFYING_CHANNELS = ("wechat", "alipay", "provincial_app", "bank")
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

    @model_validator(mode="after")
    def _channel_secrets_fit(self) -> Self:
        unknown = sorted(set(self.channel_secrets) - set(NOTIFYING_CHANNELS))
        if unknown:
            raise ValueError(
                f"channel_secrets: {unknown} are not notifying channels {list(NOTIFYING_CHANNELS)}"
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
