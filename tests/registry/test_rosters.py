"""Department rosters (花名册) through the API: upload, per-row report, review, and what applying does."""

import pytest

from tests.conftest import Harness
from tests.registry.helpers import (
    HEFEI,
    JING,
    enroll,
    enrolled,
    person,
    processed,
    review,
    rows_of,
    upload,
)
from tests.registry.roster_files import ATTACHMENT_4, ATTACHMENT_6, ATTACHMENT_7
from tests.spreadsheets import csv_bytes, read_xlsx, xlsx
from tests.support import problem, resident_id, with_wrong_check

JING_TITLE = [
    "泾县2023年度城乡居民医保资助参保人员花名册",
    "人员类别：低保对象",
    "填报单位（盖章）：县民政局",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def jing_id() -> str:
    return resident_id(region="341823")


@pytest.fixture
def jing(registry: Harness) -> Harness:
    registry.at("2022-11-15T10:00:00+08:00")
    return registry


async def test_a_subsidy_roster_in_attachment_4_layout_is_validated_reviewed_and_applied(
    jing: Harness,
) -> None:
    known = jing_id()
    await enrolled(jing, person(known, name="王芳"), JING)  # registered under another name than the roster's
    good = [jing_id() for _ in range(3)]
    duplicate = good[0]
    rows = [
        [1, "张一", good[0], "泾川镇", "城东社区", "一组", ""],
        [2, "张二", good[1], "云岭镇", "云岭村", "二组", ""],
        [3, "张三", good[2], "汀溪乡", "汀溪村", "", "新认定"],
        [4, "李四", with_wrong_check(jing_id()), "泾川镇", "", "", ""],
        [5, "王五", known, "泾川镇", "", "", ""],
        [6, "赵六", jing_id(), "火星镇", "", "", ""],
        [7, "张一", duplicate, "泾川镇", "", "", ""],
        [8, "", jing_id(), "泾川镇", "", "", ""],
    ]
    data = xlsx(ATTACHMENT_4, rows, title=JING_TITLE)

    created = await upload(jing, data, "低保花名册.xlsx")
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["category"]) == ("pending", "minimum_living")

    validated = await processed(jing, created.json()["upload_id"])
    counts = ("status", "rows_read", "rows_accepted", "rows_rejected", "rows_held")
    assert tuple(validated[k] for k in counts) == ("validated", 8, 3, 4, 1)
    rejected = {
        r["row_no"]: [(p["column"], p["code"]) for p in r["problems"]]
        for r in await rows_of(jing, validated["upload_id"], "rejected")
    }
    assert rejected == {
        8: [("身份证号\n码", "id_number_invalid_checksum")],
        10: [("乡镇", "unknown_township")],
        11: [("身份证号\n码", "duplicate_row")],
        12: [("姓名", "missing_value")],
    }
    # A known ID number under another name is not merged: it waits for a person to decide, with the evidence.
    [held] = await rows_of(jing, validated["upload_id"], "held")
    assert (held["row_no"], held["problems"][0]["code"], held["evidence"]) == (
        9,
        "person_name_mismatch",
        {"registered_name": "王芳"},
    )
    too_soon = await review(jing, validated["upload_id"])
    assert (too_soon.status_code, problem(too_soon)["code"]) == (409, "roster_has_held_rows")
    decided = await jing.client.post(
        f"/v1/rosters/{validated['upload_id']}/rows/9/decision",
        json={"accept": False, "decided_by": "bureau-02", "note": "身份证号码属王芳，名册有误"},
    )
    assert (decided.json()["status"], decided.json()["decided_by"]) == ("rejected", "bureau-02")
    first_problem = (await rows_of(jing, validated["upload_id"], "rejected"))[0]["problems"][0]
    assert first_problem["message_zh"]
    assert first_problem["message_en"]

    report = await jing.client.get(f"/v1/rosters/{validated['upload_id']}/report.xlsx")
    assert report.headers["content-type"] == XLSX
    sheet = read_xlsx(report.content)
    codes = [str(line[7]) for line in sheet[2:] if line[7]]
    assert sorted(codes) == sorted(
        [
            "id_number_invalid_checksum",
            "person_name_mismatch",
            "unknown_township",
            "duplicate_row",
            "missing_value",
        ]
    )

    approved = await review(jing, validated["upload_id"])
    assert approved.json()["status"] == "applying"
    applied = await processed(jing, validated["upload_id"])
    assert (applied["status"], applied["rows_applied"], applied["reviewed_by"]) == ("applied", 3, "bureau-01")
    outcomes = [r["outcome"] for r in await rows_of(jing, applied["upload_id"], "applied")]
    assert outcomes == ["enrolled", "enrolled", "enrolled"]

    # The roster went through the single-assignment path: categories held, enrollments priced at the share.
    again = await enroll(jing, person(good[1], name="张二"), JING)
    assert problem(again)["code"] == "already_enrolled"
    listed = await jing.client.get("/v1/subsidy-assignments", params={"id_number": good[2], "name": "张三"})
    assert [(a["category"], a["assigned_by"]) for a in listed.json()["items"]] == [
        ("minimum_living", "bureau-01")
    ]
    enrollment_id = again.json()["error"]["details"]["enrollment_id"]
    e = (await jing.client.get(f"/v1/enrollments/{enrollment_id}")).json()
    assert (e["personal_due"], e["township"], e["subsidy_lines"][0]["funder"]) == (
        "35.00",
        "云岭镇",
        "县医保局",
    )


