"""A subsidy roster applied in bulk keeps the single enrollment's guarantees: one EnrollmentCreated event per
enrollment, saying what the API says of it; one live enrollment per person and year even when a single
enrollment of one of the chunk's people races the chunk; cells longer than their columns refused at
validation, not at application."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

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
from tests.registry.helpers import (
    HEFEI,
    HEFEI_WINDOW,
    assign,
    enrolled,
    person,
    processed,
    review,
    rows_of,
    upload,
)
from tests.registry.roster_files import ATTACHMENT_4
from tests.spreadsheets import csv_bytes, xlsx
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
    fetched = await events_said_as_the_api_says(registry)
    assert {number: e["name"] for number, e in fetched.items()} == listed
    assert {parse_yuan(e["personal_due"]) for e in fetched.values()} == {3500}


async def events_said_as_the_api_says(h: Harness, after: int = 0) -> dict[str, dict[str, Any]]:
    """Each EnrollmentCreated event in the outbox (past the message `after`), once, saying what the API says
    of its enrollment; the enrollments as the API gives them, by the ID number their event names."""
    async with h.sessionmaker() as session:
        outbox = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.event_type == EnrollmentCreated.event_type, OutboxMessage.id > after)
                .order_by(OutboxMessage.id)
            )
        ).all()
    by_number: dict[str, dict[str, Any]] = {}
    for row in outbox:
        envelope = Envelope.from_bytes(row.payload)
        event = envelope.payload(EnrollmentCreated)
        assert (row.topic, row.key, row.event_id) == (REGISTRY_ENROLLMENTS, envelope.subject, envelope.id)
        assert (envelope.type, event.enrollment_id) == (EnrollmentCreated.event_type, envelope.subject)
        fetched = (await h.client.get(f"/v1/enrollments/{envelope.subject}")).json()
        assert event.name == fetched["name"]
        assert event.personal_due_fen == parse_yuan(fetched["personal_due"])
        assert [(line.category, line.funder, line.amount_fen) for line in event.subsidy_lines] == [
            (line["category"], line["funder"], parse_yuan(line["amount"]))
            for line in fetched["subsidy_lines"]
        ]
        assert (event.late_case, event.price_version, event.payable_until.isoformat()) == (
            fetched["late_case"],
            fetched["price_version"],
            fetched["payable_until"],
        )
        assert (event.coverage_start, event.coverage_end.isoformat()) == (
            date.fromisoformat(fetched["coverage_start"]) if fetched["coverage_start"] else None,
            fetched["coverage_end"],
        )
        assert event.id_number not in by_number
        by_number[event.id_number] = fetched
    assert len({row.event_id for row in outbox}) == len(outbox)
    return by_number


async def hefei_roster(h: Harness, rows: list[list[str]]) -> dict[str, str]:
    """A Hefei staff roster naming each row's category, applied in one chunk: each row's outcome by name."""
    data = csv_bytes(["姓名", "身份证号码", "人员类别"], rows, "utf-8")
    created = await upload(h, data, "合肥资助花名册.csv", **HEFEI, department="蜀山区民政局")
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    await processed(h, upload_id)
    return {r["values"]["name"]: r["outcome"] for r in await rows_of(h, upload_id)}


async def test_one_chunk_of_several_kinds_of_enrollment_writes_each_at_its_own_terms(
    registry: Harness,
) -> None:
    registry.at(HEFEI_WINDOW)
    poor, again, extreme, holder, known = (resident_id() for _ in range(5))
    # Assigned a category before the roster: the roster's category is added, the most generous prices.
    assert (await assign(registry, person(holder, name="赵四"), HEFEI, "特困人员")).status_code == 201
    # Enrolled before the roster: repriced by the new category, not enrolled again.
    before = await enrolled(registry, person(known, name="钱五"), HEFEI)
    async with registry.sessionmaker() as session:
        written = await session.scalar(select(func.max(OutboxMessage.id)))

    outcomes = await hefei_roster(
        registry,
        [
            ["张一", poor, "低保对象"],
            ["李二", extreme, "特困人员"],
            ["赵四", holder, "低保对象"],
            ["钱五", known, "低保对象"],
            ["孙六", again, "低保对象"],
        ],
    )

    assert outcomes == {
        "张一": "enrolled",
        "李二": "enrolled_fully_subsidised",
        "赵四": "enrolled_fully_subsidised",
        "钱五": "already_enrolled",
        "孙六": "enrolled",
    }
    fetched = await events_said_as_the_api_says(registry, after=written or 0)
    assert set(fetched) == {poor, extreme, holder, again}
    dues = {number: parse_yuan(e["personal_due"]) for number, e in fetched.items()}
    assert dues[poor] == dues[again] > dues[extreme] == dues[holder] == 0
    assert {line["category"] for line in fetched[holder]["subsidy_lines"]} >= {"extreme_poverty"}
    assert (
        fetched[poor]["subsidy_lines"] == fetched[again]["subsidy_lines"] != fetched[extreme]["subsidy_lines"]
    )
    repriced = (await registry.client.get(f"/v1/enrollments/{before['enrollment_id']}")).json()
    assert parse_yuan(repriced["personal_due"]) == dues[poor] < parse_yuan(before["personal_due"])


async def test_after_the_window_a_roster_enrolls_the_fully_subsidised_as_a_late_case(
    registry: Harness,
) -> None:
    registry.at("2024-03-01T10:00:00+08:00")
    full, partial = resident_id(), resident_id()

    outcomes = await hefei_roster(registry, [["韩一", full, "特困人员"], ["杨二", partial, "低保对象"]])

    assert outcomes == {"韩一": "enrolled_fully_subsidised", "杨二": "mobilise"}
    [(number, enrollment)] = (await events_said_as_the_api_says(registry)).items()
    assert (number, enrollment["late_case"], enrollment["personal_due"]) == (full, "newly_subsidised", "0.00")
    assert enrollment["coverage_from"] != "coverage_start"


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
    racer, upload_id = await _roster_listing_a_registered_racer(h, others=2)

    # A counter enrollment of the racer, not yet committed: the chunk's insert waits for it on the unique
    # index, and fails once it commits; the chunk is then redone row by row.
    async with h.sessionmaker() as counter:
        await _enrolled_not_committed(h, counter, racer)
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


@pytest.mark.xdist_group("roster-race")
async def test_three_chunks_are_applied_at_once_and_commit_in_file_order(own_registry: Harness) -> None:
    """On PostgreSQL three chunks are under way at once: while the first waits on a lock (a counter
    enrollment of its person, not yet committed), the next two are applied beside it and wait for it to
    commit; then every row is applied once, and the first is refused as already enrolled."""
    h = own_registry
    racer, upload_id = await _roster_listing_a_registered_racer(h, others=4)
    one_row_a_chunk = RosterWorker(lambda: h.app.state.sessionmaker, lambda: get_registry_of(h.app), 1)

    async with h.sessionmaker() as counter:
        await _enrolled_not_committed(h, counter, racer)
        applying = asyncio.create_task(one_row_a_chunk.run_until_idle())
        # The counter's transaction and three chunks' (the first waiting on the lock); with two chunks at once
        # there would never be more than three.
        for _ in range(200):
            assert not applying.done(), applying
            if await _open_transactions(h) == 4:
                break
            await asyncio.sleep(0.05)
        else:
            opened = await _open_transactions(h)
            pytest.fail(f"{opened} transactions open, not the counter's and three chunks'")
        await counter.commit()
    await applying

    outcomes = [(r["values"]["name"], r["status"], r["outcome"]) for r in await rows_of(h, upload_id)]
    assert outcomes == [("赛一", "applied", "already_enrolled")] + [
        (f"张{i}", "applied", "enrolled") for i in range(2, 6)
    ]
    assert (await h.client.get(f"/v1/rosters/{upload_id}")).json()["rows_applied"] == 5
    async with h.sessionmaker() as session:
        live = await session.scalar(select(func.count()).select_from(Enrollment))
        events = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert (live, events) == (5, 5)


async def _roster_listing_a_registered_racer(h: Harness, *, others: int) -> tuple[str, str]:
    """An approved Jing roster listing the racer first, registered (a category of another department's) and
    not enrolled when the roster is read, and `others` new people after: the racer's ID number, the upload."""
    h.at(JING_WINDOW)
    racer = jing_id()
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
        [i, f"张{i}", jing_id(), "泾川镇", "", "", ""] for i in range(2, others + 2)
    ]
    created = await upload(h, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保花名册.xlsx")
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    return racer, upload_id


async def _enrolled_not_committed(h: Harness, counter: AsyncSession, racer: str) -> None:
    """The racer enrolled at the counter in `counter`'s transaction, left open."""
    await enroll(
        counter,
        get_registry_of(h.app),
        EnrollmentCreate(id_number=racer, name="赛一", region_code="341823", coverage_year=2023),
    )
    await counter.flush()


async def _open_transactions(h: Harness) -> int:
    """Transactions open on the test's database, besides the one asking."""
    async with h.sessionmaker() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
                )
            )
            or 0
        )


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
    await _repeated_numbers_across_chunks(registry)


