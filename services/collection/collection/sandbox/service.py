"""The sandbox payment provider: it plays an online channel for development, tests and benchmarks, sending
exactly the signed notification the real channel would send for a payment order. Production refuses it
(COLLECTION_PAYMENT_SANDBOX)."""

import json
import secrets
import time
from dataclasses import dataclass

from collection.notifications.service import sign
from collection.settings import CollectionSettings
from shared.money import format_fen


@dataclass(frozen=True)
class SignedNotification:
    channel: str
    body: bytes
    headers: dict[str, str]


def notification_for(
    settings: CollectionSettings, *, channel: str, reference: str, amount_fen: int
) -> SignedNotification:
    """The channel's notification that it took `amount_fen` for the order `reference`, signed with the
    channel's secret from the settings, under a fresh transaction id."""
    body = json.dumps(
        {
            "notification_id": f"SANDBOX{secrets.token_hex(12).upper()}",
            "order_reference": reference,
            "amount": format_fen(amount_fen),
        }
    ).encode()
    timestamp = str(int(time.time()))
    secret = settings.channel_secrets[channel].get_secret_value()
    return SignedNotification(
        channel,
        body,
        {
            "Content-Type": "application/json",
            "X-Canbao-Timestamp": timestamp,
            "X-Canbao-Signature": sign(secret, timestamp, body),
        },
    )
