"""The documents' last rules, through HTTP (issue 17): the subsidy roster dates of both notices, the newborn's
choice of year (Hefei), the documents' group names wherever a category is given, and refusals that say what to
do next."""

from pathlib import Path
from typing import Any

import pytest

from registry.policy.book import SHIPPED_POLICIES, load_policy_file
from registry.policy.errors import PolicyFileInvalid
from shared.auth import Role, dev_token
from tests.conftest import Harness
from tests.registry.helpers import (
    HEFEI,
    JING,
    assign,
    deliver_payment,
    enroll,
    enrolled,
    person,
    processed,
    rows_of,
    upload,
)
from tests.registry.roster_files import ATTACHMENT_4, ATTACHMENT_6
from tests.spreadsheets import xlsx
from tests.support import ROOT, problem, resident_id

MAIN_DATED = [*ATTACHMENT_4, "认定日期"]
JING_MINIMUM_LIVING = ["泾县2023年度城乡居民医保资助参保人员花名册", "人员类别：低保对象"]
HEFEI_MINIMUM_LIVING = ["合肥市资助参保人员名单", "人员类别：低保对象"]


def jing_id() -> str:
    return resident_id(region="341823")


async def judged(h: Harness, data: bytes, **form: Any) -> dict[str, list[str]]:
    """Upload a roster and return each row's problem codes by name (accepted rows: none)."""
    created = await upload(h, data, "花名册.xlsx", **form)
    assert created.status_code == 201, created.text
    await processed(h, created.json()["upload_id"])
    return {
        r["values"]["name"]: [p["code"] for p in r["problems"]]
        for r in await rows_of(h, created.json()["upload_id"])
    }


async def messages(h: Harness, data: bytes, **form: Any) -> dict[str, str]:
    created = await upload(h, data, "花名册.xlsx", **form)
    await processed(h, created.json()["upload_id"])
    return {
        r["values"]["name"]: r["problems"][0]["message_zh"]
        for r in await rows_of(h, created.json()["upload_id"], "rejected")
    }


# --- Subsidy roster dates --------------------


async def test_jings_main_roster_holds_everyone_identified_up_to_30_september_inclusive(
    registry: Harness,
) -> None:
    """县直相关部门对资助参保人员的认定时间以 2022 年 9 月 30 日为准: 9-30 itself belongs on the main roster,
    with no earlier bound; from 10-01 a person is an addition."""
    registry.at("2022-11-15T10:00:00+08:00")
    rows = [
        [1, "甲", jing_id(), "泾川镇", "", "", "", "2022-09-30"],
        [2, "乙", jing_id(), "泾川镇", "", "", "", "2019-03-01"],
        [3, "丙", jing_id(), "泾川镇", "", "", "", "2022-10-01"],
    ]
    data = xlsx(MAIN_DATED, rows, title=JING_MINIMUM_LIVING)

    assert await judged(registry, data) == {"甲": [], "乙": [], "丙": ["date_outside_cutoff"]}
    refused = await messages(registry, xlsx(MAIN_DATED, rows[2:], title=JING_MINIMUM_LIVING))
    assert "2022-09-30" in refused["丙"]
    assert "subsidy_addition" in refused["丙"]


async def test_jings_additions_are_those_identified_from_1_october(registry: Harness) -> None:
    registry.at("2022-11-15T10:00:00+08:00")
    rows = [
        [1, "丁", jing_id(), "泾川镇", "", "", "新认定", "2022-09-30", "低保对象", ""],
        [2, "戊", jing_id(), "泾川镇", "", "", "新认定", "2022-10-01", "低保对象", ""],
    ]
    data = xlsx(ATTACHMENT_6, rows)

    assert await judged(registry, data, kind="subsidy_addition") == {"丁": ["date_outside_cutoff"], "戊": []}
    refused = await messages(registry, xlsx(ATTACHMENT_6, rows[:1]), kind="subsidy_addition")
    assert "kind=subsidy" in refused["丁"]