@pytest.mark.xdist_group("roster-race")
async def test_rows_repeating_an_earlier_chunk_are_rejected_while_two_chunks_are_stored_at_once(
    own_registry: Harness,
) -> None:
    """On PostgreSQL, with a connection per session, two chunks are stored at once: a number given in the
    chunk still being stored, or in one committed before, rejects the row repeating it all the same."""
    h = own_registry
    await _repeated_numbers_across_chunks(h)
    # Each chunk of two repeats the number the chunk just before gave first, while that one is stored.
    numbers = [jing_id() for _ in range(12)]
    listed = [numbers[0], jing_id()] + [n for k in range(1, 12) for n in (numbers[k], numbers[k - 1])]
    _, judged = await _judged_naming_first_rows(h, listed, "低保花名册2.xlsx")
    rejected = [r["row_no"] for r in judged if r["status"] == "rejected"]
    assert rejected == [r["row_no"] for r in judged[3::2]]


async def _judged_naming_first_rows(
    h: Harness, numbers: list[str], filename: str
) -> tuple[str, list[dict[str, Any]]]:
    """The rows listing `numbers` (chunks of two) as judged; each rejected one repeats a number, naming its
    first row."""
    rows = [[i, f"居民{i}", n, "泾川镇", "", "", ""] for i, n in enumerate(numbers, 1)]
    created = await upload(h, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), filename)
    upload_id = created.json()["upload_id"]
    await _worker(h).run_until_idle()
    judged = await rows_of(h, upload_id)
    first_row = {n: judged[numbers.index(n)]["row_no"] for n in numbers}
    for item in judged:
        if item["status"] == "rejected":
            (problem,) = item["problems"]
            assert problem["code"] == "duplicate_row"
            assert f"第 {first_row[item['values']['id_number']]} 行" in problem["message_zh"]
    return upload_id, judged


def _worker(h: Harness) -> RosterWorker:
    """A worker taking two rows a chunk."""
    return RosterWorker(lambda: h.app.state.sessionmaker, lambda: get_registry_of(h.app), 2)


async def _repeated_numbers_across_chunks(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    a, b, c, d = (jing_id() for _ in range(4))
    numbers = [a, b, c, a, d, c, b]  # rows 4-10, chunks of two: (a b) (c a) (d c) (b)
    upload_id, judged = await _judged_naming_first_rows(registry, numbers, "低保花名册.xlsx")
    assert [r["status"] for r in judged] == ["accepted"] * 3 + ["rejected"] + ["accepted"] + ["rejected"] * 2
    assert [r["row_no"] for r in await rows_of(registry, upload_id, "rejected")] == [7, 9, 10]
    assert (await review(registry, upload_id)).status_code == 200
    await _worker(registry).run_until_idle()

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
