from collection.billing import models as _billing_models  # noqa: F401  (registers the tables)
from collection.database import Base
from collection.idempotency import models as _idempotency_models  # noqa: F401
from collection.payments import models as _payment_models  # noqa: F401
from shared.migrations import run_migrations

run_migrations(Base.metadata)
