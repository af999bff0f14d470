"""A subsidy roster applied in bulk keeps the single enrollment's guarantees: one EnrollmentCreated event per
enrollment, saying what the API says of it; one live enrollment per person and year even when a single
enrollment of one of the chunk's people races the chunk; cells longer than their columns refused at
validation, not at application."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from registry.context import get_registry_of
from registry.database import OutboxMessage
from registry.enrollment.models import Enrollment
from registry.enrollment.schemas import EnrollmentCreate
from registry.enrollment.service import enroll
from registry.main import create_app
from registry.roster.worker import RosterWorker
from registry.settings import RegistrySettings
from shared.db import create_engine, create_sessionmaker
from shared.events import REGISTRY_ENROLLMENTS, EnrollmentCreated, Envelope
from shared.money import parse_yuan
from tests.conftest import ADMIN_TOKEN, Harness
from tests.registry.helpers import processed, review, rows_of, upload
from tests.registry.roster_files import ATTACHMENT_4
from tests.spreadsheets import xlsx
from tests.support import migrate, recreate_pg_database, resident_id

JING_TITLE = ["泾县2023年度城乡居民医保资助参保人员花名册", "人员类别：低保对象"]
JING_WINDOW = "2022-11-15T10:00:00+08:00"


def jing_id() -> str:
    return resident_id(region="341823")


async def applied(h: Harness, rows: list[list[Any]]) -> dict[str, Any]:
    created = await upload(h, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保花名册.xlsx")
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    return await processed(h, upload_id)


async def test_each_enrollment_a_roster_makes_has_one_event_saying_what_the_api_says(
    registry: Harness,
) -> None:
    registry.at(JING_WINDOW)
    # Names a JSON document must escape are written as the event model would write them.
    listed = {jing_id(): name for name in ("张一", '约翰"史密斯', "王\\二")}
    rows = [[i, name, number, "泾川镇", "", "", ""] for i, (number, name) in enumerate(listed.items(), 1)]

    done = await applied(registry, rows)

    assert [r["outcome"] for r in await rows_of(registry, done["upload_id"])] == ["enrolled"] * 3
    async with registry.sessionmaker() as session:
        outbox = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert len(outbox) == 3
    for row in outbox:
        envelope = Envelope.from_bytes(row.payload)
        event = envelope.payload(EnrollmentCreated)
        assert (row.topic, row.key, row.event_id) == (REGISTRY_ENROLLMENTS, envelope.subject, envelope.id)
        assert (envelope.type, event.enrollment_id) == (EnrollmentCreated.event_type, envelope.subject)
        fetched = (await registry.client.get(f"/v1/enrollments/{envelope.subject}")).json()
        assert event.name == listed[event.id_number] == fetched["name"]
        assert event.personal_due_fen == parse_yuan(fetched["personal_due"]) == 3500
        assert [(line.category, line.funder, line.amount_fen) for line in event.subsidy_lines] == [
            (line["category"], line["funder"], parse_yuan(line["amount"]))
            for line in fetched["subsidy_lines"]
        ]
        assert (event.price_version, event.payable_until.isoformat(), event.coverage_end.isoformat()) == (
            fetched["price_version"],
            fetched["payable_until"],
            fetched["coverage_end"],
        )
    assert len({row.event_id for row in outbox}) == 3


async def test_a_cell_longer_than_its_column_is_refused_at_validation(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    rows = [[1, "张一", jing_id(), "泾川镇", "村" * 65, "", ""], [2, "张二", jing_id(), "泾川镇", "", "", ""]]
    created = await upload(registry, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保花名册.xlsx")
    done = await processed(registry, created.json()["upload_id"])

    assert (done["rows_accepted"], done["rows_rejected"]) == (1, 1)
    [rejected] = await rows_of(registry, done["upload_id"], "rejected")
    assert [(p["column"], p["code"]) for p in rejected["problems"]] == [("村（居）委\n会", "value_too_long")]


@pytest.fixture
async def own_registry(tmp_path: Path, worker: str) -> AsyncIterator[Harness]:
    """The registry app on a PostgreSQL database of its own, each session on a connection of its own (the
    harness runs every session on one), as two transactions racing need."""
    url = await asyncio.to_thread(recreate_pg_database, f"canbao_roster_race_{worker}_registry")
    await asyncio.to_thread(migrate, "registry", url)
    app = create_app(
        RegistrySettings(
            environment="test",
            database_url=url,
            roster_dir=tmp_path / "rosters",
            reminder_log=tmp_path / "reminders.log",
        )
    )
    engine = create_engine(url)
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield Harness(app, app.state.sessionmaker, client, "postgresql")
    await engine.dispose()


@pytest.mark.xdist_group("roster-race")
async def test_a_single_enrollment_racing_a_roster_chunk_leaves_one_enrollment(own_registry: Harness) -> None:
    h = own_registry
    h.at(JING_WINDOW)
    racer, others = jing_id(), [jing_id(), jing_id()]
    # The racer is registered (a category of another department's), not enrolled, when the roster is read.
    assigned = await h.client.post(
        "/v1/subsidy-assignments",
        json={
            "person": {"id_number": racer, "name": "赛一"},
            "region_code": "341823",
            "coverage_year": 2023,
            "category": "特困人员",
            "evidence_ref": "县民政局 认定书",
            "assigned_by": "staff-1",
        },
    )
    assert assigned.status_code == 201, assigned.text
    rows = [[1, "赛一", racer, "泾川镇", "", "", ""]] + [
        [i, f"张{i}", number, "泾川镇", "", "", ""] for i, number in enumerate(others, 2)
    ]
    created = await upload(h, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保花名册.xlsx")
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200

    # A counter enrollment of the racer, not yet committed: the chunk's insert waits for it on the unique
    # index, and fails once it commits; the chunk is then redone row by row.
    async with h.sessionmaker() as counter:
        await enroll(
            counter,
            get_registry_of(h.app),
            EnrollmentCreate(id_number=racer, name="赛一", region_code="341823", coverage_year=2023),
        )
        await counter.flush()
        applying = asyncio.create_task(h.app.state.roster_worker.run_until_idle())
        while not await _waiting_on_a_lock(h):
            assert not applying.done(), applying
            await asyncio.sleep(0.05)
        await counter.commit()
    await applying

    outcomes = {r["values"]["name"]: r["outcome"] for r in await rows_of(h, upload_id)}
    assert outcomes == {"赛一": "already_enrolled", "张2": "enrolled", "张3": "enrolled"}
    async with h.sessionmaker() as session:
        live = await session.scalar(select(func.count()).select_from(Enrollment))
        events = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert (live, events) == (3, 3)  # one each, and one EnrollmentCreated each


async def _waiting_on_a_lock(h: Harness) -> bool:
    async with h.sessionmaker() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def test_rows_repeating_an_earlier_chunk_are_rejected_while_chunks_are_judged_ahead(
    registry: Harness,
) -> None:
    """Validation judges a chunk while the one before is stored: a number given in the chunk just before, or
    further back, still rejects the row repeating it, naming the first row, and the rest apply."""
    registry.at(JING_WINDOW)
    a, b, c, d = (jing_id() for _ in range(4))
    numbers = [a, b, c, a, d, c, b]  # rows 4-10, chunks of two: (a b) (c a) (d c) (b)
    rows = [[i, f"居民{i}", n, "泾川镇", "", "", ""] for i, n in enumerate(numbers, 1)]
    created = await upload(registry, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保花名册.xlsx")
    upload_id = created.json()["upload_id"]
    worker = RosterWorker(lambda: registry.app.state.sessionmaker, lambda: get_registry_of(registry.app), 2)

    await worker.run_until_idle()
    judged = await rows_of(registry, upload_id)
    assert [r["status"] for r in judged] == ["accepted"] * 3 + ["rejected"] + ["accepted"] + ["rejected"] * 2
    first_row = {a: 4, b: 5, c: 6}
    for item in judged:
        if item["status"] == "rejected":
            (problem,) = item["problems"]
            assert problem["code"] == "duplicate_row"
            assert f"第 {first_row[item['values']['id_number']]} 行" in problem["message_zh"]
    assert [r["row_no"] for r in await rows_of(registry, upload_id, "rejected")] == [7, 9, 10]
    assert (await review(registry, upload_id)).status_code == 200
    await worker.run_until_idle()

    outcomes = [(r["status"], r["outcome"]) for r in await rows_of(registry, upload_id)]
    assert (
        outcomes
        == [("applied", "enrolled")] * 3
        + [("rejected", None)]
        + [("applied", "enrolled")]
        + [("rejected", None)] * 2
    )
    async with registry.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 4
