"""The registry service (医保局): people, policies, enrollments, progress, screening."""

from typing import TYPE_CHECKING

from fastapi import FastAPI

from registry.accounts.pages import pages as sign_in_pages
from registry.accounts.pages import send_browsers_to_sign_in
from registry.accounts.router import accounts as accounts_router
from registry.accounts.router import sessions_router
from registry.accounts.service import Sessions
from registry.context import get_registry_of
from registry.dashboard.router import router as dashboard_router
from registry.database import AuditEvent, DeadLetter, InboxMessage, OutboxMessage
from registry.enrollment.events import HANDLERS, lock_enrollments
from registry.enrollment.router import router as enrollment_router
from registry.enrollment.watch import EnrollmentWatch
from registry.exclusion.router import router as exclusion_router
from registry.exclusion.service import RegistryExclusionList
from registry.household.router import router as household_router
from registry.metrics import PROBES as METRIC_PROBES
from registry.people.router import router as people_router
from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.population.router import router as population_router
from registry.progress.router import router as progress_router
from registry.progress.service import BASELINE_MAX_BYTES
from registry.reminder.router import router as reminder_router
from registry.reminder.senders import load_sender
from registry.reminder.service import ReminderDispatcher
from registry.roster.router import router as roster_router
from registry.roster.worker import RosterWorker
from registry.screening.router import router as screening_router
from registry.settings import RegistrySettings
from registry.subsidy.router import router as subsidy_router
from shared.db import long_work
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS
from shared.middleware import MULTIPART_SLACK_BYTES
from shared.service import ServiceSpec, create_service_app

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

SPEC = ServiceSpec(
    name="registry",
    title="Canbao registry (医保局)",
    description="People, households, per-region and per-year policies, subsidy categories, exclusions, "
    "enrollments, progress reports, screening of the unenrolled, reminders, the operators' dashboard. "
    "Publishes registry.enrollments.v1; consumes collection.payments.v1.",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    dead_letters=DeadLetter,
    audit=AuditEvent,
    produces=[REGISTRY_ENROLLMENTS],
    consumes=[COLLECTION_PAYMENTS],
    handlers=HANDLERS,
    batch_locks=lock_enrollments,
    metric_probes=METRIC_PROBES,
    routers=[
        enrollment_router,
        household_router,
        people_router,
        subsidy_router,
        exclusion_router,
        roster_router,
        population_router,
        progress_router,
        screening_router,
        reminder_router,
        dashboard_router,
        accounts_router,
        sessions_router,
        sign_in_pages,
    ],
    workers=[lambda app: app.state.roster_worker.run(), lambda app: app.state.reminder_dispatcher.run()],
)


def create_app(
    settings: RegistrySettings | None = None, *, tracer_provider: "TracerProvider | None" = None
) -> FastAPI:
    settings = settings or RegistrySettings()
    app = create_service_app(SPEC, settings, tracer_provider=tracer_provider)
    directories = [SHIPPED_POLICIES] + ([settings.policy_dir] if settings.policy_dir else [])
    # Uploads are refused with 413 before they are read when over their limit (a multipart envelope's worth
    # of slack over the file's own).
    app.state.body_limits |= {
        "/v1/rosters": settings.roster_max_bytes + MULTIPART_SLACK_BYTES,
        "/v1/progress/baseline": BASELINE_MAX_BYTES + MULTIPART_SLACK_BYTES,
    }
    app.state.policies = PolicyBook.load(*directories)
    # Sign-in sessions: a session cookie, or a token naming a session, is checked here (shared.auth).
    app.state.session_store = Sessions(settings, lambda: app.state.sessionmaker, lambda: app.state.clock)
    send_browsers_to_sign_in(app)
    app.state.exclusion_lookup = RegistryExclusionList()
    app.state.enrollment_watch = EnrollmentWatch(
        lambda: app.state.sessionmaker,
        max_waiters=settings.enrollment_waiters_max,
        recheck_s=settings.enrollment_wait_recheck_s,
    )
    # Background work waits for locks as long as it must: the request's limits are lifted for it.
    app.state.roster_worker = RosterWorker(
        lambda: long_work(app.state.sessionmaker),
        lambda: get_registry_of(app),
        settings.roster_chunk_rows,
        applied_at_once=settings.roster_chunks_applied_at_once,
    )
    app.state.reminder_dispatcher = ReminderDispatcher(
        lambda: long_work(app.state.sessionmaker),
        load_sender(settings),
        lambda: app.state.clock,
        settings.reminder_batch,
    )
    return app
