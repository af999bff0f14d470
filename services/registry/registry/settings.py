"""Registry settings, read from REGISTRY_* environment variables."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field
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
    # Uploaded rosters are kept here until applied (and after, as the record of what was sent).
    roster_dir: Path = Path("var/rosters")
    roster_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    roster_chunk_rows: int = Field(default=500, ge=1, description="Rows judged or applied per transaction")
    # 参保提醒: who delivers them ("log", or a gateway as module:factory); how often one person may get one.
    reminder_sender: str = Field(default="log", pattern=r"^(log|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
    reminder_log: Path = Path("var/reminders.log")
    reminder_min_interval_hours: int = Field(default=72, ge=1, le=24 * 365)
    reminder_batch: int = Field(default=100, ge=1, le=10_000)

    @property
    def reminder_min_interval(self) -> timedelta:
        return timedelta(hours=self.reminder_min_interval_hours)
