"""Channel notifications (webhooks): verified by HMAC before anything is recorded; replays record nothing."""

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from collection.notifications.service import sign
from collection.payments.models import Payment
from collection.settings import CollectionSettings
from tests.collection.helpers import open_bill
from tests.conftest import Harness
from tests.support import PRODUCTION_KAFKA, problem

NOW = "2023-11-01T10:00:00+08:00"  # the business clock; signatures are dated in real time


def real_now() -> str:
    return str(int(time.time()))


def secret(h: Harness, channel: str) -> str:
    value: str = h.app.state.settings.channel_secrets[channel].get_secret_value()
    return value


async def notify(
    h: Harness,
    channel: str,
    body: dict[str, Any],
    *,
    timestamp: str | None = None,
    signature: str | None = None,
    key: str | None = None,
) -> Any:
    raw = json.dumps(body).encode()
    timestamp = timestamp or real_now()
    if signature is None:
        # A channel without a secret here (cash) is signed with any key: the channel is refused first.
        signature = sign(key or secret(h, channel) if channel != "cash" else "k", timestamp, raw)
    return await h.client.post(
        f"/v1/channels/{channel}/notifications",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Canbao-Timestamp": timestamp,
            "X-Canbao-Signature": signature,
        },
    )


async def payments(h: Harness) -> int:
    async with h.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Payment)) or 0)


@pytest.mark.parametrize("channel", ["wechat", "alipay", "provincial_app", "bank"])
async def test_a_signed_notification_records_the_payment_once(collection: Harness, channel: str) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    body = {"notification_id": "4200001234202311010000001", "bill_id": bill["bill_id"], "amount": "380.00"}

    first = await notify(collection, channel, body)
    assert first.status_code == 200, first.text
    assert (first.json()["channel"], first.json()["amount"]) == (channel, "380.00")
    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "paid"

    again = await notify(collection, channel, body)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.json() == first.json()
    assert await payments(collection) == 1


async def test_the_same_notification_id_with_another_body_is_refused(collection: Harness) -> None:
    collection.at(NOW)
    bills = [await open_bill(collection), await open_bill(collection)]
    await notify(
        collection, "wechat", {"notification_id": "N1", "bill_id": bills[0]["bill_id"], "amount": "380.00"}
    )
    other = await notify(
        collection, "wechat", {"notification_id": "N1", "bill_id": bills[1]["bill_id"], "amount": "380.00"}
    )
    assert (other.status_code, problem(other)["code"]) == (422, "idempotency_key_reused")
    assert await payments(collection) == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"signature": "sha256=" + "0" * 64}, 401, "notification_signature_invalid"),
        ({"signature": ""}, 401, "notification_signature_invalid"),
        ({"key": "someone-elses-secret"}, 401, "notification_signature_invalid"),
        ({"timestamp": "old"}, 401, "notification_expired"),  # an old capture replayed
        ({"timestamp": "yesterday"}, 401, "notification_expired"),
        ({"channel": "cash"}, 404, "channel_not_notifying"),
        ({"body": {"notification_id": "N2", "amount": "380.00"}}, 422, "notification_invalid"),
        ({"body": {"notification_id": "N2", "bill_id": "x", "amount": 380}}, 422, "notification_invalid"),
        ({"amount": "38.00"}, 422, "amount_mismatch"),
    ],
)
async def test_bad_notifications_record_nothing(
    collection: Harness, change: dict[str, Any], status: int, code: str
) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    body = change.get(
        "body",
        {"notification_id": "N2", "bill_id": bill["bill_id"], "amount": change.get("amount", "380.00")},
    )
    options = {k: v for k, v in change.items() if k in ("signature", "key", "timestamp")}
    if options.get("timestamp") == "old":
        options["timestamp"] = str(int(time.time()) - 301)
    response = await notify(collection, change.get("channel", "wechat"), body, **options)
    assert (response.status_code, problem(response)["code"]) == (status, code)
    assert await payments(collection) == 0
    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "open"


def test_production_refuses_development_channel_secrets() -> None:
    database = "postgresql+asyncpg://u@db/x"
    keys = {"2026-11": "t" * 40}
    with pytest.raises(ValueError, match="channel secrets"):
        CollectionSettings(
            environment="production", database_url=database, auth_keys=keys, **PRODUCTION_KAFKA
        )
    strong = {c: "x" * 40 + c for c in ("wechat", "alipay", "provincial_app", "bank")}
    CollectionSettings(
        environment="production",
        database_url=database,
        channel_secrets=strong,
        auth_keys=keys,
        **PRODUCTION_KAFKA,
    )
    with pytest.raises(ValueError, match="not notifying channels"):
        CollectionSettings(channel_secrets={"cash": "x" * 40})
