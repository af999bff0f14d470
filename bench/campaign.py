"""Campaign replay (issue 19): a scaled Hefei 2024 campaign through the whole system, over HTTP and Kafka.

A seeded population of `--scale` × 5.51 M residents (Hefei's 2022 enrollees, 合医保发〔2023〕12号
attachment 2; 0.01 = 55,100 residents, the default 0.0003 = 1,653 runs in a few minutes), spread over
the districts by last year's enrollees (registry/progress/data), goes through the paths the system offers:

- **subsidised people** (资助参保) come on department rosters, one per district and category as the documents
  lay them out, uploaded and approved through `POST /v1/rosters` before the window ("by 25 August"): the fully
  subsidised (特困人员) are enrolled and settled without paying (collection settles a zero bill itself); the
  partly subsidised pay their own share online during the campaign; at the end the funder (医疗救助资金)
  transfers the subsidy share of each district as one `POST /v1/subsidy-transfers`;
- **university students** (大学生, 43.9 of the 549 万 enrollees) come as a university's batch
  (`kind=university` roster, at most 500 students each) that the university pays as one payer at the tax hall;
- **households** (several members, registered and enrolled together by the community office, one payment for
  all their bills: one payment order, or one counter payment);
- **individuals**, who enroll themselves and pay online, or are enrolled by the community office and pay at
  the tax hall, in cash, or to a township agent (代收代缴; the agents remit their cash at the end).

Online payments are payment orders completed by the sandbox channel's signed notification; counter and agent
payments are recorded by a tax officer (`POST /v1/payments`). Waiting uses what the system offers:
`GET /v1/enrollments/{id}?wait_s=` answers when the payment is applied; `GET /v1/bills?enrollment_id=&wait_s=`
when the enrollment's bill is issued (one request per member of a household; asked again after 50 ms if a wait
ends empty).

The documents give the subsidies but not how many people hold each category, nor the channel mix, household
sizes or when people pay. Assumptions (stated here and in docs/performance.md):
- category shares of all residents: 特困人员 0.4%, 低保对象 1.5%, 低保边缘家庭老年人 0.3%,
  计划生育特殊家庭父母 0.1%, 返贫致贫人口 0.1%, 防止返贫监测对象 0.3% (2.7% in all: the national shares of
  2023 — about 0.3% 特困 and 2.9% 低保 — lowered for a richer city); every category and kind appears at
  least once, whatever the scale;
- 45% of the other residents enroll as households of 2–4 (40% two, 40% three, 20% four members);
- channels of a payer under 60: WeChat 40%, Alipay 20%, provincial app 10%, bank 5%, tax hall 10%, cash 5%,
  agent 10%; of a payer of 60 or more: WeChat 20%, Alipay 5%, provincial app 5%, bank 5%, tax hall 20%,
  cash 25%, agent 20% (the notice: cash for the elderly, townships collect on residents' behalf);
- the deadline rush: 40% of payers arrive evenly over September to November, 60% in December with a density
  rising to 31 December; university batches in September and the first half of October.

The 122 days of the window are compressed into `--campaign-s` seconds (default: one second per 12 flows: about
6 flows/s offered from September to November, 28 on average in December and twice that on its last days), so
December's offered load exceeds what the machine can carry and the rush runs at capacity: "flows/s during the
rush" is the system's throughput, and the projected time for the whole city is 5.51 M residents at that rate.
At most `--concurrency` flows are under way at once; a flow's latency runs from its start to its last
enrollment seen active. Before the campaign, on the same stack, `--baseline-flows` of bench/flow.py's flow
(one resident, WeChat; after `--concurrency` more to warm up) give the same-run baseline the rush is compared
with; its people are enrolled, counted and checked with the rest. Ends with `canbao check --no-repair` over
every district, the counts (every resident enrolled once and paid, the money what the policy charges) and
exits non-zero if anything is not clean or a flow failed.

    .venv/bin/python bench/campaign.py                                  # SQLite, the default scale
    .venv/bin/python bench/campaign.py --scale 0.002 --concurrency 50 --postgres postgresql://127.0.0.1:5432
"""

import argparse
import asyncio
import csv
import io
import math
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from stdnum.cn import ric

from bench.load import Client, RequestFailed, UnexpectedAnswer
from bench.meter import CpuMeter
from canbao import check
from canbao.harness import DEMO_CLOCK_START, ROOT, bench_stack
from canbao.stack import SERVICES
from shared.auth import Role, dev_token
from shared.crosscheck import PAGE_LIMIT, Standing, StandingPage
from shared.money import format_fen, parse_yuan

CITY_RESIDENTS = 5_510_000  # 合肥 2022 居民参保人数 551.15 万 (attachment 2's printed total)
YEAR = 2024
PERSONAL_FEN = 38_000
FUNDER = "医疗救助资金"
DISTRICTS_CSV = ROOT / "services/registry/registry/progress/data/hefei-2024.csv"
WINDOW_DAYS = 122  # 2023-09-01 .. 2023-12-31
RUSH_DAY = 91  # 1 December
WINDOW_START = date(2023, 9, 1)
BILL_RETRY_S = 0.05
WAIT_S = 25