async def test_the_same_file_twice_changes_nothing(jing: Harness) -> None:
    data = xlsx(ATTACHMENT_4, [[1, "张一", jing_id(), "泾川镇", "", "", ""]], title=JING_TITLE)
    first = await upload(jing, data, "a.xlsx")
    await processed(jing, first.json()["upload_id"])
    await review(jing, first.json()["upload_id"])
    await processed(jing, first.json()["upload_id"])

    second = await upload(jing, data, "same-content-other-name.xlsx")

    assert second.status_code == 200
    assert second.json()["upload_id"] == first.json()["upload_id"]
    assert second.json()["status"] == "applied"
    assert len(await rows_of(jing, first.json()["upload_id"])) == 1


async def test_a_gbk_csv_of_additions_checks_reasons_dates_and_categories(jing: Harness) -> None:
    ok, early, bad_category, bad_date = jing_id(), jing_id(), jing_id(), jing_id()
    rows = [
        [1, "钱七", ok, "茂林镇", "", "", "新认定特困", "2022-11-02", "特困人员", ""],
        [2, "孙八", early, "茂林镇", "", "", "新认定", "2022-09-15", "低保对象", ""],
        [3, "周九", bad_category, "茂林镇", "", "", "新认定", "2022-11-02", "五保户", ""],
        [4, "吴十", bad_date, "茂林镇", "", "", "新认定", "十一月", "孤儿", ""],
        [5, "郑一", jing_id(), "茂林镇", "", "", "", "2022-11-03", "低保对象", ""],
    ]
    data = csv_bytes(ATTACHMENT_6, rows, "gbk", title=["泾县2023年度城乡居民医保新增资助参保人员花名册"])

    created = await upload(jing, data, "新增花名册.csv", kind="subsidy_addition")
    done = await processed(jing, created.json()["upload_id"])

    assert (done["rows_accepted"], done["rows_rejected"]) == (1, 4)
    rejected = {
        r["values"]["name"]: [p["code"] for p in r["problems"]]
        for r in await rows_of(jing, done["upload_id"], "rejected")
    }
    assert rejected == {
        "孙八": ["date_outside_cutoff"],
        "周九": ["unknown_subsidy_category"],
        "吴十": ["date_invalid"],
        "郑一": ["missing_value"],
    }
    await review(jing, done["upload_id"])
    await processed(jing, done["upload_id"])
    [row] = await rows_of(jing, done["upload_id"], "applied")
    assert (row["values"]["category_code"], row["outcome"]) == (
        "extreme_poverty",
        "enrolled_fully_subsidised",
    )


async def test_a_reduction_roster_removes_the_category_and_reprices(jing: Harness) -> None:
    holder, stranger = jing_id(), jing_id()
    data = xlsx(ATTACHMENT_4, [[1, "冯一", holder, "泾川镇", "", "", ""]], title=JING_TITLE)
    first = (await upload(jing, data, "低保.xlsx")).json()
    await processed(jing, first["upload_id"])
    await review(jing, first["upload_id"])
    await processed(jing, first["upload_id"])

    reductions = [
        [1, "冯一", holder, "泾川镇", "", "", "收入超标退出低保", "低保对象", ""],
        [2, "陈二", stranger, "泾川镇", "", "", "迁出", "低保对象", ""],
    ]
    created = await upload(jing, xlsx(ATTACHMENT_7, reductions), "减少.xlsx", kind="subsidy_reduction")
    done = await processed(jing, created.json()["upload_id"])
    assert (done["rows_accepted"], done["rows_rejected"]) == (1, 1)
    [rejected] = await rows_of(jing, done["upload_id"], "rejected")
    assert rejected["problems"][0]["code"] == "category_not_held"

    await review(jing, done["upload_id"])
    await processed(jing, done["upload_id"])
    [applied] = await rows_of(jing, done["upload_id"], "applied")
    assert applied["outcome"] == "removed:repriced"
    mine = (await enroll(jing, person(holder, name="冯一"), JING)).json()["error"]["details"]["enrollment_id"]
    now = (await jing.client.get(f"/v1/enrollments/{mine}")).json()
    assert (now["personal_due"], now["subsidy_lines"], now["price_version"]) == ("350.00", [], 2)


