"""Collection settings, read from COLLECTION_* environment variables."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CollectionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECTION_")

    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/collection.db"
    kafka_client_id: str = "canbao-collection"
    kafka_consumer_group: str = "collection"