# (code, share of all residents, percent of the 380 the subsidy covers, certifying department)
CATEGORIES = [
    ("extreme_poverty", 0.004, 100, "民政局"),
    ("minimum_living", 0.015, 90, "民政局"),
    ("near_minimum_living_elderly", 0.003, 90, "民政局"),
    ("family_planning_special", 0.001, 90, "卫生健康委员会"),
    ("returned_to_poverty", 0.001, 80, "乡村振兴局"),
    ("poverty_monitoring", 0.003, 50, "乡村振兴局"),
]
HOUSEHOLD_SHARE = 0.45
HOUSEHOLD_SIZES = {2: 0.4, 3: 0.4, 4: 0.2}
UNIVERSITY_BATCH = 500
UNIVERSITIES = [("合肥工业大学", "340111"), ("安徽大学", "340104"), ("中国科学技术大学", "340104")]
CHANNELS_YOUNG = {
    "wechat": 40,
    "alipay": 20,
    "provincial_app": 10,
    "bank": 5,
    "tax_hall": 10,
    "cash": 5,
    "agent": 10,
}
CHANNELS_OLD = {
    "wechat": 20,
    "alipay": 5,
    "provincial_app": 5,
    "bank": 5,
    "tax_hall": 20,
    "cash": 25,
    "agent": 20,
}
ONLINE = {"wechat", "alipay", "provincial_app", "bank"}
EARLY_SHARE = 0.40
# Birth places for ID numbers: the seven county-level codes of Hefei (the development zones' codes are
# statistical, not in ID numbers) and, for students, a few elsewhere in Anhui.
BIRTH_REGIONS = {
    "340171": "340104",
    "340172": "340111",
    "340173": "340102",
}
STUDENT_BIRTH_REGIONS = ["340104", "340202", "341823", "340302", "341102"]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红"
    "建文辉力永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发"
)


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    age: int
    due_fen: int = PERSONAL_FEN


@dataclass
class Unit:
    """One flow: who, where, how they pay and on which day of the window they come."""

    kind: str  # individual, household, subsidised_full, subsidised_partial, university
    region: str
    members: list[Person]
    channel: str  # a payment channel; `subsidy` when nothing is paid; `organisation` for a university
    day: float = 0.0
    category: str | None = None
    organisation: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.kind in {"subsidised_full", "university"} else f"{self.kind}/{self.channel}"


@dataclass
class Population:
    scale: float
    seed: int
    units: list[Unit]

    @property
    def residents(self) -> int:
        return sum(len(u.members) for u in self.units)

    @property
    def regions(self) -> list[str]:
        return sorted({u.region for u in self.units})

    @property
    def due_fen(self) -> int:
        return sum(p.due_fen for u in self.units for p in u.members)


def districts() -> dict[str, float]:
    """Region code → last year's enrollees (万人); the university students' row stays apart."""
    with DISTRICTS_CSV.open(encoding="utf-8") as f:
        return {
            r["region_code"]: float(r["enrolled_2022_10k"]) for r in csv.DictReader(f) if r["region_code"]
        }


def university_share() -> float:
    with DISTRICTS_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum(float(r["enrolled_2022_10k"]) for r in rows)
    return sum(float(r["enrolled_2022_10k"]) for r in rows if not r["region_code"]) / total


