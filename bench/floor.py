"""The floor an API request is measured against: a bare FastAPI app that takes the same JSON body as
`POST /v1/enrollments`, checked by the same pydantic model, and inserts one row into a table of its own in
the registry's database, with the services' engine factory (`shared.db.create_engine`, the same pool
settings) and served by uvicorn as the services are (`shared.service.server_options`). No token, no rules,
no audit, no events: what any endpoint that writes one row must cost on this machine.

    .venv/bin/python bench/floor.py --database-url postgresql+asyncpg://127.0.0.1:5432/db --port 8100
"""

import argparse
import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Request, status
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.enrollment.schemas import EnrollmentCreate
from registry.settings import RegistrySettings
from shared.db import create_engine
from shared.service import server_options

metadata = MetaData()
floor_rows = Table(
    "bench_floor_rows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("id_number", String(32), nullable=False),
    Column("name", String(64), nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("coverage_year", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
_INSERT = insert(floor_rows)


class FloorOut(BaseModel):
    id: str


def create_app(settings: RegistrySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pre_ping=settings.database_pool_pre_ping,
            recycle_s=settings.database_pool_recycle_s,
        )
        app.state.engine = engine
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/floor", status_code=status.HTTP_201_CREATED)
    async def create(body: EnrollmentCreate, request: Request) -> FloorOut:
        engine: AsyncEngine = request.app.state.engine
        row_id = str(uuid.uuid4())
        async with engine.begin() as conn:
            await conn.execute(
                _INSERT,
                {
                    "id": row_id,
                    "id_number": body.id_number,
                    "name": body.name,
                    "region_code": body.region_code,
                    "coverage_year": body.coverage_year,
                    "created_at": datetime.now(UTC),
                },
            )
        return FloorOut(id=row_id)

    return app


async def create_table(database_url: str) -> None:
    """Once, before serving (several workers creating it at once would race)."""
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()


def from_environment() -> FastAPI:
    """The app as each of several worker processes builds it, from the REGISTRY_ variables `main` set."""
    return create_app(RegistrySettings())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="server processes, as REGISTRY_WORKERS")
    args = parser.parse_args()
    settings = RegistrySettings(
        database_url=args.database_url, port=args.port, host="127.0.0.1", workers=args.workers
    )
    asyncio.run(create_table(args.database_url))
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **server_options(settings))
        return
    # Several workers each build their own app (their own pool), as the services' do.
    os.environ |= {"REGISTRY_DATABASE_URL": args.database_url, "REGISTRY_WORKERS": str(args.workers)}
    uvicorn.run("bench.floor:from_environment", factory=True, **server_options(settings))


if __name__ == "__main__":
    main()