async def test_hefeis_main_roster_is_everyone_identified_by_25_august_and_additions_after_it(
    registry: Harness,
) -> None:
    """8月25日前 提供人员名单; 集中参保期内动态新增 after it. Before, a main-roster row dated before the
    window opened (1 Sep) was refused."""
    hefei = {"region_code": "340104", "coverage_year": 2024, "department": "蜀山区民政局"}
    main = [
        [1, "甲", resident_id(), "", "", "", "", "2023-08-20"],
        [2, "乙", resident_id(), "", "", "", "", "2023-08-25"],
        [3, "丙", resident_id(), "", "", "", "", "2023-08-26"],
    ]
    additions = [
        [1, "丁", resident_id(), "", "", "", "新认定", "2023-08-25", "低保对象", ""],
        [2, "戊", resident_id(), "", "", "", "新认定", "2023-08-28", "低保对象", ""],
        [3, "己", resident_id(), "", "", "", "新认定", "2023-10-08", "低保对象", ""],
    ]

    assert await judged(registry, xlsx(MAIN_DATED, main, title=HEFEI_MINIMUM_LIVING), **hefei) == {
        "甲": [],
        "乙": [],
        "丙": ["date_outside_cutoff"],
    }
    assert await judged(registry, xlsx(ATTACHMENT_6, additions), kind="subsidy_addition", **hefei) == {
        "丁": ["date_outside_cutoff"],
        "戊": [],
        "己": [],
    }


# --- The newborn's year (Hefei) --------------------


def baby(birth: str) -> dict[str, Any]:
    return person(resident_id(region="340104", birth=birth.replace("-", "")), name="宝宝")


async def test_a_hefei_newborn_without_a_year_is_asked_which_one_with_both_laid_out(
    registry: Harness,
) -> None:
    """新生儿可参加当年度及下一年度城乡居民医保，新生儿父母办理参保时应明确新生儿参保年度."""
    response = await enroll(registry, baby("2023-06-01"), {"region_code": "340104"})

    assert response.status_code == 422
    error = problem(response)
    assert error["code"] == "newborn_coverage_year_required"
    assert "应明确新生儿参保年度" in error["message_zh"]
    assert error["details"]["coverage_years"] == [2023, 2024]
    assert [
        (c["coverage_year"], c["personal_due"], c["coverage_start"], c["coverage_end"], c["payable_until"])
        for c in error["details"]["choices"]
    ] == [
        # Born more than 3 months ago: the 2023 total financing (350 + 610), covered from birth.
        (2023, "960.00", "2023-06-01", "2023-12-31", "2023-12-31"),
        # The 2024 campaign's window is open: the ordinary price and coverage.
        (2024, "380.00", "2024-01-01", "2024-12-31", "2023-12-31"),
    ]


async def test_parents_may_choose_the_year_of_birth_on_the_policy_files_terms(registry: Harness) -> None:
    """Before, coverage year 2023 answered policy_not_found."""
    newborn = baby("2023-08-10")

    e = await enrolled(registry, newborn, {"region_code": "340104", "coverage_year": 2023})

    assert (e["coverage_year"], e["late_case"], e["coverage_from"]) == (2023, "newborn", "birth")
    # Within 3 months of birth: the 2023 personal contribution, payable until the 3 months end.
    assert (e["personal_due"], e["fiscal_subsidy"], e["total_financing"]) == ("350.00", "610.00", "960.00")
    assert (e["coverage_start"], e["coverage_end"], e["payable_until"]) == (
        "2023-08-10",
        "2023-12-31",
        "2023-11-10",
    )
    # The next year too, as its own enrollment.
    next_year = await enrolled(registry, newborn, HEFEI)
    assert (next_year["coverage_year"], next_year["personal_due"]) == (2024, "380.00")
    await deliver_payment(registry, e, "2023-10-08T11:00:00+08:00")
    paid = (await registry.client.get(f"/v1/enrollments/{e['enrollment_id']}")).json()
    assert (paid["status"], paid["coverage_start"]) == ("active", "2023-08-10")


