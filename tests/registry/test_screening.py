"""Screening (排查): who has not enrolled, exactly, for a crafted population; community follow-up; reminders
with throttling."""

import json
from pathlib import Path
from typing import Any

import pytest

from registry.reminder.senders import OutgoingReminder
from tests.conftest import Harness
from tests.registry.helpers import applied, deliver_payment, enrolled, person
from tests.spreadsheets import csv_bytes, read_xlsx
from tests.support import resident_id

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.policy_dir(ROOT / "tests" / "data" / "history")

SHUSHAN: dict[str, Any] = {"region_code": "340104", "coverage_year": 2024}
SCREENING_DAY = "2023-11-20T09:00:00+08:00"


async def enrolled_in(
    h: Harness, who: dict[str, Any], year: int, region: str = "340104", paid: bool = True, **terms: Any
) -> dict[str, Any]:
    """Enroll (and pay) in a year's window, as the person did then."""
    h.at(f"{year - 1}-10-10T10:00:00+08:00")
    e = await enrolled(h, who, {"region_code": region, "coverage_year": year}, **terms)
    if paid:
        await deliver_payment(h, e, f"{year - 1}-10-10T11:00:00+08:00")
    return e


def log_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


async def screen(h: Harness) -> dict[str, Any]:
    response = await h.client.post("/v1/screenings", json=SHUSHAN | {"run_by": "市医保征缴科"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cases(h: Harness, **filters: Any) -> dict[str, dict[str, Any]]:
    response = await h.client.get("/v1/screening-cases", params=SHUSHAN | filters)
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["items"]}


async def crafted(h: Harness) -> dict[str, dict[str, Any]]:
    """Ten people around 蜀山区, each a case the screening must get right."""
    people = {
        "老李": person(
            resident_id(region="340104", birth="19580301"), name="老李", phone="13912345678"
        ),  # 65: enrolled last year
        "小学": person(resident_id(region="340104", birth="20040601"), name="小学"),  # student two years ago
        "户籍": person(resident_id(region="340104", birth="19830501"), name="户籍"),  # no phone known
        "已缴": person(resident_id(region="340104", birth="19800101"), name="已缴"),
        "迁出": person(resident_id(region="340104", birth="19750101"), name="迁出"),
        "职工": person(resident_id(region="340104", birth="19900101"), name="职工"),
        "外地": person(resident_id(region="340104", birth="19920101"), name="外地"),
        "去世": person(resident_id(region="340104", birth="19400101"), name="去世"),
        "未缴": person(resident_id(region="340104", birth="19950101"), name="未缴", phone="13800001111"),
        "瑶海": person(resident_id(region="340102", birth="19850101"), name="瑶海"),
    }
    for name in ("老李", "已缴", "迁出", "职工", "外地", "去世", "未缴"):
        await enrolled_in(h, people[name], 2023)
    await enrolled_in(h, people["小学"], 2022, basis="student")
    await enrolled_in(h, people["瑶海"], 2023, region="340102")

    h.at("2023-10-08T10:00:00+08:00")
    await enrolled_in(h, people["已缴"], 2024)
    await enrolled_in(h, people["未缴"], 2024, paid=False)
    h.at("2023-10-08T10:00:00+08:00")
    died = await enrolled(h, people["去世"], SHUSHAN)
    ended = await h.client.post(
        f"/v1/enrollments/{died['enrollment_id']}/cancellation",
        json={"reason": "death", "evidence_ref": "死亡证明 2023-101", "reported_by": "社区"},
    )
    assert ended.status_code == 200, ended.text
    for name, kind in (("职工", "employee_insurance"), ("外地", "enrolled_elsewhere")):
        excluded = await h.client.post(
            "/v1/exclusions",
            json={
                "person": people[name],
                "coverage_year": 2024,
                "kind": kind,
                "source": "市职工医保参保名单",
                "recorded_by": "staff-01",
            },
        )
        assert excluded.status_code == 201, excluded.text

    # Public security's 2024 extract: 户籍 lives in 蜀山区, 迁出 is now registered in 瑶海区.
    header = ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"]
    for region, rows in (
        ("340104", [[1, "户籍", people["户籍"]["id_number"], "南七街道", "花园社区", "3组"]]),
        ("340102", [[1, "迁出", people["迁出"]["id_number"], "明光路街道", "", ""]]),
    ):
        report = await applied(
            h,
            csv_bytes(header, rows, "gb18030"),
            f"户籍人口-{region}.csv",
            kind="household_registration",
            department="市公安局",
            region_code=region,
            coverage_year=2024,
        )
        assert [r["status"] for r in report.values()] == ["applied"], report
    h.at(SCREENING_DAY)
    return people


async def test_screening_lists_exactly_who_has_not_enrolled(registry: Harness) -> None:
    await crafted(registry)

    result = await screen(registry)

    assert result["compared_years"] == [2023, 2022]
    listed = await cases(registry)
    assert sorted(listed) == ["小学", "户籍", "未缴", "老李"]
    assert result["listed"] == result["added"] == 4
    assert (listed["老李"]["aged_60_plus"], listed["老李"]["student"]) == (True, False)
    assert listed["老李"]["found_in"] == ["enrolled_2023"]
    assert (listed["小学"]["student"], listed["小学"]["found_in"]) == (True, ["enrolled_2022"])
    assert listed["户籍"]["found_in"] == ["registered"]
    assert (listed["户籍"]["township"], listed["户籍"]["village"]) == ("南七街道", "花园社区")
    assert listed["户籍"]["phone_masked"] is None
    assert listed["老李"]["phone_masked"] == "139****5678"
    assert listed["户籍"]["id_number_masked"].startswith("3401")
    assert "*" in listed["户籍"]["id_number_masked"]
    assert listed["未缴"]["pending_payment"] is True
    assert all(c["state"] == "not_contacted" for c in listed.values())
    assert sorted(await cases(registry, aged_60_plus="true")) == ["老李"]
    assert sorted(await cases(registry, student="true")) == ["小学"]

    # Running it again changes nothing.
    again = await screen(registry)
    assert (again["added"], again["listed"], again["closed"]) == (0, 4, {})


async def test_follow_up_states_and_a_rerun_after_people_enroll(registry: Harness) -> None:
    people = await crafted(registry)
    await screen(registry)
    listed = await cases(registry)

    claimed = await registry.client.post(
        f"/v1/screening-cases/{listed['户籍']['id']}/follow-up",
        json={"state": "enrolled", "updated_by": "南七街道-王"},
    )
    assert claimed.status_code == 409
    assert claimed.json()["error"]["code"] == "not_enrolled_yet"
    visited = await registry.client.post(
        f"/v1/screening-cases/{listed['小学']['id']}/follow-up",
        json={"state": "visited", "note": "在外地读大学", "updated_by": "社区-张"},
    )
    assert visited.status_code == 200, visited.text
    moved = await registry.client.post(
        f"/v1/screening-cases/{listed['小学']['id']}/follow-up",
        json={"state": "enrolled_elsewhere", "note": "在就读地参保", "updated_by": "社区-张"},
    )
    assert [(h["from_state"], h["to_state"]) for h in moved.json()["history"]] == [
        ("not_contacted", "visited"),
        ("visited", "enrolled_elsewhere"),
    ]
    closed = await registry.client.post(
        f"/v1/screening-cases/{listed['小学']['id']}/follow-up",
        json={"state": "refused", "updated_by": "社区-张"},
    )
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "screening_case_closed"
    not_staffs = await registry.client.post(
        f"/v1/screening-cases/{listed['老李']['id']}/follow-up",
        json={"state": "not_required", "updated_by": "社区-张"},
    )
    assert not_staffs.status_code == 422

    # 老李 pays; the next run closes his case and keeps staff's work on the others.
    registry.at("2023-11-21T09:00:00+08:00")
    again = await enrolled(registry, people["老李"], SHUSHAN)
    await deliver_payment(registry, again, "2023-11-21T10:00:00+08:00")
    rerun = await screen(registry)
    assert rerun["closed"] == {"enrolled": 1}
    assert rerun["listed"] == 2
    after = await cases(registry)
    assert (after["老李"]["state"], after["小学"]["state"]) == ("enrolled", "enrolled_elsewhere")
    open_cases = await cases(registry, state=["not_contacted", "reminded", "visited", "refused"])
    assert sorted(open_cases) == ["户籍", "未缴"]

    summary = (await registry.client.get("/v1/screening-cases/summary", params=SHUSHAN)).json()
    by_township = {r["township"]: r for r in summary["rows"]}
    assert by_township["南七街道"]["states"]["not_contacted"] == 1
    assert summary["total"]["total"] == 4
    assert summary["total"]["open"] == 2
    assert summary["total"]["states"]["enrolled"] == 1
    assert summary["total"]["open"] == sum(r["open"] for r in summary["rows"])

    sheet = read_xlsx((await registry.client.get("/v1/screening-cases/list.xlsx", params=SHUSHAN)).content)
    names = [str(row[1]) for row in sheet[2:]]
    assert sorted(names) == ["户籍", "未缴"]  # open cases only, for door-to-door visits
    assert all("*" in str(row[2]) for row in sheet[2:])


async def test_reminders_go_through_the_sender_and_never_twice_within_the_interval(registry: Harness) -> None:
    await crafted(registry)
    await screen(registry)
    reminder_log = Path(registry.app.state.settings.reminder_log)

    first = await registry.client.post(
        "/v1/reminders", json=SHUSHAN | {"channel": "sms", "requested_by": "市医保征缴科"}
    )
    assert first.status_code == 202, first.text
    assert first.json() | {"min_interval_hours": 0} == {
        "considered": 4,
        "queued": 2,  # 老李 and 未缴 have phone numbers
        "throttled": 0,
        "no_phone": 2,
        "min_interval_hours": 0,
    }
    await registry.app.state.reminder_dispatcher.run_until_idle()
    lines = [json.loads(line) for line in log_lines(reminder_log)]
    assert sorted(line["to"] for line in lines) == ["138****1111", "139****5678"]
    assert all(
        "13912345678" not in line["text"] and "集中参保缴费期至2023年12月31日" in line["text"]
        for line in lines
    )
    listed = await cases(registry)
    assert listed["老李"]["state"] == "reminded"
    assert listed["老李"]["last_reminded_at"] is not None

    # Within 72 hours, nobody is reminded again, however the request is made.
    registry.at("2023-11-22T21:00:00+08:00")
    again = await registry.client.post(
        "/v1/reminders",
        json=SHUSHAN | {"channel": "wechat", "case_ids": [listed["老李"]["id"]], "requested_by": "社区"},
    )
    assert (again.json()["queued"], again.json()["throttled"]) == (0, 1)
    await registry.app.state.reminder_dispatcher.run_until_idle()
    assert len(log_lines(reminder_log)) == 2

    registry.at("2023-11-23T09:00:01+08:00")  # 72 hours and a second after the first
    later = await registry.client.post(
        "/v1/reminders",
        json=SHUSHAN | {"channel": "wechat", "case_ids": [listed["老李"]["id"]], "requested_by": "社区"},
    )
    assert (later.json()["queued"], later.json()["throttled"]) == (1, 0)
    await registry.app.state.reminder_dispatcher.run_until_idle()
    sent = (await registry.client.get("/v1/reminders", params={"case_id": listed["老李"]["id"]})).json()
    assert [(r["channel"], r["status"], r["recipient_masked"]) for r in sent] == [
        ("sms", "sent", "139****5678"),
        ("wechat", "sent", "139****5678"),
    ]


class Unreachable:
    def __init__(self) -> None:
        self.calls = 0

    async def send(self, reminder: OutgoingReminder) -> None:
        self.calls += 1
        raise ConnectionError("SMS gateway unreachable")


async def test_a_failing_sender_is_retried_later_then_gives_up(registry: Harness) -> None:
    await crafted(registry)
    await screen(registry)
    listed = await cases(registry)
    dispatcher = registry.app.state.reminder_dispatcher
    dispatcher.sender = Unreachable()
    await registry.client.post(
        "/v1/reminders",
        json=SHUSHAN | {"channel": "sms", "case_ids": [listed["老李"]["id"]], "requested_by": "社区"},
    )

    await dispatcher.run_until_idle()
    assert dispatcher.sender.calls == 1  # the retry waits; it is not due yet
    (reminder,) = (
        await registry.client.get("/v1/reminders", params={"case_id": listed["老李"]["id"]})
    ).json()
    assert (reminder["status"], reminder["attempts"]) == ("queued", 1)
    assert "unreachable" in reminder["last_error"]
    for hour in range(1, 6):
        registry.at(f"2023-11-20T{9 + hour:02d}:00:00+08:00")
        await dispatcher.run_until_idle()
    (reminder,) = (
        await registry.client.get("/v1/reminders", params={"case_id": listed["老李"]["id"]})
    ).json()
    assert (reminder["status"], reminder["attempts"]) == ("failed", 5)
    assert (await cases(registry))["老李"]["state"] == "not_contacted"


async def test_screening_a_region_without_a_policy_is_refused(registry: Harness) -> None:
    response = await registry.client.post(
        "/v1/screenings", json={"region_code": "110101", "coverage_year": 2024, "run_by": "x"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "policy_not_found"
    missing = await registry.client.post(
        "/v1/screening-cases/999999/follow-up", json={"state": "visited", "updated_by": "x"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "screening_case_not_found"