async def test_an_employee_insurance_list_excludes_people(jing: Harness) -> None:
    insured = jing_id()
    data = csv_bytes(["姓名", "身份证号码"], [["褚三", insured]], "utf-8-sig")
    created = await upload(jing, data, "职工医保.csv", kind="employee_insurance", department="县医保局职工科")
    await processed(jing, created.json()["upload_id"])
    await review(jing, created.json()["upload_id"])
    await processed(jing, created.json()["upload_id"])

    refused = await enroll(jing, person(insured, name="褚三"), JING)
    assert problem(refused)["code"] == "in_employee_insurance"


async def test_a_rejected_upload_applies_nothing(jing: Harness) -> None:
    someone = jing_id()
    data = xlsx(ATTACHMENT_4, [[1, "卫四", someone, "泾川镇", "", "", ""]], title=JING_TITLE)
    created = (await upload(jing, data, "x.xlsx")).json()
    await processed(jing, created["upload_id"])
    rejected = await review(jing, created["upload_id"], approve=False)
    assert rejected.json()["status"] == "rejected"
    await processed(jing, created["upload_id"])

    e = await enrolled(jing, person(someone, name="卫四"), JING)
    assert (e["personal_due"], e["subsidy_lines"]) == ("350.00", [])
    again = await review(jing, created["upload_id"])
    assert problem(again)["code"] == "roster_not_reviewable"


async def test_a_pending_upload_cannot_be_approved(jing: Harness) -> None:
    data = xlsx(ATTACHMENT_4, [[1, "蒋五", jing_id(), "泾川镇", "", "", ""]], title=JING_TITLE)
    created = (await upload(jing, data, "y.xlsx")).json()
    response = await review(jing, created["upload_id"])
    assert (response.status_code, problem(response)["code"]) == (409, "roster_not_reviewable")


@pytest.mark.parametrize(
    ("data", "filename", "form", "code", "reason"),
    [
        (b"hello", "roster.txt", {}, "roster_file_invalid", "unsupported_format"),
        (b"PK\x03\x04 not really a zip", "roster.xlsx", {}, "roster_file_invalid", "unreadable"),
        (
            csv_bytes(["名字", "号码"], [["a", "b"]], "utf-8"),
            "r.csv",
            {},
            "roster_file_invalid",
            "header_not_found",
        ),
        (
            csv_bytes(["姓名", "身份证号码"], [], "utf-8"),
            "r.csv",
            {"kind": "subsidy_addition"},
            "roster_file_invalid",
            "columns_missing",
        ),
        (csv_bytes(["姓名", "身份证号码"], [], "utf-8"), "r.csv", {}, "roster_category_required", None),
        (
            csv_bytes(["姓名", "身份证号码"], [], "utf-8"),
            "r.csv",
            {"category": "五保户"},
            "unknown_subsidy_category",
            None,
        ),
        (
            csv_bytes(["姓名", "身份证号码"], [], "utf-8"),
            "r.csv",
            {"region_code": "110101", "category": "低保对象"},
            "policy_not_found",
            None,
        ),
    ],
)
async def test_unreadable_or_incomplete_files_are_refused_and_nothing_is_kept(
    jing: Harness, data: bytes, filename: str, form: dict[str, str], code: str, reason: str | None
) -> None:
    response = await upload(jing, data, filename, **form)
    assert response.status_code == 422, response.text
    error = problem(response)
    assert error["code"] == code
    if reason:
        assert error["details"]["reason"] == reason
    roster_dir = jing.app.state.settings.roster_dir
    assert not roster_dir.exists() or list(roster_dir.iterdir()) == []


async def test_after_the_window_only_full_subsidies_are_enrolled_for_people(registry: Harness) -> None:
    registry.at("2024-03-01T10:00:00+08:00")
    full, partial = resident_id(), resident_id()
    header = ["姓名", "身份证号码", "人员类别"]
    data = csv_bytes(header, [["韩一", full, "特困人员"], ["杨二", partial, "低保对象"]], "gb18030")
    created = await upload(registry, data, "合肥月度新增.csv", **HEFEI, department="蜀山区民政局")
    await processed(registry, created.json()["upload_id"])
    await review(registry, created.json()["upload_id"])
    await processed(registry, created.json()["upload_id"])

    outcomes = {
        r["values"]["name"]: r["outcome"] for r in await rows_of(registry, created.json()["upload_id"])
    }
    assert outcomes == {"韩一": "enrolled_fully_subsidised", "杨二": "mobilise"}
    # The partially subsidised person enrolls when mobilised, at their share, as a newly subsidised late case.
    e = await enrolled(registry, person(partial, name="杨二"), HEFEI, late_case={"kind": "newly_subsidised"})
    assert (e["personal_due"], e["coverage_from"]) == ("38.00", "day_after_payment")