@pytest.mark.policy_dir(ROOT / "tests" / "data" / "history")
async def test_a_policy_file_of_the_year_itself_replaces_the_assumed_terms(registry: Harness) -> None:
    e = await enrolled(
        registry,
        baby("2023-08-10"),
        {"region_code": "340104", "coverage_year": 2023},
        late_case={"kind": "newborn"},
    )
    # hefei-2023.toml (test data: Hefei's figures a year earlier) decides, not the assumed 350.
    assert (e["personal_due"], e["late_case"], e["coverage_start"]) == ("380.00", "newborn", "2023-08-10")


@pytest.mark.parametrize(
    ("change", "problem_text"),
    [
        (
            (
                "coverage = { start = 2023-01-01, end = 2023-12-31 }",
                "coverage = { start = 2022-01-01, end = 2022-12-31 }",
            ),
            "current_year.coverage.start is not in 2023",
        ),
        (
            ("start = 2023-08-26", "start = 2023-09-01"),
            "dynamic_additions must start the day after the cut-off",
        ),
        (
            ('aliases = ["特困供养人员", "孤儿"', 'aliases = ["低保对象", "孤儿"'),
            "names given to two categories",
        ),
    ],
)
def test_the_policy_file_is_checked_for_these_rules(
    tmp_path: Path, change: tuple[str, str], problem_text: str
) -> None:
    text = (SHIPPED_POLICIES / "hefei-2024.toml").read_text(encoding="utf-8")
    assert change[0] in text
    bad = tmp_path / "hefei-2024.toml"
    bad.write_text(text.replace(change[0], change[1]), encoding="utf-8")
    with pytest.raises(PolicyFileInvalid, match=problem_text):
        load_policy_file(bad)


async def test_the_year_of_birth_is_for_newborns_only(registry: Harness) -> None:
    adult = person(resident_id(region="340104", birth="19900101"))
    response = await enroll(registry, adult, {"region_code": "340104", "coverage_year": 2023})
    assert (problem(response)["code"], problem(response)["details"]["open_year"]) == (
        "newborns_only_year",
        2024,
    )


async def test_a_newborn_case_inside_the_window_says_what_was_done_with_it(registry: Harness) -> None:
    """Before, the late case was dropped without a word."""
    e = await enrolled(registry, baby("2023-09-20"), HEFEI, late_case={"kind": "newborn"})

    assert (e["late_case"], e["personal_due"], e["coverage_start"]) == (None, "380.00", "2024-01-01")
    [notice] = e["notices"]
    assert notice["code"] == "late_case_not_used"
    assert "集中参保缴费期内按普通参保办理" in notice["message_zh"]
    assert "coverage_year=2023" in notice["message_zh"]
    assert "not used" in notice["message_en"]


@pytest.mark.parametrize(
    ("moment", "where", "year"),
    [("2023-10-08T10:00:00+08:00", "340104", 2024), ("2022-11-15T10:00:00+08:00", "341823", 2023)],
)
async def test_everyone_else_gets_the_open_campaign_by_default(
    registry: Harness, moment: str, where: str, year: int
) -> None:
    registry.at(moment)
    e = await enrolled(registry, person(resident_id(region=where, birth="19800101")), {"region_code": where})
    assert e["coverage_year"] == year
    assert [n["code"] for n in e["notices"]] == ["coverage_year_defaulted"]


async def test_without_an_open_campaign_the_year_is_asked_for(registry: Harness) -> None:
    registry.at("2024-03-01T10:00:00+08:00")  # Jing's 2023 coverage is over and no later policy is loaded
    response = await enroll(registry, person(resident_id(region="341823")), {"region_code": "341823"})
    assert problem(response)["code"] == "coverage_year_required"
    assert problem(response)["details"]["coverage_years"] == [2023]


# --- Group names --------------------


