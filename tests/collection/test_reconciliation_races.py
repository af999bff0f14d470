"""Reconciliation racing the channels and itself, on PostgreSQL with real concurrent requests (collection on a
database of its own, each request its own connection and transaction, as in production): a bill the file
records while the channel's notification for it arrives is paid once and no money goes unaccounted; a payment
two files settle at once is settled once; the books balance after every trial."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from collection.main import create_app
from collection.reconciliation import repository
from collection.settings import CollectionSettings
from shared.db import create_sessionmaker
from tests.collection.helpers import notify_order, open_bill, pay_online, start_order
from tests.conftest import ADMIN_TOKEN, DEFAULT_NOW, Harness
from tests.support import migrate, recreate_pg_database

TRIALS = 12
BILLS = 4  # per trial


@pytest.fixture(scope="module")
async def racing(worker: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    url = await asyncio.to_thread(recreate_pg_database, f"reconciliation_races_{worker}_collection")
    await asyncio.to_thread(migrate, "collection", url)
    app = create_app(
        CollectionSettings(
            environment="test",
            database_url=url,
            clock_start=DEFAULT_NOW,
            reconciliation_dir=tmp_path_factory.mktemp("reconciliation"),
        )
    )
    engine = create_async_engine(url, pool_size=BILLS + 4, max_overflow=0)
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://collection",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=120,
    ) as client:
        yield Harness(app, app.state.sessionmaker, client, "postgresql")
    await engine.dispose()


async def reconcile(
    h: Harness, day: date, rows: list[tuple[str, str]], paid_on: date | None = None
) -> httpx.Response:
    """A WeChat file for `day`: (transaction number, bill id) lines of 380 yuan paid at 10:00 on `paid_on`
    (the file's day unless given)."""
    paid = (paid_on or day).isoformat()
    lines = "交易流水号,缴费时间,缴费金额,账单号\n" + "".join(
        f"{reference},{paid} 10:00:00,380.00,{bill_id}\n" for reference, bill_id in rows
    )
    return await h.client.post(
        "/v1/reconciliations",
        data={"channel": "wechat", "business_day": day.isoformat(), "uploaded_by": "对账员"},
        files={"file": ("wechat.csv", lines.encode())},
    )


async def notify_after(h: Harness, order: dict[str, Any], trial: int, i: int) -> httpx.Response:
    """The channel's notification for an order, a moment into the file's run (spread so that either may
    come first)."""
    await asyncio.sleep(0.02 * ((trial + i) % 6))
    return await notify_order(h, order, transaction_id=f"TX{trial}-{i}")


async def states(h: Harness, day: date) -> dict[str, dict[str, Any]]:
    page = (await h.client.get(f"/v1/reconciliations/wechat/{day.isoformat()}/lines")).json()
    return {line["reference"]: line for line in page["items"]}


async def books_balance(h: Harness) -> None:
    check = (await h.client.get("/v1/ledger/check")).json()
    assert check["ok"], check


async def test_a_file_recording_bills_their_notifications_pay_meanwhile_pays_each_once(
    racing: Harness,
) -> None:
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        day = date(2023, 9, 1) + timedelta(days=trial)
        bills = [await open_bill(racing) for _ in range(BILLS)]
        orders = [await start_order(racing, [bill["bill_id"]]) for bill in bills]
        file_rows = [(f"RC{trial}-{i}", bill["bill_id"]) for i, bill in enumerate(bills)]

        run, *notified = await asyncio.gather(
            reconcile(racing, day, file_rows),
            *(notify_after(racing, order, trial, i) for i, order in enumerate(orders)),
        )

        assert run.status_code == 201, run.text
        lines = await states(racing, day)
        for (reference, bill_id), answer in zip(file_rows, notified, strict=True):
            line = lines[reference]
            bill = (await racing.client.get(f"/v1/bills/{bill_id}")).json()
            assert bill["status"] == "paid"
            if answer.status_code == 200:  # the channel's payment came first: the file's line is refused
                assert (line["state"], line["reason"]) == ("unrecordable", "bill_already_paid"), line
                outcomes["notification first"] += 1
            else:  # the file recorded it first: the channel's money is kept as a rejection to hand back
                assert answer.status_code == 409, answer.text
                assert line["state"] == "recorded", line
                outcomes["file first"] += 1
        await books_balance(racing)
    kept = (await racing.client.get("/v1/notification-rejections", params={"limit": 500})).json()["items"]
    assert len(kept) == outcomes["file first"]
    assert sum(outcomes.values()) == TRIALS * BILLS


async def test_an_officer_accepting_a_line_while_a_file_settles_its_payment_settles_it_once(
    racing: Harness,
) -> None:
    """A day's file dated the payments a day late (open date mismatches); an officer accepts them while the
    next day's file lists them rightly: whichever settles a payment first, the other finds it settled (the
    officer is refused, the file's line is a duplicate), and its money reaches the treasury once."""
    paid_on = DEFAULT_NOW.date()  # when pay_online pays on the harness's clock
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        late = date(2023, 8, 1) + timedelta(days=2 * trial)
        rows = [(f"SX{trial}-{i}", (await open_bill(racing))["bill_id"]) for i in range(BILLS)]
        for reference, bill_id in rows:
            await pay_online(racing, [bill_id], transaction_id=reference)
        assert (await reconcile(racing, late, rows)).status_code == 201
        mismatched = await states(racing, late)
        accept = {"action": "accept", "officer": "张科长", "note": "渠道日切"}

        run, *accepted = await asyncio.gather(
            reconcile(racing, late + timedelta(days=1), rows, paid_on),
            *(
                racing.client.post(
                    f"/v1/reconciliation-lines/{mismatched[reference]['id']}/resolution", json=accept
                )
                for reference, _ in rows
            ),
        )

        assert run.status_code == 201, run.text
        judged = await states(racing, late + timedelta(days=1))
        for (reference, _), answer in zip(rows, accepted, strict=True):
            if answer.status_code == 200:
                assert judged[reference]["state"] == "duplicate", judged[reference]
                outcomes["officer first"] += 1
            else:
                assert answer.status_code == 409, answer.text
                assert judged[reference]["state"] == "matched", judged[reference]
                outcomes["file first"] += 1
        await books_balance(racing)
    assert sum(outcomes.values()) == TRIALS * BILLS


@pytest.mark.parametrize("how", ["rerun", "corrected_file"])
async def test_an_officer_accepting_a_line_while_its_day_is_judged_again_is_not_written_over(
    racing: Harness, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The officer's resolution and the run that judges the same day's line again take turns on the line:
    whatever the officer is answered is what the line says afterwards (before, the run wrote its verdict over
    an acceptance committed while it judged)."""
    day = {"rerun": date(2024, 3, 1), "corrected_file": date(2024, 4, 1)}[how]
    ref = f"OV-{how}"
    bill = (await open_bill(racing))["bill_id"]
    await pay_online(racing, [bill], transaction_id=ref)
    assert (await reconcile(racing, day, [(ref, bill)])).status_code == 201
    line = (await states(racing, day))[ref]
    assert line["state"] == "date_mismatch", line

    original = repository.payments_by_reference
    officer: list[asyncio.Task[httpx.Response]] = []

    async def officer_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The run has read the line as open; the officer accepts it now, and has time to commit if not held.
        if not officer:
            officer.append(
                asyncio.create_task(
                    racing.client.post(
                        f"/v1/reconciliation-lines/{line['id']}/resolution",
                        json={"action": "accept", "officer": "张科长", "note": "渠道日切"},
                    )
                )
            )
            await asyncio.sleep(0.5)
        return await original(*args, **kwargs)

    monkeypatch.setattr(repository, "payments_by_reference", officer_meanwhile)
    if how == "rerun":
        run = await racing.client.post(
            f"/v1/reconciliations/wechat/{day.isoformat()}/rerun", json={"started_by": "对账员"}
        )
    else:  # the tax side posts the file again with one more line: the same wrong date for the first
        other = (await open_bill(racing))["bill_id"]
        run = await reconcile(racing, day, [(ref, bill), (f"{ref}-x", other)])
    assert run.status_code == 201, run.text
    answered = await asyncio.wait_for(officer[0], timeout=30)
    after = (await states(racing, day))[ref]
    await books_balance(racing)
    if answered.status_code == 200:
        assert after["state"] == "accepted", after
    else:  # the run closed the line first; the officer was told so
        assert answered.status_code == 409, answered.text
        assert after["state"] != "accepted", after
