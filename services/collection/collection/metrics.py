"""Collection's business figures for GET /metrics (shared/metrics.py): payments and their amounts by channel,
refunds by reason, counted when recorded; bills by status, region and year, read from the database."""

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill
from collection.ledger.accounts import Channel
from shared.metrics import PROCESS, count_on_commit

PAYMENTS = Counter(
    "canbao_payments",
    "Payments recorded, by channel (subsidy: a bill its funders settle)",
    ["channel"],
    registry=PROCESS,
)
PAYMENT_AMOUNT = Counter(
    "canbao_payment_amount_fen",
    "Money the recorded payments took, in fen (分), by channel",
    ["channel"],
    registry=PROCESS,
)
REFUNDS = Counter("canbao_refunds", "Refunds made, by reason", ["reason"], registry=PROCESS)
REFUND_AMOUNT = Counter(
    "canbao_refund_amount_fen", "Money refunded, in fen (分), by reason", ["reason"], registry=PROCESS
)
BILL_WAITERS = Gauge(
    "canbao_bill_waiters",
    "Requests of this process waiting for an enrollment's bill (GET /v1/bills?enrollment_id=&wait_s=)",
    registry=PROCESS,
)
# The reasons a refund is made for (the policies' refundable reasons, and a lower price after payment).
REFUND_REASONS = frozenset({"erroneous_payment", "death", "repriced"})


def payment_recorded(session: AsyncSession, channel: Channel, amount_fen: int) -> None:
    """Counted when the transaction that records the payment commits."""
    count_on_commit(session, PAYMENTS.labels(channel.value))
    count_on_commit(session, PAYMENT_AMOUNT.labels(channel.value), amount_fen)


def refund_recorded(session: AsyncSession, reason: str, amount_fen: int) -> None:
    label = reason if reason in REFUND_REASONS else "other"
    count_on_commit(session, REFUNDS.labels(label))
    count_on_commit(session, REFUND_AMOUNT.labels(label), amount_fen)


async def bills_probe(session: AsyncSession) -> list[Metric]:
    rows = (
        await session.execute(
            select(Bill.status, Bill.region_code, Bill.coverage_year, func.count()).group_by(
                Bill.status, Bill.region_code, Bill.coverage_year
            )
        )
    ).all()
    family = GaugeMetricFamily(
        "canbao_bills",
        "Bills by status, region code and coverage year",
        labels=["status", "region", "coverage_year"],
    )
    for status, region, year, count in sorted(rows):
        family.add_metric([str(status), region, str(year)], count)
    return [family]
