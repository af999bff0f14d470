"""Reconciliation throughput on PostgreSQL: a day's WeChat file of N lines judged against N recorded payments
(most match, some were never recorded and are recorded from the file), through the collection API in
process, beside its floor measured in the same run: COPY of the same file's lines into an unlogged plain
table.

Creates (and drops first, and at the end) its own database on the given server, named with
CANBAO_TEST_DB_PREFIX when set, migrates it, records the payments in bulk (plain SQL: the setup is not what is
measured), then times `POST /v1/reconciliations` with the file. Prints lines/s, the floor and the ratio, the
CPU the app process and PostgreSQL spent per line, the memory the run added (peak RSS during the request
over RSS before it), the books' check afterwards and the machine's load average before and after, since other
work on the machine slows all.

    .venv/bin/python bench/reconciliation.py --lines 100000
"""

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

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
TICKS = os.sysconf("SC_CLK_TCK")


async def prepare(server: str, database: str, lines: int) -> list[tuple[str, str]]:
    admin = await asyncpg.connect(f"postgresql://{server}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    url = f"postgresql+asyncpg://{server}/{database}"
    mig = __import__("collection").__path__[0] + "/migrations"
    await asyncio.to_thread(command.upgrade, alembic_config(Path(mig), url), "head")
    conn = await asyncpg.connect(f"postgresql://{server}/{database}")
    bills, payments, items, file_lines = [], [], [], []
    # The books as the services would have kept them: each bill's contribution due, each payment's money in.
    transactions: list[tuple[str, str, str, datetime]] = []
    entries: list[tuple[str, str, int]] = []
    for i in range(lines):
        bill_id, enrollment_id = str(uuid.uuid4()), str(uuid.uuid4())
        unrecorded = i % UNRECORDED_EVERY == 0
        issued = str(uuid.uuid4())
        transactions.append((issued, "bill_issued", bill_id, PAID_AT))
        entries += [(issued, "resident_receivable", 38000), (issued, "resident_insurance_fiscal", -38000)]
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
            paid = str(uuid.uuid4())
            transactions.append((paid, "payment", payment_id, PAID_AT))
            entries += [(paid, "channel_clearing:wechat", 38000), (paid, "resident_receivable", -38000)]
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
    await conn.copy_records_to_table(
        "ledger_transactions", records=transactions, columns=["id", "kind", "reference", "occurred_at"]
    )
    await conn.copy_records_to_table(
        "ledger_entries", records=entries, columns=["transaction_id", "account", "amount_fen"]
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


def _status_kib(field: str) -> int:
    """A memory figure of this process (VmRSS, VmHWM) from /proc, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> None:
    """Start VmHWM afresh at the current RSS (Linux's clear_refs), so the peak measures the run alone."""
    Path("/proc/self/clear_refs").write_text("5")


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process (a PostgreSQL backend on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


async def backends_cpu(monitor: asyncpg.Connection, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the benchmark's database (but this monitor)."""
    pids = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
    )
    return {row["pid"]: _cpu_s(row["pid"]) for row in pids}


async def copy_floor(server: str, database: str, content: bytes) -> float:
    """The floor: the same file's lines into an unlogged plain table with COPY, no checks at all."""
    conn = await asyncpg.connect(f"postgresql://{server}/{database}")
    try:
        await conn.execute(
            "CREATE UNLOGGED TABLE bench_copy (reference text, paid_at text, amount text, bill_ids text)"
        )
        started = time.perf_counter()
        await conn.copy_to_table("bench_copy", source=io.BytesIO(content), format="csv", header=True)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def drop(server: str, database: str) -> None:
    admin = await asyncpg.connect(f"postgresql://{server}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def run(server: str, lines: int, *, keep: bool) -> dict[str, object]:
    load_before = os.getloadavg()
    prefix = os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao")
    database = f"{prefix}_bench_reconciliation"
    file_lines = await prepare(server, database, lines)
    content = file_bytes(file_lines)
    del file_lines
    settings = CollectionSettings(
        environment="test",
        database_url=f"postgresql+asyncpg://{server}/{database}",
        clock_start=datetime(2023, 10, 9, 1, 0, tzinfo=UTC),
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    app = create_app(settings)
    monitor = await asyncpg.connect(f"postgresql://{server}/{database}")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=3600, headers=officer
        ) as client:
            await client.get("/v1/reconciliations")  # the pool's connection opened before the clock starts
            pg_before = await backends_cpu(monitor, database)
            rss_before = _status_kib("VmRSS")
            _reset_peak_rss()
            cpu_started, started = time.process_time(), time.perf_counter()
            response = await client.post(
                "/v1/reconciliations",
                data={"channel": "wechat", "business_day": DAY.isoformat(), "uploaded_by": "bench"},
                files={"file": ("wechat.csv", content)},
            )
            elapsed, app_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            peak_kib = _status_kib("VmHWM")
            pg_after = await backends_cpu(monitor, database)
            check = (await client.get("/v1/ledger/check")).json()
    await monitor.close()
    if response.status_code != 201:
        sys.exit(f"reconciliation failed: {response.status_code} {response.text[:500]}")
    pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    copy_s = await copy_floor(server, database, content)
    if not keep:
        await drop(server, database)
    rate, floor = lines / elapsed, lines / copy_s
    return {
        "lines": lines,
        "file_mb": round(len(content) / 1e6, 1),
        "seconds": round(elapsed, 1),
        "lines_per_s": round(rate),
        "copy_lines_per_s": round(floor),
        "vs_copy": round(rate / floor, 4),
        "app_cpu_ms_per_line": round(app_cpu * 1000 / lines, 3),
        "postgres_cpu_ms_per_line": round(pg_cpu * 1000 / lines, 3),
        "rss_before_mb": round(rss_before / 1024),
        "rss_added_mb": round((peak_kib - rss_before) / 1024),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "ledger_ok": check["ok"],
        "states": response.json()["summary"]["lines"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--server", default="postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark's database afterwards")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args()
    figures = asyncio.run(run(args.server, args.lines, keep=args.keep))
    console = Console()
    console.print(
        f"{figures['lines']:,} lines ({figures['file_mb']} MB): {figures['seconds']} s, "
        f"[bold]{figures['lines_per_s']:,} lines/s[/bold]; COPY of the same lines "
        f"{figures['copy_lines_per_s']:,} lines/s: ratio {figures['vs_copy']}"
    )
    console.print(
        f"CPU per line: app {figures['app_cpu_ms_per_line']} ms, "
        f"PostgreSQL {figures['postgres_cpu_ms_per_line']} ms; RSS {figures['rss_before_mb']} MB before, "
        f"+{figures['rss_added_mb']} MB at the run's peak; "
        f"load {figures['load_before']} -> {figures['load_after']}; ledger ok: {figures['ledger_ok']}"
    )
    console.print(f"states {figures['states']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
