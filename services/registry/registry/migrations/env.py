from registry.database import Base
from registry.enrollment import models as _enrollment_models  # noqa: F401  (registers the tables)
from registry.people import models as _people_models  # noqa: F401
from shared.migrations import run_migrations

run_migrations(Base.metadata)
