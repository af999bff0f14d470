"""The registry service (医保局): people, policies, enrollments."""

from fastapi import FastAPI

from registry.database import DeadLetter, InboxMessage, OutboxMessage
from registry.enrollment.dependencies import get_registry_of
from registry.enrollment.events import HANDLERS
from registry.enrollment.router import router as enrollment_router
from registry.exclusion.router import router as exclusion_router
from registry.exclusion.service import RegistryExclusionList
from registry.household.router import router as household_router
from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.population.router import router as population_router
from registry.roster.router import router as roster_router
from registry.roster.service import RosterWorker
from registry.settings import RegistrySettings
from registry.subsidy.router import router as subsidy_router
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="registry",
    title="Canbao registry (医保局)",
    description="People, households, per-region and per-year policies, subsidy categories, exclusions, "
    "enrollments. Publishes registry.enrollments.v1; consumes collection.payments.v1.",
    outbox=OutboxMessage,
    inbox=InboxMessage,
    dead_letters=DeadLetter,
    produces=[REGISTRY_ENROLLMENTS],
    consumes=[COLLECTION_PAYMENTS],
    handlers=HANDLERS,
    routers=[
        enrollment_router,
        household_router,
        subsidy_router,
        exclusion_router,
        roster_router,
        population_router,
    ],
    workers=[lambda app: app.state.roster_worker.run()],
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    app = create_service_app(SPEC, settings)
    directories = [SHIPPED_POLICIES] + ([settings.policy_dir] if settings.policy_dir else [])
    app.state.policies = PolicyBook.load(*directories)
    app.state.exclusion_lookup = RegistryExclusionList()
    app.state.roster_worker = RosterWorker(
        lambda: app.state.sessionmaker, lambda: get_registry_of(app), settings.roster_chunk_rows
    )
    return app