@pytest.mark.parametrize(
    ("where", "moment", "named"),
    [
        (HEFEI, "2023-10-08T10:00:00+08:00", "事实无人抚养儿童"),
        (HEFEI, "2023-10-08T10:00:00+08:00", "特困人员（含社会散居孤儿、事实无人抚养儿童）"),
        (JING, "2022-11-15T10:00:00+08:00", "事实无人抚养的儿童"),
        (JING, "2022-11-15T10:00:00+08:00", "特困供养人员"),
        (JING, "2022-11-15T10:00:00+08:00", "事实无人抚养儿童"),  # Hefei's spelling, the policy's alias
    ],
)
async def test_staff_assign_a_category_by_the_documents_group_names(
    registry: Harness, where: dict[str, Any], moment: str, named: str
) -> None:
    """Before, 事实无人抚养儿童 answered 422 unknown_subsidy_category."""
    registry.at(moment)
    child = person(resident_id(region=where["region_code"], birth="20150301"), name="小明")

    assigned = await assign(registry, child, where, named)

    assert assigned.status_code == 201, assigned.text
    assert (assigned.json()["category"], assigned.json()["named_as"]) == ("extreme_poverty", named)
    e = await enrolled(registry, child, where)
    assert (e["personal_due"], e["subsidy_lines"][0]["category"]) == ("0.00", "extreme_poverty")


async def test_an_unknown_group_lists_what_the_policy_knows(registry: Harness) -> None:
    refused = await assign(registry, person(), HEFEI, "五保户")
    assert problem(refused)["code"] == "unknown_subsidy_category"
    assert "特困人员（含社会散居孤儿、事实无人抚养儿童）" in problem(refused)["details"]["names"]


async def test_reports_keep_the_included_groups_visible(registry: Harness) -> None:
    registry.at("2022-11-15T10:00:00+08:00")
    child = person(jing_id(), name="小红")
    assert (await assign(registry, child, JING, "孤儿", township="泾川镇")).status_code == 201
    await enrolled(registry, child, JING, township="泾川镇")

    summary = await registry.client.get(
        "/v1/subsidy-assignments/summary", params={**JING, "category": "事实无人抚养的儿童"}
    )
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert (body["category"], body["category_label"]) == (
        "extreme_poverty",
        "特困人员（含孤儿、事实无人抚养的儿童）",
    )
    assert body["includes"] == ["孤儿", "事实无人抚养的儿童"]
    progress = await registry.client.get("/v1/progress", params={**JING, "as_of": "2022-11-15"})
    [poverty] = [c for c in progress.json()["total"]["categories"] if c["category"] == "extreme_poverty"]
    assert poverty["category_label"] == "特困人员（含孤儿、事实无人抚养的儿童）"


# --- Cancellations cite the rule --------------------


async def test_a_paid_enrollment_is_not_ended_for_a_reason_the_policy_does_not_refund(
    registry: Harness,
) -> None:
    """Before, any reason but the two codes was a validation_error; now the policy's words answer."""
    registry.at("2022-11-15T10:00:00+08:00")
    paid = await enrolled(registry, person(jing_id()), JING)
    await deliver_payment(registry, paid, "2022-11-15T10:00:00+08:00")
    unpaid = await enrolled(registry, person(jing_id()), JING)
    report = {"reason": "迁往外省", "evidence_ref": "迁移证 0001", "reported_by": "staff-07"}

    refused = await registry.client.post(f"/v1/enrollments/{paid['enrollment_id']}/cancellation", json=report)
    assert (refused.status_code, problem(refused)["code"]) == (422, "cancellation_not_allowed")
    assert "待遇享受期内已缴纳的医保费不予退还" in problem(refused)["message_zh"]
    ended = await registry.client.post(f"/v1/enrollments/{unpaid['enrollment_id']}/cancellation", json=report)
    assert (ended.json()["status"], ended.json()["cancellation_reason"]) == ("cancelled", "迁往外省")
    # The documents' words are the policy's reasons.
    death = report | {"reason": "自然减员", "evidence_ref": "死亡证明 0002"}
    waiting = await registry.client.post(f"/v1/enrollments/{paid['enrollment_id']}/cancellation", json=death)
    assert waiting.status_code == 200, waiting.text