class Generator:
    """Unique, valid, seeded ID numbers and names, people of an age band, channels by age."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311  (a reproducible population, not a secret)
        self.used: set[str] = set()
        self.today = date.fromisoformat(DEMO_CLOCK_START[:10])  # the stack's business clock starts there

    def person(self, birth_region: str, youngest: int, oldest: int, due_fen: int = PERSONAL_FEN) -> Person:
        while True:
            age_days = self.rng.randrange(youngest * 366, oldest * 365 + 364)
            birth = self.today - timedelta(days=age_days)
            body = f"{birth_region}{birth:%Y%m%d}{self.rng.randrange(1000):03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number not in self.used:
                self.used.add(number)
                name = self.rng.choice(SURNAMES) + "".join(self.rng.choices(GIVEN, k=self.rng.choice((1, 2))))
                return Person(number, name, age_days // 365, due_fen)

    def resident(
        self, region: str, youngest: int = 18, oldest: int = 90, due_fen: int = PERSONAL_FEN
    ) -> Person:
        return self.person(BIRTH_REGIONS.get(region, region), youngest, oldest, due_fen)

    def channel(self, payer: Person) -> str:
        mix = CHANNELS_OLD if payer.age >= 60 else CHANNELS_YOUNG
        return self.rng.choices(list(mix), weights=list(mix.values()))[0]

    def day(self) -> float:
        """When a payer comes: evenly before December, then ever more towards the deadline."""
        if self.rng.random() < EARLY_SHARE:
            return self.rng.uniform(0, RUSH_DAY)
        return RUSH_DAY + (WINDOW_DAYS - RUSH_DAY) * math.sqrt(self.rng.random())

    def region(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]


def generate(scale: float, seed: int) -> Population:
    """The scaled city: its subsidised people, university batches, households and individuals."""
    gen = Generator(seed)
    weights = districts()
    residents = max(round(CITY_RESIDENTS * scale), 1)
    units: list[Unit] = []
    for code, share, percent, _ in CATEGORIES:
        due = PERSONAL_FEN * (100 - percent) // 100
        for _ in range(max(round(residents * share), 1)):
            region = gen.region(weights)
            youngest = 60 if code == "near_minimum_living_elderly" else 1
            person = gen.resident(region, youngest, 90, due)
            kind = "subsidised_full" if due == 0 else "subsidised_partial"
            channel = "subsidy" if due == 0 else gen.rng.choice(sorted(ONLINE))
            units.append(Unit(kind, region, [person], channel, 0.0 if due == 0 else gen.day(), code))
    students = max(round(residents * university_share()), 1)
    for start in range(0, students, UNIVERSITY_BATCH):
        name, region = UNIVERSITIES[(start // UNIVERSITY_BATCH) % len(UNIVERSITIES)]
        batch = [
            gen.person(gen.rng.choice(STUDENT_BIRTH_REGIONS), 17, 24)
            for _ in range(min(UNIVERSITY_BATCH, students - start))
        ]
        day = gen.rng.uniform(0, 45)
        units.append(Unit("university", region, batch, "organisation", day, organisation=name))
    units.extend(_families(gen, weights, residents - sum(len(u.members) for u in units)))
    return Population(scale, seed, units)


def _families(gen: Generator, weights: dict[str, float], people: int) -> list[Unit]:
    units: list[Unit] = []
    in_households = round(people * HOUSEHOLD_SHARE)
    placed = 0
    while placed < in_households or not units:
        size = gen.rng.choices(list(HOUSEHOLD_SIZES), weights=list(HOUSEHOLD_SIZES.values()))[0]
        size = min(size, max(people - placed, 2))
        region = gen.region(weights)
        head = gen.resident(region, 25, 80)
        members = [head, gen.resident(region, 25, 80)]
        members += [gen.resident(region, 0, 17) for _ in range(size - 2)]
        units.append(Unit("household", region, members, gen.channel(head), gen.day()))
        placed += size
    for _ in range(max(people - placed, 1)):
        region = gen.region(weights)
        person = gen.resident(region, 18, 90)
        units.append(Unit("individual", region, [person], gen.channel(person), gen.day()))
    return units


class FlowFailed(Exception):
    pass


def _resident(person: Person) -> dict[str, str]:
    token = dev_token(Role.RESIDENT, sub=person.id_number, id_number=person.id_number, name=person.name)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Result:
    label: str
    residents: int
    started: float
    done: float
    to_active: float | None = None  # from starting to pay (order or counter) to the last member seen active


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    roster_s: float = 0.0
    campaign_started: float = 0.0
    rush_started: float = 0.0
    transfers: list[dict[str, Any]] = field(default_factory=list)
    remittances: list[dict[str, Any]] = field(default_factory=list)
    resent_notifications: int = 0


class Campaign:
    """Drives the units through the running system."""

    def __init__(self, registry: Client, collection: Client, timeout_s: float, outcome: Outcome) -> None:
        self.registry = registry
        self.collection = collection
        self.timeout_s = timeout_s
        self.outcome = outcome

    # ---- waiting, without polling where the system lets us
    async def bills(
        self, enrollment_ids: list[str], deadline: float, headers: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Each enrollment's bill, waited for one enrollment per request (the wait names exactly one)."""
        found = await asyncio.gather(*(self.bill(i, deadline, headers) for i in enrollment_ids))
        return [bill for items in found for bill in items]

    async def bill(
        self, enrollment_id: str, deadline: float, headers: dict[str, str] | None
    ) -> list[dict[str, Any]]:
        while True:
            response = await self.collection.get(
                "/v1/bills", params={"enrollment_id": enrollment_id, "wait_s": 10}, headers=headers
            )
            items: list[dict[str, Any]] = response.expect(200)["items"]
            if items:
                return items
            if time.perf_counter() > deadline:
                raise FlowFailed(f"no bill for {enrollment_id} within {self.timeout_s}s")
            await asyncio.sleep(BILL_RETRY_S)

    async def active(self, enrollment_id: str, deadline: float) -> None:
        known = "pending_payment"
        while True:
            response = await self.registry.get(
                f"/v1/enrollments/{enrollment_id}", params={"wait_s": WAIT_S, "known_status": known}
            )
            if response.status == 429:  # too many waiting: as a front-end would, after Retry-After
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            status = response.expect(200)["status"]
            if status == "active":
                return
            if status != "pending_payment":
                raise FlowFailed(f"enrollment {enrollment_id} is {status}")
            if time.perf_counter() > deadline:
                raise FlowFailed(f"enrollment {enrollment_id} not active within {self.timeout_s}s")

    async def all_active(self, enrollment_ids: Iterable[str], deadline: float) -> None:
        await asyncio.gather(*(self.active(i, deadline) for i in enrollment_ids))

    # ---- paying
    async def pay(self, unit: Unit, bills: list[dict[str, Any]], deadline: float) -> None:
        payer = unit.members[0]
        bill_ids = [b["bill_id"] for b in bills]
        if unit.channel in ONLINE:
            await self.pay_online(payer, bill_ids, unit.channel, deadline)
            return
        body: dict[str, Any] = {
            "bill_ids": bill_ids,
            "amount": format_fen(sum(parse_yuan(b["amount_due"]) for b in bills)),
            "channel": unit.channel,
        }
        if unit.channel == "agent":
            body["agent_id"] = agent_id(unit.region)
        key = {"Idempotency-Key": str(uuid.uuid4())}
        (await self.collection.post("/v1/payments", json=body, headers=key)).expect(201)

    async def pay_online(self, payer: Person, bill_ids: list[str], channel: str, deadline: float) -> None:
        """The resident's payment order, then the channel's signed notification (the sandbox plays it)."""
        resident = _resident(payer)
        order = (
            await self.collection.post(
                "/v1/payment-orders",
                json={"bill_ids": bill_ids, "channel": channel},
                headers=resident | {"Idempotency-Key": str(uuid.uuid4())},
            )
        ).expect(201)
        path = f"/v1/sandbox/payment-orders/{order['order_id']}/payment"
        while (paid := await self.collection.post(path, headers=resident)).status == 503:
            # A channel sends its notification again until it hears 2xx; a 503 recorded nothing.
            if time.perf_counter() > deadline:
                break
            self.outcome.resent_notifications += 1
            await asyncio.sleep(BILL_RETRY_S)
        paid.expect(200)

    # ---- the kinds of flow
    async def individual(self, unit: Unit, deadline: float) -> float:
        person = unit.members[0]
        # Online, residents enroll themselves; offline, the community office does it for them.
        headers = _resident(person) if unit.channel in ONLINE else None
        body = {
            "id_number": person.id_number,
            "name": person.name,
            "region_code": unit.region,
            "coverage_year": YEAR,
        }
        created = (await self.registry.post("/v1/enrollments", json=body, headers=headers)).expect(201)
        bills = await self.bills([created["enrollment_id"]], deadline)
        paying = time.perf_counter()
        await self.pay(unit, bills, deadline)
        await self.active(created["enrollment_id"], deadline)
        return paying

    async def household(self, unit: Unit, deadline: float) -> float:
        relations = ["head", "spouse"] + ["child"] * (len(unit.members) - 2)
        members = [
            {"id_number": p.id_number, "name": p.name, "relation": r}
            for p, r in zip(unit.members, relations, strict=True)
        ]
        household = (await self.registry.post("/v1/households", json={"members": members})).expect(201)
        summary = (
            await self.registry.post(
                f"/v1/households/{household['household_id']}/enrollments",
                json={"region_code": unit.region, "coverage_year": YEAR},
            )
        ).expect(201)
        ids = [e["enrollment_id"] for e in summary["enrollments"]]
        bills = await self.bills(ids, deadline)
        paying = time.perf_counter()
        await self.pay(unit, bills, deadline)
        await self.all_active(ids, deadline)
        return paying

    async def subsidised_partial(self, unit: Unit, deadline: float) -> float:
        """Enrolled from the roster at their share: the person finds their bill and pays it online."""
        person = unit.members[0]
        resident = _resident(person)
        while not (bills := (await self.collection.get("/v1/bills", headers=resident)).expect(200)["items"]):
            if time.perf_counter() > deadline:
                raise FlowFailed(f"no bill for a subsidised person of {unit.category}")
            await asyncio.sleep(BILL_RETRY_S)
        if parse_yuan(bills[0]["amount_due"]) != person.due_fen:
            raise FlowFailed(
                f"{unit.category}: billed {bills[0]['amount_due']}, "
                f"the policy says {format_fen(person.due_fen)}"
            )
        paying = time.perf_counter()
        await self.pay_online(person, [bills[0]["bill_id"]], unit.channel, deadline)
        await self.active(bills[0]["enrollment_id"], deadline)
        return paying

    async def subsidised_full(self, unit: Unit, deadline: float) -> None:
        """Settled without paying: their zero bill paid by collection itself, the enrollment active."""
        resident = _resident(unit.members[0])
        while True:
            bills = (await self.collection.get("/v1/bills", headers=resident)).expect(200)["items"]
            if bills and bills[0]["amount_due"] == "0.00":
                break
            if time.perf_counter() > deadline:
                raise FlowFailed(f"no zero bill for a fully subsidised person: {bills}")
            await asyncio.sleep(BILL_RETRY_S)
        await self.active(bills[0]["enrollment_id"], deadline)

    async def university(self, unit: Unit, deadline: float) -> float:
        """The university's roster, approved; its bills, then one payment at the tax hall for all of them."""
        assert unit.organisation is not None
        await self.roster(unit.region, "university", unit.organisation, None, unit.members, deadline)
        where: dict[str, str | int] = {
            "organisation": unit.organisation,
            "region_code": unit.region,
            "coverage_year": YEAR,
        }
        while (due := (await self.collection.get("/v1/bills/organisation-due", params=where)).expect(200))[
            "open_bills"
        ] < len(unit.members):
            if time.perf_counter() > deadline:
                raise FlowFailed(f"{unit.organisation}: {due['open_bills']} of {len(unit.members)} bills")
            await asyncio.sleep(BILL_RETRY_S * 4)
        paying = time.perf_counter()
        organisation = {"name": unit.organisation, "region_code": unit.region, "coverage_year": YEAR}
        paid = (
            await self.collection.post(
                "/v1/payments",
                json={"organisation": organisation, "amount": due["amount_due"], "channel": "tax_hall"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
        ).expect(201)
        await self.all_active((i["enrollment_id"] for i in paid["items"]), deadline)
        return paying

    # ---- rosters
    async def roster(
        self,
        region: str,
        kind: str,
        department: str,
        category: str | None,
        people: list[Person],
        deadline: float,
    ) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["序号", "姓名", "身份证号码"])
        writer.writerows((n, p.name, p.id_number) for n, p in enumerate(people, 1))
        form = {
            "kind": kind,
            "region_code": region,
            "coverage_year": str(YEAR),
            "department": department,
            "uploaded_by": "campaign-bench",
        } | ({"category": category} if category else {})
        files = {"file": (f"{department}-{category or kind}.csv", out.getvalue().encode(), "text/csv")}
        upload = (await self.registry.post("/v1/rosters", data=form, files=files)).expect(201)
        await self.roster_state(upload["upload_id"], "validated", deadline)
        review = {"reviewed_by": "campaign-bench", "note": "核对无误"}
        (await self.registry.post(f"/v1/rosters/{upload['upload_id']}/approval", json=review)).expect(200)
        applied = await self.roster_state(upload["upload_id"], "applied", deadline)
        if applied["rows_applied"] != len(people) or applied["rows_rejected"]:
            raise FlowFailed(f"roster {department} {category or kind}: {applied}")

    async def roster_state(self, upload_id: str, wanted: str, deadline: float) -> dict[str, Any]:
        while True:
            state: dict[str, Any] = (await self.registry.get(f"/v1/rosters/{upload_id}")).expect(200)
            if state["status"] == wanted:
                return state
            if state["status"] in {"failed", "rejected"} or time.perf_counter() > deadline:
                raise FlowFailed(f"roster {upload_id}: {state['status']} {state.get('failure')}")
            await asyncio.sleep(0.1)


def agent_id(region: str) -> str:
    return f"{region}-DSDJ"


async def setup_agents(campaign: Campaign, regions: list[str]) -> None:
    for region in regions:
        body = {"agent_id": agent_id(region), "name": f"{region} 乡镇代收点", "region_code": region}
        (await campaign.collection.post("/v1/agents", json=body)).expect(201, 409)


async def subsidy_rosters(campaign: Campaign, population: Population, progress: "Bar") -> None:
    """Before the window: every district's departments send one roster per category; the fully subsidised
    are settled by it."""
    outcome = campaign.outcome
    started = time.perf_counter()
    deadline = started + campaign.timeout_s * 4
    lists: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for unit in population.units:
        if unit.kind.startswith("subsidised"):
            assert unit.category is not None
            lists[(unit.region, unit.category)].append(unit)
    department = {code: dept for code, _, _, dept in CATEGORIES}

    async def one(region: str, category: str, units: list[Unit]) -> None:
        try:
            await campaign.roster(
                region, "subsidy", department[category], category, [u.members[0] for u in units], deadline
            )
        except (FlowFailed, UnexpectedAnswer, RequestFailed) as exc:
            outcome.failures.extend((u.label, f"roster: {exc}") for u in units)
            progress.advance(len(units), [u for u in units if u.kind == "subsidised_full"])
            return
        await asyncio.gather(*(settled(u) for u in units if u.kind == "subsidised_full"))

    async def settled(unit: Unit) -> None:
        await _run_one(unit, campaign, progress, started, lambda: campaign.subsidised_full(unit, deadline))

    await asyncio.gather(*(one(region, category, units) for (region, category), units in lists.items()))
    outcome.roster_s = time.perf_counter() - started


async def _run_one(
    unit: Unit,
    campaign: Campaign,
    progress: "Bar | None",
    started: float,
    flow: Callable[[], Awaitable[float | None]],
) -> None:
    try:
        paying = await flow()
        done = time.perf_counter()
        to_active = done - paying if paying is not None else None
        campaign.outcome.results.append(Result(unit.label, len(unit.members), started, done, to_active))
    except (FlowFailed, UnexpectedAnswer, RequestFailed) as exc:
        campaign.outcome.failures.append((unit.label, f"{type(exc).__name__}: {exc}"))
    if progress is not None:
        progress.advance(1, [unit])


async def window(
    campaign: Campaign, population: Population, concurrency: int, campaign_s: float, progress: "Bar"
) -> None:
    """1 September to 31 December, compressed: each unit starts on its day, at most `concurrency` at once."""
    outcome = campaign.outcome
    flows = {
        "individual": campaign.individual,
        "household": campaign.household,
        "subsidised_partial": campaign.subsidised_partial,
        "university": campaign.university,
    }
    due = sorted((u for u in population.units if u.kind in flows), key=lambda u: u.day)
    semaphore = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    outcome.campaign_started = time.perf_counter()
    outcome.rush_started = outcome.campaign_started + campaign_s * RUSH_DAY / WINDOW_DAYS
    for unit in due:
        at = outcome.campaign_started + campaign_s * unit.day / WINDOW_DAYS
        if (wait := at - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        progress.today(unit.day)
        await semaphore.acquire()
        started = time.perf_counter()
        deadline = started + campaign.timeout_s
        flow = flows[unit.kind]

        async def guarded(
            unit: Unit = unit,
            flow: Callable[[Unit, float], Awaitable[float]] = flow,
            started: float = started,
            deadline: float = deadline,
        ) -> None:
            try:
                await _run_one(unit, campaign, progress, started, lambda: flow(unit, deadline))
            finally:
                semaphore.release()

        task = asyncio.create_task(guarded())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)


async def close_the_books(campaign: Campaign, population: Population) -> None:
    """31 December: each district's subsidy share arrives as one transfer; agents remit the cash they hold."""
    collection = campaign.collection
    for region in population.regions:
        where: dict[str, str | int] = {"funder": FUNDER, "region_code": region, "coverage_year": YEAR}
        owed = (await collection.get("/v1/subsidy-transfers/statement", params=where)).expect(200)
        if parse_yuan(owed["outstanding"]) > 0:
            body = where | {
                "amount": owed["outstanding"],
                "reference": f"HB{region}1231",
                "recorded_by": "campaign-bench",
            }
            made = (
                await collection.post(
                    "/v1/subsidy-transfers", json=body, headers={"Idempotency-Key": f"transfer-{region}"}
                )
            ).expect(201)
            campaign.outcome.transfers.append(made)
        agent = (await collection.get(f"/v1/agents/{agent_id(region)}")).expect(200)
        if parse_yuan(agent["outstanding"]) > 0:
            body = {
                "amount": agent["outstanding"],
                "reference": f"JK{region}1231",
                "recorded_by": "campaign-bench",
            }
            made = (
                await collection.post(
                    f"/v1/agents/{agent_id(region)}/remittances",
                    json=body,
                    headers={"Idempotency-Key": f"remit-{region}"},
                )
            ).expect(201)
            campaign.outcome.remittances.append(made)


class Bar:
    """The progress bar: residents settled of all, flows, the day of the window the replay has reached."""

    def __init__(self, progress: Progress, population: Population) -> None:
        self.progress = progress
        self.task = progress.add_task("campaign", total=population.residents, day="roster", flows=0, failed=0)
        self.flows = 0

    def advance(self, flows: int, units: list[Unit]) -> None:
        self.flows += flows
        self.progress.update(self.task, advance=sum(len(u.members) for u in units), flows=self.flows)

    def today(self, day: float) -> None:
        self.progress.update(self.task, day=f"{WINDOW_START + timedelta(days=int(day)):%m-%d}")


async def replay(
    population: Population,
    registry_url: str,
    collection_url: str,
    *,
    concurrency: int,
    campaign_s: float,
    timeout_s: float,
    console: Console,
) -> Outcome:
    """The whole campaign against a running system: rosters, the window, the books at the end."""
    outcome = Outcome()
    staff = {
        "Authorization": f"Bearer {dev_token(Role.STAFF, sub='campaign-staff', regions=population.regions)}"
    }
    officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER, sub='campaign-officer')}"}
    async with (
        Client(registry_url, connections=concurrency * 4, headers=staff) as registry,
        Client(collection_url, connections=concurrency * 4, headers=officer) as collection,
    ):
        campaign = Campaign(registry, collection, timeout_s, outcome)
        await setup_agents(campaign, population.regions)
        columns = (
            TextColumn("[bold]campaign[/bold] {task.fields[day]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("residents · {task.fields[flows]} flows"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, refresh_per_second=2) as progress:
            bar = Bar(progress, population)
            await subsidy_rosters(campaign, population, bar)
            await window(campaign, population, concurrency, campaign_s, bar)
        await close_the_books(campaign, population)
    return outcome


@dataclass
class Verdict:
    report: check.CheckReport
    standings: Counter[str]
    listed: int
    paid_fen: int
    expected_residents: int
    expected_fen: int
    failures: int

    @property
    def counts_match(self) -> bool:
        return (
            self.listed == self.expected_residents
            and self.standings[Standing.PAID] == self.expected_residents
            and self.paid_fen == self.expected_fen
        )

    @property
    def ok(self) -> bool:
        return self.report.ok and self.counts_match and self.failures == 0


async def account(
    population: Population, outcome: Outcome, registry_url: str, collection_url: str, *, wait_s: float = 60.0
) -> Verdict:
    """`canbao check --no-repair` over every district (waiting up to wait_s for events in flight), and the
    registry's counts against the population."""
    token = dev_token(Role.ADMIN, sub="campaign-bench")
    report = await check.run(
        registry_url,
        collection_url,
        population.regions,
        YEAR,
        repair=False,
        wait_s=wait_s,
        requested_by="campaign-bench",
        token=token,
    )
    standings: Counter[str] = Counter()
    paid = 0
    async with Client(registry_url, connections=1, headers={"Authorization": f"Bearer {token}"}) as client:
        for region in population.regions:
            after: str | None = ""
            while after is not None:
                params: dict[str, Any] = {
                    "region_code": region,
                    "coverage_year": YEAR,
                    "after": after,
                    "limit": PAGE_LIMIT,
                }
                page = StandingPage.model_validate(
                    (await client.get("/v1/enrollments/standings", params=params)).expect(200)
                )
                standings.update(item.standing for item in page.items)
                paid += sum(item.paid for item in page.items)
                after = page.next_after
    return Verdict(
        report,
        standings,
        sum(standings.values()),
        paid,
        population.residents,
        population.due_fen,
        len(outcome.failures),
    )


# ---- the report
def _percentiles(values: list[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p50, p95, p99 = (ordered[max(math.ceil(len(ordered) * q) - 1, 0)] for q in (0.50, 0.95, 0.99))
    return f"{p50:.2f} / {p95:.2f} / {p99:.2f}"


def _describe(population: Population, console: Console) -> None:
    kinds = Counter(u.kind for u in population.units)
    people: Counter[str] = Counter()
    for unit in population.units:
        people[unit.kind] += len(unit.members)
    channels = Counter(u.channel for u in population.units if u.kind in {"individual", "household"})
    categories = Counter(u.category for u in population.units if u.category)
    console.print(
        f"Hefei × {population.scale} (seed {population.seed}): "
        f"[bold]{population.residents:,} residents[/bold] "
        f"in {len(population.units):,} flows — "
        + ", ".join(f"{k} {kinds[k]} ({people[k]} people)" for k in sorted(kinds))
    )
    console.print("  subsidy categories: " + ", ".join(f"{c} {n}" for c, n in sorted(categories.items())))
    console.print("  payers' channels: " + ", ".join(f"{c} {n}" for c, n in channels.most_common()))


@dataclass
class Rates:
    flows: int
    residents: int
    seconds: float

    @property
    def flows_per_s(self) -> float:
        return self.flows / self.seconds if self.seconds > 0 else 0.0

    @property
    def residents_per_s(self) -> float:
        return self.residents / self.seconds if self.seconds > 0 else 0.0


def rates(outcome: Outcome) -> tuple[Rates, Rates]:
    """The window's rate (from its first day to its last flow) and the rush's (December to the last flow)."""
    window = [r for r in outcome.results if r.started >= outcome.campaign_started]
    end = max((r.done for r in window), default=outcome.campaign_started)
    rush = [r for r in window if r.done >= outcome.rush_started]
    return (
        Rates(len(window), sum(r.residents for r in window), end - outcome.campaign_started),
        Rates(len(rush), sum(r.residents for r in rush), end - outcome.rush_started),
    )


def _latency_table(outcome: Outcome) -> Table:
    table = Table(title="flow latency, seconds (p50 / p95 / p99)")
    for column in ("flow", "count", "start → all active", "payment → active"):
        table.add_column(column)
    by_label: dict[str, list[Result]] = defaultdict(list)
    for result in outcome.results:
        by_label[result.label].append(result)
        if "/" in result.label:
            by_label[result.label.split("/")[0] + " (all)"].append(result)
            by_label["channel " + result.label.split("/")[1]].append(result)
    for label in sorted(by_label):
        results = by_label[label]
        table.add_row(
            label,
            str(len(results)),
            _percentiles([r.done - r.started for r in results]),
            _percentiles([r.to_active for r in results if r.to_active is not None]),
        )
    return table


def report(
    console: Console,
    population: Population,
    outcome: Outcome,
    verdict: Verdict,
    cpu: dict[str, float],
    loads: tuple[float, float],
) -> None:
    window, rush = rates(outcome)
    flows = len(outcome.results)
    console.print(_latency_table(outcome))
    console.print(
        f"rosters (before the window): {outcome.roster_s:.1f}s for the subsidy rosters and their fully "
        f"subsidised settled; window: [bold]{window.flows_per_s:.1f} flows/s[/bold] "
        f"({window.residents_per_s:.1f} residents/s, {window.flows} flows in {window.seconds:.1f}s); "
        f"rush (December on): [bold]{rush.flows_per_s:.1f} flows/s[/bold] "
        f"({rush.residents_per_s:.1f} residents/s, "
        f"{rush.flows} flows in {rush.seconds:.1f}s)"
    )
    if rush.residents_per_s > 0:
        hours = CITY_RESIDENTS / rush.residents_per_s / 3600
        console.print(
            f"projected for the whole city ({CITY_RESIDENTS / 1e6:.2f} M residents) at the rush rate: "
            f"[bold]{hours:.1f} h[/bold] ({hours / 24:.1f} days of round-the-clock load)"
        )
    console.print(
        "CPU per flow: "
        + ", ".join(
            f"{part} {seconds / max(flows, 1) * 1000:.1f} ms" for part, seconds in sorted(cpu.items())
        )
        + f" (over {flows} flows; all parts together "
        f"{sum(cpu.values()) / population.residents * 1000:.1f} ms per resident, "
        f"{population.residents} residents); "
        f"load average {loads[0]:.2f} → {loads[1]:.2f}"
    )
    console.print(
        f"channel notifications answered 503 and sent again: {outcome.resent_notifications}; "
        "subsidy transfers "
        + ", ".join(f"{t['region_code']} {t['amount']} ({t['result']})" for t in outcome.transfers)
        + f"; agents remitted {len(outcome.remittances)}"
    )
    for label, problem in outcome.failures[:10]:
        console.print(f"[red]failed[/red] {label}: {problem}")
    _print_verdict(console, verdict)


def _print_verdict(console: Console, verdict: Verdict) -> None:
    r = verdict.report
    ledger = "ok" if r.ledger.get("ok") else r.ledger
    console.print(
        f"canbao check --no-repair: {'clean' if r.ok else '[red]NOT CLEAN[/red]'} "
        f"({r.registry.listed} enrollments, {len(r.remaining)} differences, ledger {ledger}, "
        f"unpublished events {r.registry.backlog.get('unpublished')} / "
        f"{r.collection.backlog.get('unpublished')}, "
        f"dead letters {r.registry.backlog.get('dead_letters_open')} / "
        f"{r.collection.backlog.get('dead_letters_open')})"
    )
    console.print(
        f"counts: {verdict.listed} enrollments for {verdict.expected_residents} residents, "
        f"{ {str(k): n for k, n in verdict.standings.items()} }; paid {format_fen(verdict.paid_fen)} "
        f"of {format_fen(verdict.expected_fen)} "
        f"yuan due — {'match' if verdict.counts_match else '[red]DO NOT MATCH[/red]'}; "
        f"{verdict.failures} flows failed"
    )


# ---- running it
def baseline_units(population: Population, count: int) -> list[Unit]:
    """People outside the population for the same-run baseline, in its districts."""
    gen = Generator(population.seed + 1)
    gen.used = {p.id_number for u in population.units for p in u.members}
    weights = {code: w for code, w in districts().items() if code in population.regions}
    units = []
    for _ in range(count):
        region = gen.region(weights)
        units.append(Unit("baseline", region, [gen.resident(region, 18, 59)], "wechat"))
    return units


async def baseline(
    units: list[Unit], registry_url: str, collection_url: str, *, concurrency: int, timeout_s: float
) -> tuple[Outcome, Rates]:
    """The same-run baseline: bench/flow.py's flow (one resident enrolls, pays a WeChat order, waits until
    active), all at once at the campaign's concurrency, before the campaign."""
    outcome = Outcome()
    regions = sorted({u.region for u in units})
    staff = {"Authorization": f"Bearer {dev_token(Role.STAFF, sub='campaign-staff', regions=regions)}"}
    officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER, sub='campaign-officer')}"}
    semaphore = asyncio.Semaphore(concurrency)
    async with (
        Client(registry_url, connections=concurrency * 4, headers=staff) as registry,
        Client(collection_url, connections=concurrency * 4, headers=officer) as collection,
    ):
        campaign = Campaign(registry, collection, timeout_s, outcome)

        async def one(unit: Unit) -> None:
            async with semaphore:
                started = time.perf_counter()
                await _run_one(
                    unit, campaign, None, started, lambda: campaign.individual(unit, started + timeout_s)
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(u) for u in units))
    return outcome, Rates(len(outcome.results), len(outcome.results), time.perf_counter() - started)


async def measured(
    args: argparse.Namespace, population: Population, urls: tuple[str, str], meter: CpuMeter, console: Console
) -> bool:
    load_before = os.getloadavg()[0]
    warmup = args.concurrency if args.baseline_flows else 0
    plain = baseline_units(population, args.baseline_flows + warmup)
    # A warm-up first (connections, prepared statements, the consumers' first fetches), not measured.
    warm, _ = await baseline(plain[:warmup], *urls, concurrency=args.concurrency, timeout_s=args.timeout)
    await meter.start()
    start = await meter.mark()
    base, base_rates = await baseline(
        plain[warmup:], *urls, concurrency=args.concurrency, timeout_s=args.timeout
    )
    before = await meter.mark()
    outcome = await replay(
        population,
        *urls,
        concurrency=args.concurrency,
        campaign_s=args.campaign_s or max(len(population.units) / 12, 10.0),
        timeout_s=args.timeout,
        console=console,
    )
    cpu = meter.spent(before, await meter.mark())
    await meter.stop()
    loads = (load_before, os.getloadavg()[0])
    outcome.failures.extend(warm.failures + base.failures)
    # Everyone the run enrolled, the baseline's people included, is counted and checked.
    everyone = Population(population.scale, population.seed, population.units + plain)
    verdict = await account(everyone, outcome, *urls)
    report(console, population, outcome, verdict, cpu, loads)
    if args.baseline_flows:
        _print_baseline(console, base, base_rates, meter.spent(start, before), rates(outcome)[1])
    return verdict.ok


def _print_baseline(
    console: Console, base: Outcome, plain: Rates, cpu: dict[str, float], rush: Rates
) -> None:
    console.print(
        f"same-run baseline, bench/flow.py's flow (one resident, WeChat) before the campaign: "
        f"[bold]{plain.flows_per_s:.1f} flows/s[/bold] ({plain.flows} flows in {plain.seconds:.1f}s), "
        f"latency {_percentiles([r.done - r.started for r in base.results])} s, payment → active "
        f"{_percentiles([r.to_active for r in base.results if r.to_active is not None])} s; CPU per flow "
        + ", ".join(
            f"{part} {seconds / max(plain.flows, 1) * 1000:.1f} ms" for part, seconds in sorted(cpu.items())
        )
        + f". The rush against it: {rush.flows_per_s / max(plain.flows_per_s, 1e-9):.2f}× in flows/s, "
        f"{rush.residents_per_s / max(plain.residents_per_s, 1e-9):.2f}× in residents/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.0003, help="share of Hefei's 5.51 M (0.01 = 55,100)")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--baseline-flows",
        type=int,
        default=200,
        help="plain flows before the campaign, after --concurrency more to warm up: the same-run baseline",
    )
    parser.add_argument(
        "--campaign-s", type=float, help="seconds the window is compressed into (default: flows/12)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one flow may take")
    parser.add_argument("--postgres", help="a PostgreSQL server, postgresql://host:port (default: SQLite)")
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao") + "_bench_campaign",
        help="names of the PostgreSQL databases made (dropped first, and again at the end)",
    )
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 150)
    population = generate(args.scale, args.seed)
    _describe(population, console)
    with bench_stack(args.postgres, args.db_prefix, tmp_prefix="canbao-campaign-") as stack:
        assert stack.process is not None
        databases = [f"{args.db_prefix}_{s}" for s in SERVICES]
        meter = CpuMeter(stack.process.pid, args.postgres, databases)
        ok = asyncio.run(
            measured(args, population, (stack.url("registry"), stack.url("collection")), meter, console)
        )
        if not ok:
            console.print(f"the system's log, last lines:\n{stack.log()[-4000:]}", markup=False)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
