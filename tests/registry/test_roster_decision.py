"""A roster chunk judged against what the registry holds (`against_registered`), without a database: which
rows are held for review with their evidence, which are rejected, which go through."""

from datetime import date
from typing import Any

from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.roster.models import RosterKind, RowStatus
from registry.roster.validation import Registered, RowRules, Verdict, against_registered
from tests.support import resident_id, with_wrong_check

POLICY = PolicyBook.load(SHIPPED_POLICIES).find("341823", 2023)
HEADERS = {"name": "姓名", "id_number": "身份证号码", "category": "人员类别", "reason": "变动原因"}
TODAY = date(2022, 11, 15)
FIRST_ROW = 4  # under a title, a 人员类别 line and the header

ZHANG = resident_id(region="341823", birth="19900307", seq=11)
ZHANG_TOO = resident_id(region="341823", birth="19900307", seq=23)
LI = resident_id(region="341823", birth="19621205", seq=35)


def registered(**known: Any) -> Registered:
    nothing: dict[str, Any] = {"earlier": {}, "names": {}, "held": set(), "namesakes": {}, "insured": {}}
    return Registered(**(nothing | known))


def decide(
    rows: list[dict[str, str]], known: Registered, kind: RosterKind = RosterKind.SUBSIDY
) -> list[Verdict]:
    rules = RowRules(kind, POLICY, "341823", None, HEADERS, TODAY)
    judged = [(FIRST_ROW + i, rules.judge(values)) for i, values in enumerate(rows)]
    return against_registered(rules, judged, known)


def row(name: str, id_number: str, **more: str) -> dict[str, str]:
    return {"name": name, "id_number": id_number, "category": "低保对象"} | more


def codes(verdict: Verdict) -> list[str]:
    return [p["code"] for p in verdict.problems]


def test_a_row_the_registry_knows_nothing_against_is_accepted() -> None:
    (verdict,) = decide([row("张三", ZHANG)], registered())
    assert (verdict.row_no, verdict.status, verdict.problems, verdict.evidence) == (
        FIRST_ROW,
        RowStatus.ACCEPTED,
        [],
        None,
    )
    assert (verdict.id_number, verdict.values["category_code"]) == (ZHANG, "minimum_living")


def test_a_name_registered_otherwise_is_held_with_the_registered_name() -> None:
    verdict, same = decide(
        [row("张三", ZHANG), row("李四", LI)], registered(names={ZHANG: "张叁", LI: "李四"})
    )
    assert verdict.status is RowStatus.HELD
    assert [(p["column"], p["code"]) for p in verdict.problems] == [("姓名", "person_name_mismatch")]
    assert verdict.evidence == {"registered_name": "张叁"}
    assert (same.status, same.evidence) == (RowStatus.ACCEPTED, None)  # registered under the roster's name


def test_someone_of_the_same_name_and_birth_date_under_another_number_is_held() -> None:
    born = date(1990, 3, 7)  # as both numbers say
    (verdict,) = decide([row("张三", ZHANG)], registered(namesakes={("张三", born): [ZHANG, ZHANG_TOO]}))
    assert verdict.status is RowStatus.HELD
    assert codes(verdict) == ["suspected_duplicate_person"]
    masked = ZHANG_TOO[:4] + "*" * 10 + ZHANG_TOO[-4:]
    assert verdict.evidence == {"same_name_and_birth_date": [masked]}  # never the row's own number


def test_ones_own_registration_is_no_namesake() -> None:
    (verdict,) = decide([row("张三", ZHANG)], registered(namesakes={("张三", date(1990, 3, 7)): [ZHANG]}))
    assert (verdict.status, verdict.evidence) == (RowStatus.ACCEPTED, None)


def test_someone_on_the_employee_insurance_list_is_held_with_the_list() -> None:
    (verdict,) = decide([row("李四", LI)], registered(insured={LI: "县人社局 职工医保名单"}))
    assert verdict.status is RowStatus.HELD
    assert [(p["column"], p["code"]) for p in verdict.problems] == [
        ("身份证号码", "listed_in_employee_insurance")
    ]
    assert verdict.evidence == {"employee_insurance": "县人社局 职工医保名单"}


def test_an_id_number_given_again_is_rejected_naming_the_first_row() -> None:
    first, again, other = decide([row("张三", ZHANG), row("张三", ZHANG), row("李四", LI)], registered())
    assert [v.status for v in (first, again, other)] == [
        RowStatus.ACCEPTED,
        RowStatus.REJECTED,
        RowStatus.ACCEPTED,
    ]
    (problem,) = again.problems
    assert (problem["code"], problem["column"]) == ("duplicate_row", "身份证号码")
    assert str(FIRST_ROW) in problem["message_zh"]


def test_a_number_an_earlier_chunk_stored_rejects_every_row_repeating_it() -> None:
    verdicts = decide([row("张三", ZHANG), row("张三", ZHANG)], registered(earlier={ZHANG: 2}))
    assert [v.status for v in verdicts] == [RowStatus.REJECTED, RowStatus.REJECTED]
    assert all("第 2 行" in v.problems[0]["message_zh"] for v in verdicts)


def test_a_reviewable_problem_beside_a_rejecting_one_rejects_the_row_and_keeps_the_evidence() -> None:
    _, again = decide([row("张三", ZHANG), row("张三", ZHANG)], registered(names={ZHANG: "张叁"}))
    assert again.status is RowStatus.REJECTED
    assert codes(again) == ["person_name_mismatch", "duplicate_row"]
    assert again.evidence == {"registered_name": "张叁"}


def test_a_reduction_only_removes_a_category_the_person_holds() -> None:
    holder, not_holder = decide(
        [row("张三", ZHANG, reason="死亡"), row("李四", LI, reason="死亡")],
        registered(held={(ZHANG, "minimum_living"), (LI, "extreme_poverty")}),
        RosterKind.SUBSIDY_REDUCTION,
    )
    assert (holder.status, holder.problems) == (RowStatus.ACCEPTED, [])
    assert not_holder.status is RowStatus.REJECTED
    assert codes(not_holder) == ["category_not_held"]


def test_a_row_without_a_valid_number_is_rejected_and_checked_against_nothing() -> None:
    wrong = with_wrong_check(ZHANG)
    verdicts = decide(
        [row("张三", wrong), row("张三", wrong)], registered(names={wrong: "张叁"}, insured={wrong: "名单"})
    )
    assert [codes(v) for v in verdicts] == [["id_number_invalid_checksum"]] * 2
    assert [(v.status, v.evidence) for v in verdicts] == [(RowStatus.REJECTED, None)] * 2


def test_judging_leaves_the_rows_it_was_given_as_they_were() -> None:
    rules = RowRules(RosterKind.SUBSIDY, POLICY, "341823", None, HEADERS, TODAY)
    judged = [(FIRST_ROW, rules.judge(row("张三", ZHANG)))]
    (verdict,) = against_registered(rules, judged, registered(names={ZHANG: "张叁"}))
    assert codes(verdict) == ["person_name_mismatch"]
    assert judged[0][1].problems == []
