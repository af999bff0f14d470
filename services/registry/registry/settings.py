"""Registry settings, read from REGISTRY_* environment variables."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_")

    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/registry.db"
    kafka_client_id: str = "canbao-registry"
    kafka_consumer_group: str = "registry"
    # Extra policy files (one per region and coverage year) besides the ones shipped with the service.
    policy_dir: Path | None = None