async def test_the_township_summary_counts_enrolled_people_per_township(jing: Harness) -> None:
    rows = [
        [1, "甲", jing_id(), "泾川镇", "", "", ""],
        [2, "乙", jing_id(), "泾川镇", "", "", ""],
        [3, "丙", jing_id(), "汀溪乡", "", "", ""],
        [4, "丁", jing_id(), "", "", "", ""],
    ]
    created = (await upload(jing, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保.xlsx")).json()
    await processed(jing, created["upload_id"])
    await review(jing, created["upload_id"])
    await processed(jing, created["upload_id"])
    params: dict[str, str | int] = {
        "region_code": "341823",
        "coverage_year": 2023,
        "category": "minimum_living",
    }

    summary = (await jing.client.get("/v1/subsidy-assignments/summary", params=params)).json()

    counts = {r["township"]: r["enrolled"] for r in summary["rows"]}
    assert len(summary["rows"]) == 12  # the policy's eleven townships, then the enrollments naming none
    assert (counts["泾川镇"], counts["汀溪乡"], counts["云岭镇"], counts["未填乡镇"]) == (2, 1, 0, 1)
    assert (summary["total"], summary["category_name"]) == (4, "低保对象")
    sheet = read_xlsx((await jing.client.get("/v1/subsidy-assignments/summary.xlsx", params=params)).content)
    assert sheet[2] == ["序号", "乡镇", "资助（补助）参保人数", "备注"]
    assert sheet[-1][1:3] == ["合计", 4]
    unknown = await jing.client.get("/v1/subsidy-assignments/summary", params=params | {"category": "x"})
    assert problem(unknown)["code"] == "unknown_subsidy_category"


async def test_suspected_duplicates_across_sources_wait_for_a_decision(jing: Harness) -> None:
    registered = jing_id()
    await enrolled(jing, person(registered, name="沈七"), JING)
    namesake = registered[:14] + ("0000" if registered[14:17] != "000" else "0010")
    namesake = (
        namesake[:17] + resident_id(region=namesake[:6], birth=namesake[6:14], seq=int(namesake[14:17]))[-1]
    )
    insured = jing_id()
    await jing.client.post(
        "/v1/exclusions",
        json={
            "person": {"id_number": insured, "name": "韩八"},
            "coverage_year": 2023,
            "kind": "employee_insurance",
            "source": "县职工医保参保名单",
            "recorded_by": "s",
        },
    )
    rows = [[1, "沈七", namesake, "泾川镇", "", "", ""], [2, "韩八", insured, "泾川镇", "", "", ""]]
    created = (await upload(jing, xlsx(ATTACHMENT_4, rows, title=JING_TITLE), "低保.xlsx")).json()
    done = await processed(jing, created["upload_id"])
    assert (done["rows_held"], done["rows_accepted"]) == (2, 0)

    held = {r["row_no"]: r for r in await rows_of(jing, done["upload_id"], "held")}
    assert held[5]["problems"][0]["code"] == "suspected_duplicate_person"
    assert held[5]["evidence"] == {"same_name_and_birth_date": [registered[:4] + "*" * 10 + registered[-4:]]}
    assert (held[6]["problems"][0]["code"], held[6]["evidence"]) == (
        "listed_in_employee_insurance",
        {"employee_insurance": "县职工医保参保名单"},
    )
    for row_no in (5, 6):  # below three title lines and the header
        decided = await jing.client.post(
            f"/v1/rosters/{done['upload_id']}/rows/{row_no}/decision",
            json={"accept": True, "decided_by": "bureau-03"},
        )
        assert decided.json()["status"] == "accepted"
    again = await jing.client.post(
        f"/v1/rosters/{done['upload_id']}/rows/5/decision", json={"accept": True, "decided_by": "x"}
    )
    assert problem(again)["code"] == "roster_row_not_held"

    await review(jing, done["upload_id"])
    applied = await processed(jing, done["upload_id"])
    assert (applied["rows_applied"], applied["rows_held"]) == (2, 0)
    outcomes = {r["row_no"]: r["outcome"] for r in await rows_of(jing, done["upload_id"], "applied")}
    assert outcomes == {5: "enrolled", 6: "refused:in_employee_insurance"}
