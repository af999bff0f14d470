from registry.database import Base
from registry.main import SPEC  # noqa: F401  (imports every model, so the metadata is complete)
from shared.migrations import run_migrations

run_migrations(Base.metadata)