# --- Refusals say what to do next --------------------


async def test_after_the_window_the_refusal_lists_the_late_cases(registry: Harness) -> None:
    registry.at("2023-03-01T10:00:00+08:00")
    response = await enroll(registry, person(jing_id()), JING)
    error = problem(response)
    assert error["code"] == "enrollment_window_closed"
    assert "下一年度" in error["message_zh"]
    assert "补办" in error["message_zh"]
    assert {"kind": "newborn", "name": "新生儿"} in error["details"]["late_cases"]


async def test_a_year_without_a_policy_names_the_years_there_are(registry: Harness) -> None:
    response = await enroll(registry, person(), {"region_code": "340104", "coverage_year": 2030})
    error = problem(response)
    assert error["code"] == "policy_not_found"
    assert error["details"]["coverage_years"] == [2023, 2024]
    assert "2024" in error["message_zh"]


# --- A department's roster without the category field --------------------


CIVIL_AFFAIRS = dev_token(
    Role.DEPARTMENT, sub="jing-minzheng", regions=["341823"], categories=["minimum_living"]
)


async def department_upload(h: Harness, data: bytes, token: str = CIVIL_AFFAIRS) -> Any:
    return await h.client.post(
        "/v1/rosters",
        files={"file": ("花名册.xlsx", data)},
        data={"kind": "subsidy", "department": "县民政局", "uploaded_by": "dept-01"} | JING,
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_departments_roster_is_judged_by_the_categories_in_the_file(registry: Harness) -> None:
    """Before, a department leaving out the optional `category` field got 403 outside_area with
    {"category_code": "subsidy"}: the roster kind was taken for a category."""
    registry.at("2022-11-15T10:00:00+08:00")
    titled = xlsx(ATTACHMENT_4, [[1, "甲", jing_id(), "泾川镇", "", "", ""]], title=JING_MINIMUM_LIVING)
    column = [*ATTACHMENT_4, "人员类别"]

    by_title = await department_upload(registry, titled)
    assert by_title.status_code == 201, by_title.text
    assert by_title.json()["category"] == "minimum_living"
    by_column = await department_upload(
        registry, xlsx(column, [[1, "乙", jing_id(), "泾川镇", "", "", "", "低保对象"]])
    )
    assert by_column.status_code == 201, by_column.text
    assert by_column.json()["category"] == "minimum_living"
    mine = await registry.client.get(
        f"/v1/rosters/{by_column.json()['upload_id']}", headers={"Authorization": f"Bearer {CIVIL_AFFAIRS}"}
    )
    assert mine.status_code == 200

    others = await department_upload(
        registry, xlsx(column, [[1, "丙", jing_id(), "泾川镇", "", "", "", "特困人员"]])
    )
    assert (others.status_code, problem(others)["code"]) == (403, "outside_area")
    assert problem(others)["details"]["category_codes"] == ["extreme_poverty"]
    mixed = [
        [1, "丁", jing_id(), "泾川镇", "", "", "", "低保对象"],
        [2, "戊", jing_id(), "泾川镇", "", "", "", "孤儿"],
    ]
    assert problem(await department_upload(registry, xlsx(column, mixed)))["code"] == "outside_area"
    both = dev_token(
        Role.DEPARTMENT, sub="jing-mz", regions=["341823"], categories=["minimum_living", "extreme_poverty"]
    )
    split = await department_upload(registry, xlsx(column, mixed), both)
    assert (split.status_code, problem(split)["code"]) == (422, "roster_category_required")
    assert problem(split)["details"] == {
        "field": "category",
        "categories_in_file": ["extreme_poverty", "minimum_living"],
    }
    untitled = await department_upload(
        registry, xlsx(ATTACHMENT_4, [[1, "己", jing_id(), "泾川镇", "", "", ""]])
    )
    assert (untitled.status_code, problem(untitled)["code"]) == (422, "roster_category_required")
