"""`alembic upgrade head` builds exactly the tables the models describe, on both databases."""

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from collection.main import SPEC as COLLECTION  # noqa: F401  (imports every collection model)
from registry.main import SPEC as REGISTRY  # noqa: F401  (imports every registry model)
from shared.db import create_engine
from tests.support import SERVICES


def metadata_of(service: str) -> MetaData:
    if service == "registry":
        from registry.database import Base as RegistryBase

        return RegistryBase.metadata
    from collection.database import Base as CollectionBase

    return CollectionBase.metadata


@pytest.mark.parametrize("service", SERVICES)
def test_models_match_the_migrations(
    service: str, backend: str, migrated_urls: dict[tuple[str, str], str]
) -> None:
    metadata = metadata_of(service)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async def run() -> list[Any]:
        engine = create_engine(migrated_urls[(service, backend)])
        async with engine.connect() as conn:
            result = await conn.run_sync(diff)
        await engine.dispose()
        return result

    assert asyncio.run(run()) == []
