"""The collection service (税务局): bills and payments."""

from typing import TYPE_CHECKING

from fastapi import FastAPI

from collection.agents.router import router as agents_router
from collection.billing.events import HANDLERS, lock_bills
from collection.billing.router import router as bills_router
from collection.billing.watch import BillWatch
from collection.books.router import router as books_router
from collection.database import AuditEvent, DeadLetter, InboxMessage, OutboxMessage
from collection.ledger.router import router as ledger_router
from collection.metrics import bills_probe
from collection.notifications.router import rejections_router
from collection.notifications.router import router as notifications_router
from collection.orders.router import router as orders_router
from collection.payments.router import router as payments_router
from collection.receipts.router import router as receipts_router
from collection.reconciliation.router import lines_router as reconciliation_lines_router
from collection.reconciliation.router import router as reconciliation_router
from collection.refunds.router import router as refunds_router
from collection.sandbox.router import router as sandbox_router
from collection.settings import CollectionSettings
from collection.transfers.router import router as transfers_router
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS
from shared.middleware import MULTIPART_SLACK_BYTES
from shared.service import ServiceSpec, create_service_app

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

SPEC = ServiceSpec(
    name="collection",
    title="Canbao collection (税务局)",
    description="Bills from enrollment events, payments with idempotency keys, a double-entry ledger. "
    "Consumes registry.enrollments.v1; publishes collection.payments.v1.",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    dead_letters=DeadLetter,
    audit=AuditEvent,
    produces=[COLLECTION_PAYMENTS],
    consumes=[REGISTRY_ENROLLMENTS],
    handlers=HANDLERS,
    batch_locks=lock_bills,
    metric_probes=[bills_probe],
    routers=[
        bills_router,
        orders_router,
        payments_router,
        notifications_router,
        rejections_router,
        receipts_router,
        refunds_router,
        transfers_router,
        agents_router,
        reconciliation_router,
        reconciliation_lines_router,
        ledger_router,
        books_router,
    ],
)


def create_app(
    settings: CollectionSettings | None = None, *, tracer_provider: "TracerProvider | None" = None
) -> FastAPI:
    settings = settings or CollectionSettings()
    app = create_service_app(SPEC, settings, tracer_provider=tracer_provider)
    if settings.payment_sandbox:  # plays the channels; production refuses the setting
        app.include_router(sandbox_router)
    app.state.bill_watch = BillWatch(
        lambda: app.state.sessionmaker,
        max_waiters=settings.bill_waiters_max,
        recheck_s=settings.bill_wait_recheck_s,
    )
    app.state.body_limits |= {
        "/v1/reconciliations": settings.reconciliation_max_bytes + MULTIPART_SLACK_BYTES
    }
    return app
