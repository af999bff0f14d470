"""Reconciliation throughput on PostgreSQL: a day's WeChat file of N lines judged against N recorded payments
(most match, some were never recorded and are recorded from the file), through the collection API in
process, with peak memory.

Creates (and drops first) its own database on the given server, migrates it, records the payments in bulk
(plain SQL: the setup is not what is measured), then times `POST /v1/reconciliations` with the file.

    .venv/bin/python bench/reconciliation.py --lines 100000
"""

import argparse
import asyncio
import csv
import io
import resource
import sys
import time
import uuid
from datetime import UTC, date, datetime

import asyncpg
import httpx
from alembic import command
from rich.console import Console

from collection.main import create_app
from collection.settings import CollectionSettings
from shared.auth import Role, dev_token
from shared.service import alembic_config

DAY = date(2023, 10, 8)
PAID_AT = datetime(2023, 10, 8, 2, 0, tzinfo=UTC)  # 10:00 Beijing
UNRECORDED_EVERY = 20  # one line in twenty is a payment collection never heard of


async def prepare(server: str, database: str, lines: int) -> list[tuple[str, str]]:
    admin = await asyncpg.connect(f"postgresql://{server}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    url = f"postgresql+asyncpg://{server}/{database}"
    mig = __import__("collection").__path__[0] + "/migrations"
    await asyncio.to_thread(command.upgrade, alembic_config(__import__("pathlib").Path(mig), url), "head")
    conn = await asyncpg.connect(f"postgresql://{server}/{database}")
    bills, payments, items, file_lines = [], [], [], []
    for i in range(lines):
        bill_id, enrollment_id = str(uuid.uuid4()), str(uuid.uuid4())
        unrecorded = i % UNRECORDED_EVERY == 0
        bills.append(
            (
                bill_id,
                enrollment_id,
                "resident_id",
                f"34010419800101{i:04d}"[:18],
                "居民",
                None,
                "340104",
                2024,
                38000,
                1,
                date(2023, 12, 31),
                date(2024, 1, 1),
                date(2024, 12, 31),
                "open" if unrecorded else "paid",
                PAID_AT,
                None if unrecorded else PAID_AT,
                "[]",
                0,
            )
        )
        reference = f"WX{i:09d}"
        if not unrecorded:
            payment_id = str(uuid.uuid4())
            payments.append(
                (payment_id, 38000, "wechat", None, f"CB{i:016d}", PAID_AT, reference, "notification", None)
            )
            items.append((payment_id, bill_id, enrollment_id, 38000, 0))
        file_lines.append((reference, bill_id))
    await conn.copy_records_to_table(
        "bills",
        records=bills,
        columns=[
            "id",
            "enrollment_id",
            "document_type",
            "id_number",
            "payer_name",
            "payer_organisation",
            "region_code",
            "coverage_year",
            "amount_due_fen",
            "price_version",
            "payable_until",
            "coverage_start",
            "coverage_end",
            "status",
            "created_at",
            "paid_at",
            "refundable_reasons",
            "refunded_fen",
        ],
    )
    await conn.copy_records_to_table(
        "payments",
        records=payments,
        columns=[
            "id",
            "amount_fen",
            "channel",
            "agent_id",
            "receipt_no",
            "paid_at",
            "channel_reference",
            "origin",
            "settled_at",
        ],
    )
    await conn.copy_records_to_table(
        "payment_items",
        records=items,
        columns=["payment_id", "bill_id", "enrollment_id", "amount_fen", "position"],
    )
    await conn.execute("ANALYZE")
    await conn.close()
    return file_lines


def file_bytes(lines: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["交易流水号", "缴费时间", "缴费金额", "账单号"])
    for reference, bill_id in lines:
        writer.writerow([reference, "2023-10-08 10:00:00", "380.00", bill_id])
    return out.getvalue().encode()


async def run(server: str, lines: int) -> None:
    console = Console()
    database = "canbao_bench_reconciliation"
    file_lines = await prepare(server, database, lines)
    content = file_bytes(file_lines)
    settings = CollectionSettings(
        environment="test",
        database_url=f"postgresql+asyncpg://{server}/{database}",
        clock_start=datetime(2023, 10, 9, 1, 0, tzinfo=UTC),
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=3600, headers=officer
        ) as client:
            started = time.perf_counter()
            response = await client.post(
                "/v1/reconciliations",
                data={"channel": "wechat", "business_day": DAY.isoformat(), "uploaded_by": "bench"},
                files={"file": ("wechat.csv", content)},
            )
            elapsed = time.perf_counter() - started
    if response.status_code != 201:
        sys.exit(f"reconciliation failed: {response.status_code} {response.text[:500]}")
    summary = response.json()["summary"]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"{lines:,} lines ({len(content) / 1e6:.1f} MB): {elapsed:.1f} s, {lines / elapsed:,.0f} lines/s, "
        f"peak RSS {rss_mb:.0f} MB; states {summary['lines']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--server", default="postgres@127.0.0.1:5432")
    args = parser.parse_args()
    asyncio.run(run(args.server, args.lines))


if __name__ == "__main__":
    main()
