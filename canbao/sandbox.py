"""`canbao pay`: the sandbox payment provider over HTTP, as a real channel reaches collection."""

from typing import Any

import httpx

from collection.sandbox.service import notification_for
from collection.settings import CollectionSettings
from shared.money import parse_yuan


async def pay(
    collection_url: str, token: str, settings: CollectionSettings, order_id: str
) -> tuple[int, Any]:
    """Read the order, then post the channel's signed notification for it; the answer's status and body."""
    async with httpx.AsyncClient(base_url=collection_url, timeout=30) as client:
        found = await client.get(
            f"/v1/payment-orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
        )
        if found.status_code != 200:
            return found.status_code, found.json()
        order = found.json()
        fen = parse_yuan(order["amount"])
        sent = notification_for(
            settings, channel=order["channel"], reference=order["reference"], amount_fen=fen
        )
        answer = await client.post(
            f"/v1/channels/{sent.channel}/notifications", content=sent.body, headers=sent.headers
        )
        return answer.status_code, answer.json()
