"""Student rosters from education and university batches: students enrolled on the roster's word, paid for by
their families or by their university as one payer, as the policy says."""

from sqlalchemy import select

from registry.database import OutboxMessage
from shared.events import EnrollmentCreated, Envelope
from tests.conftest import Harness
from tests.registry.helpers import (
    HEFEI,
    HEFEI_WINDOW,
    JING,
    JING_WINDOW,
    applied,
    enrolled,
    enrollment_of,
    person,
)
from tests.spreadsheets import csv_bytes, xlsx
from tests.support import resident_id


async def test_a_school_roster_enrolls_pupils_whom_their_families_pay_for(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    ids = [resident_id(region="341823", birth="20100301", seq=seq) for seq in range(6)]
    await enrolled(registry, person(ids[4], name="戊"), JING)
    header = ["序号", "姓名", "身份证号码", "学校", "年级", "乡镇"]
    rows = [
        [1, "甲", ids[0], "泾县中学", "初二", "泾川镇"],
        [2, "乙", ids[1], "泾县中学", "初三", "泾川镇"],
        [3, "丙", ids[2], "云岭镇中心幼儿园", "大班", "云岭镇"],
        [4, "丁", ids[3], "", "初一", "泾川镇"],
        [5, "戊", ids[4], "泾县中学", "初二", "泾川镇"],
        [6, "己", ids[5], "泾" * 65, "初二", "泾川镇"],
    ]
    data = csv_bytes(header, rows, "gb18030")

    report = await applied(registry, data, "泾县学生花名册.csv", kind="student", department="县教体局")

    assert {n: (r["status"], r["outcome"]) for n, r in report.items()} == {
        2: ("applied", "enrolled"),
        3: ("applied", "enrolled"),
        4: ("applied", "enrolled"),
        5: ("rejected", None),
        6: ("applied", "already_enrolled"),
        7: ("rejected", None),
    }
    assert [(p["column"], p["code"]) for p in report[5]["problems"]] == [("学校", "missing_value")]
    assert [(p["column"], p["code"]) for p in report[7]["problems"]] == [("学校", "value_too_long")]
    assert report[2]["values"]["grade"] == "初二"
    pupil = await enrollment_of(registry, person(ids[2], name="丙"), JING)
    assert (pupil["basis"], pupil["township"], pupil["payer_organisation"], pupil["personal_due"]) == (
        "student",
        "云岭镇",
        None,
        "350.00",
    )


async def test_a_university_batch_is_paid_for_by_the_university(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    # Students come from everywhere: their ID numbers carry their birthplace, not Hefei.
    ids = [resident_id(region="130102", birth="20040915"), resident_id(region="510104", birth="20050101")]
    data = xlsx(
        ["序号", "姓名", "身份证号码", "学号"],
        [[1, "赵一", ids[0], "2022001"], [2, "钱二", ids[1], "2023002"]],
    )

    report = await applied(
        registry, data, "2024级新生.xlsx", kind="university", department="合肥工业大学", **HEFEI
    )

    assert [r["outcome"] for r in report.values()] == ["enrolled", "enrolled"]
    student = await enrollment_of(registry, person(ids[0], name="赵一"), HEFEI)
    assert (student["basis"], student["payer_organisation"]) == ("student", "合肥工业大学")
    async with registry.sessionmaker() as s:
        payloads = (await s.scalars(select(OutboxMessage.payload))).all()
    created = [
        e.payload(EnrollmentCreated)
        for e in map(Envelope.from_bytes, payloads)
        if e.type == EnrollmentCreated.event_type
    ]
    assert sorted((c.name, c.payer_organisation) for c in created) == [
        ("赵一", "合肥工业大学"),
        ("钱二", "合肥工业大学"),
    ]
